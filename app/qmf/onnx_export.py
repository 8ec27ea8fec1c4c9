"""Export a trained QMFModel (every branch and the energy fusion) to one ONNX graph.

The graph computes exactly what `Predictor` shows: the QMF-fused and late-fusion probabilities and,
per modality, logits, probabilities, energy, quality score and share. It is traced from the torch
modules (app/qmf/model.py, app/qmf/fusion.py), so the fusion is written once, in torch, and the graph
follows it. Needs torch (and the `onnx` package, which torch's exporter uses); running the graph needs
neither (app/qmf/onnx_graph.py).

torch.onnx.export(dynamo=False) is the TorchScript exporter: it works offline with torch and onnx
alone, where the default dynamo exporter needs onnxscript as well.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from app.modalities import get_modality
from app.qmf.fusion import fuse_late
from app.qmf.onnx_graph import OUTPUTS, PER_MODALITY_OUTPUTS, output_names

OPSET = 17


class _GraphModule(nn.Module):
    """Positional modality inputs -> the flat tuple of outputs named by `output_names`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.names = list(model.modality_names)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(dict(zip(self.names, inputs, strict=True)))
        late = fuse_late(out.logits)
        values = {"probabilities": torch.softmax(out.fused, -1), "late_probabilities": torch.softmax(late, -1)}
        result = [values[k] for k in OUTPUTS]
        for n in self.names:
            per = {"logits": out.logits[n], "probabilities": torch.softmax(out.logits[n], -1),
                   "energy": out.energy[n], "quality": out.quality[n], "share": out.share[n]}
            result += [per[k] for k in PER_MODALITY_OUTPUTS]
        return tuple(result)


def export_graph(model: nn.Module) -> bytes:
    """The model's ONNX graph as bytes (batch dimension dynamic), traced in eval mode on the CPU."""
    was_training = model.training
    device = next(model.parameters()).device
    model = model.to("cpu").eval()
    names = list(model.modality_names)
    examples = []
    for m in model.config.modalities:
        modality = get_modality(m.kind, m.preprocessing)
        examples.append(torch.from_numpy(modality.to_array(modality.blank())).unsqueeze(0).repeat(
            2, *([1] * len(modality.input_shape))))
    outputs = output_names(names)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                _GraphModule(model), tuple(examples), buf, dynamo=False, opset_version=OPSET,
                input_names=names, output_names=outputs, do_constant_folding=True,
                dynamic_axes={k: {0: "batch"} for k in (*names, *outputs)},
            )
    finally:
        model.to(device).train(was_training)
    return buf.getvalue()
