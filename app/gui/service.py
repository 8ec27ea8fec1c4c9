"""Moved to `app.gui.predict.service` (the Predict tab's own service); re-exported for old imports."""

from app.gui.predict.messages import SWEEP_LEVELS, PredictRequest, SweepRequest
from app.gui.predict.service import PredictionService, describe_file, effective_corruptions

__all__ = ["SWEEP_LEVELS", "PredictRequest", "PredictionService", "SweepRequest", "describe_file",
           "effective_corruptions"]
