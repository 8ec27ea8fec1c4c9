"""The torch-free prediction path: a model file's ONNX graph, checked, then run by onnxruntime.

A model file may carry, next to its weights, the ONNX graph of the whole model (every branch and the
energy fusion, exported from those weights by app/qmf/onnx_export.py) as the bytes of one uint8 tensor
named `GRAPH_TENSOR`, so it is covered by the same weights checksum as every other tensor.

Loading a graph must never run code or read another file. onnxruntime runs code only from custom-op
libraries a caller registers (this module never does) and reads other files only for tensors stored as
"external data", so before a session is created `check_graph` walks the ModelProto and refuses:
operators outside the standard ONNX domains (custom ops), model-local functions, training info, and any
tensor with external data, in the main graph and in every nested subgraph. The walk is a small reader
of protobuf's wire format over the few fields involved, rather than `onnx.load`: the `onnx` package is
needed only to export (it is 30 MB and brings ml_dtypes), and a reader that skips every field it does
not know cannot be confused by newer fields; anything it cannot parse is refused.

The graph's inputs are named after the model's modalities (config order, batch first); its outputs are
`OUTPUTS` (fused and late-fusion probabilities) and `PER_MODALITY_OUTPUTS` per modality, named
`"<output>:<modality>"`. `run` returns the same dictionary of numpy arrays as the torch fallback in
app/qmf/predictor.py, so everything downstream is shared.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

GRAPH_TENSOR = "qmf.onnx_graph"
OUTPUTS = ("probabilities", "late_probabilities")
PER_MODALITY_OUTPUTS = ("logits", "probabilities", "energy", "quality", "share")
ALLOWED_DOMAINS = ("", "ai.onnx")  # the standard operator set; anything else is a custom op
THREADS_ENV = "QMF_STUDIO_THREADS"
_MAX_DEPTH = 32


class GraphError(ValueError):
    """The graph cannot be used (malformed, or it asks for code or files); the message says why."""


def output_names(modalities: Sequence[str]) -> list[str]:
    """The graph's output names, in order, for a model with these modality names."""
    return [*OUTPUTS, *(f"{out}:{name}" for name in modalities for out in PER_MODALITY_OUTPUTS)]


# --- protobuf wire format -------------------------------------------------------------------------
# Field numbers from onnx/onnx.proto (stable since IR version 3).
_MODEL_OPSET, _MODEL_GRAPH, _MODEL_TRAINING, _MODEL_FUNCTIONS = 8, 7, 20, 25
_OPSET_DOMAIN = 1
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_OP_TYPE, _NODE_ATTRIBUTE, _NODE_DOMAIN = 4, 5, 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise GraphError("not a valid ONNX graph (a number is cut short)")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: an int for varints, a memoryview for
    length-delimited fields; fixed-width fields are skipped (none of the fields checked is one)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise GraphError("not a valid ONNX graph (a field runs past the end)")
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise GraphError(f"not a valid ONNX graph (unsupported protobuf wire type {wire})")
        if pos > len(buf):
            raise GraphError("not a valid ONNX graph (a field runs past the end)")
        if number == 0:
            raise GraphError("not a valid ONNX graph (field number 0)")
        yield number, wire, value


def _text(value: Any) -> str:
    try:
        return bytes(value).decode("utf-8")
    except (TypeError, UnicodeDecodeError):
        raise GraphError("not a valid ONNX graph (a name is not UTF-8 text)") from None


def _check_tensor(buf: memoryview, where: str) -> None:
    for number, wire, value in _fields(buf):
        if (number == _TENSOR_EXTERNAL_DATA and wire == 2) or (
            number == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL
        ):
            raise GraphError(f"the graph refers to external data files ({where}); a model file must hold "
                             "its whole graph")


def _check_sparse(buf: memoryview, where: str) -> None:
    for number, wire, value in _fields(buf):
        if number in (_SPARSE_VALUES, _SPARSE_INDICES) and wire == 2:
            _check_tensor(value, where)


