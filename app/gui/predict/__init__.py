"""The Predict tab: `PredictPage`, its service (worker thread) and its typed messages."""

from app.gui.predict.page import PredictPage

__all__ = ["PredictPage"]