def _check_graph_proto(buf: memoryview, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise GraphError("the graph nests subgraphs too deeply")
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _GRAPH_NODE:
            _check_node(value, depth)
        elif number == _GRAPH_INITIALIZER:
            _check_tensor(value, "an initializer")
        elif number == _GRAPH_SPARSE_INITIALIZER:
            _check_sparse(value, "a sparse initializer")


def _check_node(buf: memoryview, depth: int) -> None:
    op_type, domain, attributes = "?", "", []
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _NODE_OP_TYPE:
            op_type = _text(value)
        elif number == _NODE_DOMAIN:
            domain = _text(value)
        elif number == _NODE_ATTRIBUTE:
            attributes.append(value)
    if domain not in ALLOWED_DOMAINS:
        raise GraphError(f"the graph uses operator {op_type!r} from the custom domain {domain!r}; only the "
                         "standard ONNX operators are allowed (custom operators would load code)")
    for attr in attributes:
        for number, wire, value in _fields(attr):
            if wire != 2:
                continue
            if number in (_ATTR_T, _ATTR_TENSORS):
                _check_tensor(value, f"a constant of operator {op_type!r}")
            elif number in (_ATTR_SPARSE, _ATTR_SPARSES):
                _check_sparse(value, f"a constant of operator {op_type!r}")
            elif number in (_ATTR_G, _ATTR_GRAPHS):
                _check_graph_proto(value, depth + 1)


def check_graph(data: bytes) -> None:
    """Refuse a serialized ModelProto that would load code or read files; GraphError says why."""
    buf = memoryview(data)
    graphs = 0
    for number, wire, value in _fields(buf):
        if number == _MODEL_OPSET and wire == 2:
            for n, w, v in _fields(value):
                if n == _OPSET_DOMAIN and w == 2 and _text(v) not in ALLOWED_DOMAINS:
                    raise GraphError(f"the graph imports the custom operator domain {_text(v)!r}; only the "
                                     "standard ONNX operators are allowed (custom operators would load code)")
        elif number == _MODEL_FUNCTIONS and wire == 2:
            raise GraphError("the graph defines its own functions; only the standard ONNX operators are allowed")
        elif number == _MODEL_TRAINING and wire == 2:
            raise GraphError("the graph carries training information; a model file's graph is for inference only")
        elif number == _MODEL_GRAPH and wire == 2:
            graphs += 1
            _check_graph_proto(value, 0)
    if graphs != 1:
        raise GraphError("not a valid ONNX graph (no graph in the model)")


# --- running --------------------------------------------------------------------------------------


def inference_threads() -> int:
    """Threads per inference session: 1 unless QMF_STUDIO_THREADS says otherwise.

    A small network gains little from a second thread on an idle machine and loses a lot on a busy
    one: a parallel region waits for all its threads to be scheduled (issue 13 measured a single
    prediction at 918 ms with two threads next to one competing process, 112 ms with one).
    """
    try:
        threads = int(os.environ.get(THREADS_ENV, "1"))
    except ValueError:
        threads = 1
    return max(1, threads)


def session_options(ort: Any, threads: int) -> Any:
    """The options every QMF Studio session runs with.

    One sequential executor with `threads` intra-op threads (1 by default, see `inference_threads`),
    and no spin-waiting: with more than one thread, onnxruntime's pool otherwise spins between
    operators, which on a shared machine takes a core from the process competing with it and, when
    that process holds the core, leaves the parallel region waiting (issue 13's p99 under load).
    Full graph optimisation (constant folding, BatchNorm and ReLU fused into Conv, the blocked NCHWc
    convolution layout on x86) makes one pair ~1.7x faster than the basic level for ~4 ms more at load,
    and a batch of 64 ~1.6x faster than the extended level (no blocked layout). Measured for issue 13
    with no change to the batched forward beyond the noise (a few %): denormals as zero (the
    activations have none), prepacking off, the memory pattern or the arena off. The optimised graph
    cannot be stored in the model file instead: its blocked-layout operators are in a custom domain,
    which `check_graph` refuses.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _session(ort: Any, graph: bytes, threads: int) -> Any:
    try:
        return ort.InferenceSession(graph, session_options(ort, threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise GraphError(f"onnxruntime cannot load the graph: {str(exc).splitlines()[0] if str(exc) else exc}") from None


class OnnxModel:
    """An onnxruntime session over a checked graph; `run` maps modality arrays to the output numbers."""

    backend = "onnxruntime"

    def __init__(self, graph: bytes, modalities: Sequence[str], input_shapes: Mapping[str, tuple[int, ...]],
                 path: str | Path = "<graph>", threads: int | None = None):
        check_graph(graph)
        import onnxruntime as ort

        self.session = _session(ort, graph, threads or inference_threads())
        self.modalities = list(modalities)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if sorted(inputs) != sorted(self.modalities):
            raise GraphError(f"the graph's inputs {sorted(inputs)} are not the model's modalities {self.modalities}")
        for name in self.modalities:
            dims = list(inputs[name].shape)[1:]
            want = list(input_shapes[name])
            if len(dims) != len(want) or any(isinstance(d, int) and d != w for d, w in zip(dims, want, strict=True)):
                raise GraphError(f"the graph's input {name!r} has shape {dims}, the preprocessing makes {want}")
        self.output_names = output_names(self.modalities)
        # where each output goes in `run`'s dictionary: (key, modality), modality None for the fused ones
        per_output = {"probabilities": ("fused", None), "late_probabilities": ("late", None)}
        keys = {"probabilities": "per_modality", "logits": "logits", "energy": "energy", "quality": "quality",
                "share": "share"}
        self._places = [per_output.get(n) or (keys[n.split(":", 1)[0]], n.split(":", 1)[1]) for n in self.output_names]
        have = {o.name for o in self.session.get_outputs()}
        missing = [n for n in self.output_names if n not in have]
        if missing:
            raise GraphError(f"the graph lacks the outputs {missing[:3]}")
        self.path = str(path)

    def run(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Batched inputs ([B, ...] per modality) -> fused, late, per-modality probabilities, logits,
        energy, quality and share, as numpy arrays with the batch first."""
        values = self.session.run(self.output_names, {n: batch[n] for n in self.modalities})
        numbers: dict[str, Any] = {"fused": None, "late": None, "per_modality": {}, "logits": {}, "energy": {},
                                   "quality": {}, "share": {}}
        for (key, modality), value in zip(self._places, values, strict=True):
            if modality is None:
                numbers[key] = value
            else:
                numbers[key][modality] = value
        return numbers
