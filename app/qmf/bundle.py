"""Model bundles: one `.safetensors` file with the weights and the whole manifest.

safetensors is a JSON header followed by raw tensor buffers: loading one executes nothing, unlike a
pickle, so a model file a user hands the app can be opened safely. The manifest (format version,
architecture, modalities and their preprocessing, labels, training recipe, evaluation figures, data
provenance) lives as JSON in the header's metadata under the key `qmf.manifest`, next to a SHA-256 of
the weights, so that a flipped byte in a tensor is caught too, and a SHA-256 over the manifest text and
that weights checksum, so that an edited manifest (swapped labels, other preprocessing) is refused as
well. These are checksums against damage and careless edits, not signatures: whoever rewrites the
file on purpose can rewrite them too.

A bundle may also carry the ONNX graph of the whole model as one uint8 tensor (`GRAPH_TENSOR`, see
app/qmf/onnx_graph.py): covered by the weights checksum like every tensor, written by `save_bundle` and
added to an older file by `add_graph` (`qmf export-onnx`). `read_bundle` validates a file and hands out
that graph without torch; `load_bundle` builds the torch model (training, and files without a graph).

`read_bundle_manifest` parses the header by hand and imports neither torch nor safetensors, so the
desktop app can build its panels for a model before torch has finished loading.

A model file is input like any other: both readers check every manifest value against the ranges
documented in `app.qmf.manifest_schema`, bound the file and header size and the JSON nesting
depth, and `load_bundle` compares every tensor's shape in the header with the shapes the
architecture implies before a single weight is allocated, so an absurd or inconsistent file is a
BundleError, never gigabytes of memory or a traceback.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.qmf.manifest_schema import MAX_JSON_DEPTH, SchemaError, json_depth, validate_manifest

# The locator moved to app.resources (one place for the app, the self-test and the CLI); these
# names stay importable from here.
from app.resources import DEFAULT_MODEL_NAME, default_model_path, resources_dir  # noqa: F401
from app.util.errors import UserError
from app.util.files import atomic_path

FORMAT_NAME = "qmf-studio-bundle"
FORMAT_VERSION = 1
MANIFEST_KEY = "qmf.manifest"
WEIGHTS_HASH_KEY = "qmf.weights_sha256"
MANIFEST_HASH_KEY = "qmf.manifest_sha256"
MAX_HEADER_BYTES = 16 * 1024 * 1024  # the bundled model's header is a few KB; a 200,000-word vocabulary ~3 MB
MAX_BUNDLE_BYTES = 256 * 1024 * 1024  # the bundled model is ~1.1 MB; weights are read into memory twice
GRAPH_TENSOR = "qmf.onnx_graph"  # the same name as app.qmf.onnx_graph.GRAPH_TENSOR (tested)
# safetensors dtype codes -> str(torch dtype), so the weights checksum can be computed without torch
_TORCH_DTYPE_NAMES = {
    "F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16",
    "I64": "torch.int64", "I32": "torch.int32", "I16": "torch.int16", "I8": "torch.int8",
    "U8": "torch.uint8", "BOOL": "torch.bool",
}


class BundleError(UserError):
    """A model file cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _unreadable(path: Path, exc: OSError) -> BundleError:
    """The one-line error for a model file the system would not let us read."""
    if isinstance(exc, FileNotFoundError):
        return BundleError(path, "file not found")
    if isinstance(exc, IsADirectoryError):
        return BundleError(path, "is a folder, not a model file")
    if isinstance(exc, PermissionError):
        return BundleError(path, "permission denied")
    return BundleError(path, f"cannot read the model file: {exc.strerror or exc}")


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """Parse a safetensors header; returns (header dict, byte length of header + 8)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise BundleError(path, "not a model file: too short to hold a safetensors header")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise BundleError(path, f"not a model file: the header claims {n:,} bytes, above the limit of "
                                        f"{MAX_HEADER_BYTES:,}")
            raw = fh.read(n)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(raw) < n:
        raise BundleError(path, "truncated: the header is cut short")
    header = _parse_json(path, raw, "the safetensors header")
    if not isinstance(header, dict):
        raise BundleError(path, "not a model file: the header is not a JSON object")
    return header, 8 + n


def _parse_json(path: Path, raw: bytes | str, what: str) -> Any:
    """json.loads with the failures a hand-made file can cause turned into one-line BundleErrors.

    JSON nested deeper than the interpreter's recursion limit makes the parser raise RecursionError
    (it stops there, so a 100,000-deep header costs nothing); anything deeper than MAX_JSON_DEPTH
    is refused as well, so no later code walks an absurdly deep structure.
    """
    try:
        value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(path, f"not a model file: {what} is not valid JSON") from None
    except RecursionError:
        value = None
        deep = True
    else:
        deep = json_depth(value) > MAX_JSON_DEPTH
    if deep:
        raise BundleError(path, f"not a model file: {what} is nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def manifest_digest(manifest_text: str, weights_sha256: str) -> str:
    """SHA-256 binding the manifest text, exactly as stored, to the weights' checksum."""
    return hashlib.sha256(manifest_text.encode("utf-8") + b"\n" + weights_sha256.encode("ascii", "replace")).hexdigest()


def _manifest_from_header(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise BundleError(path, "not a model file: the safetensors metadata is not a table of strings")
    if MANIFEST_KEY not in meta:
        raise BundleError(path, "a safetensors file, but not a QMF Studio model (no qmf.manifest in its metadata)")
    try:
        manifest = _parse_json(path, meta[MANIFEST_KEY], "the model's manifest")
    except BundleError as exc:
        if "not valid JSON" in exc.reason:
            raise BundleError(path, "the model's manifest is not valid JSON (the file was edited or damaged)") from None
        raise
    if not isinstance(manifest, dict):
        raise BundleError(path, "the model's manifest is not a JSON object (the file was edited or damaged)")
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(path, f"unknown model format {manifest.get('format')!r}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            path,
            f"model format version {version} is not supported by this version of QMF Studio "
            f"(it reads version {FORMAT_VERSION}); use a matching QMF Studio or re-export the model",
        )
    stored = meta.get(MANIFEST_HASH_KEY)
    if stored is None:
        raise BundleError(path, "the model's manifest has no checksum (not written by this version of QMF Studio)")
    if manifest_digest(meta[MANIFEST_KEY], meta.get(WEIGHTS_HASH_KEY, "")) != stored:
        raise BundleError(path, "the model's manifest does not match its checksum: the file was edited or damaged")
    for key in ("name", "model"):
        if key not in manifest:
            raise BundleError(path, f"the model's manifest has no {key!r} entry")
    try:
        validate_manifest(manifest)
    except SchemaError as exc:
        raise BundleError(path, f"the model's manifest is not usable: {exc}") from None
    return manifest


def _tensor_bytes_end(path: Path, header: dict[str, Any]) -> int:
    """Where the last tensor's bytes end, after checking every tensor entry has the safetensors shape."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(v, int) and v >= 0 for v in offsets) or offsets[0] > offsets[1]):
            raise BundleError(path, f"damaged weights: the entry for tensor {name!r} has no valid data_offsets")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                  for v in shape):
            raise BundleError(path, f"damaged weights: the entry for tensor {name!r} has no valid shape")
        end = max(end, offsets[1])
    return end


def _refuse_shape_mismatch(path: Any, expected: dict[str, tuple], in_file: dict[str, tuple]) -> None:
    """Refuse weights whose names or shapes differ from the architecture's, naming the first few."""
    missing = sorted(set(expected) - set(in_file))
    unexpected = sorted(set(in_file) - set(expected))
    wrong = sorted(k for k in set(expected) & set(in_file) if expected[k] != in_file[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:3]}{' …' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:3]}{' …' if len(unexpected) > 3 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape mismatch for {k}: file {in_file[k]}, architecture {expected[k]}")
        raise BundleError(path, "weights do not fit the architecture: " + "; ".join(parts))


def _check_tensor_shapes(path: Path, header: dict[str, Any], config: Any) -> None:
    """Compare the header's tensor names and shapes with the architecture's, before building it.

    The architecture is instantiated on torch's "meta" device, which records shapes and allocates
    nothing, so a 11 KB file that describes six layers of 4096 channels is refused at once instead
    of after building gigabytes of weights.
    """
    import torch

    from app.qmf.model import QMFModel

    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in QMFModel(config).state_dict().items()}
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise BundleError(path, f"cannot build the model it describes: {exc}") from None
    in_file = {k: tuple(v["shape"]) for k, v in header.items() if k not in ("__metadata__", GRAPH_TENSOR)}
    _refuse_shape_mismatch(path, expected, in_file)


def read_bundle_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of a model file, from its header alone (cheap; imports no torch)."""
    path = Path(path)
    header, _ = _read_header(path)
    return _manifest_from_header(path, header)


def weights_digest(tensors: dict[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _raw_weights_digest(path: Path, header: dict[str, Any], data: bytes, data_start: int) -> str:
    """`weights_digest` computed from the file's bytes and header alone (no torch, no safetensors)."""
    h = hashlib.sha256()
    view = memoryview(data)
    for name in sorted(k for k in header if k != "__metadata__"):
        entry = header[name]
        dtype = _TORCH_DTYPE_NAMES.get(entry.get("dtype"))
        shape = entry.get("shape")
        if dtype is None or not isinstance(shape, list) or not all(isinstance(v, int) and v >= 0 for v in shape):
            raise BundleError(path, f"damaged weights: the entry for tensor {name!r} has no valid dtype and shape")
        begin, end = entry["data_offsets"]
        h.update(name.encode())
        h.update(dtype.encode())
        h.update(str(tuple(shape)).encode())
        h.update(view[data_start + begin : data_start + end])
    return h.hexdigest()


@dataclass
class Bundle:
    path: Path | None
    manifest: dict[str, Any]
    model: Any  # QMFModel, in eval mode; None when read for the ONNX path (read_bundle)
    sha256: str  # of the whole file: the model's identity in reviews and JSON output
    graph: bytes | None = None  # the ONNX graph of the whole model, when the file carries one

    @property
    def name(self) -> str:
        return str(self.manifest["name"])


def _read_data(path: Path, header: dict[str, Any], data_start: int) -> bytes:
    """The whole file, once its header has been checked: bounded in size and not cut short."""
    expected_end = _tensor_bytes_end(path, header)
    try:
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise BundleError(path, f"{size:,} bytes, above the limit of {MAX_BUNDLE_BYTES:,} for a model file")
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if len(data) - data_start < expected_end:
        raise BundleError(path, f"truncated: {len(data)} bytes, the header promises {data_start + expected_end}")
    return data


def _read_checked(path: Path) -> tuple[bytes, dict[str, Any], int, dict[str, Any]]:
    """The file's bytes, header, data start and manifest, with header, manifest and length checked."""
    header, data_start = _read_header(path)  # header first: refuse before reading the weights
    manifest = _manifest_from_header(path, header)
    return _read_data(path, header, data_start), header, data_start, manifest


def read_bundle(path: str | Path | None = None) -> Bundle:
    """Validate a model file without torch (header, manifest and weights checksums) and return it with
    its ONNX graph (`graph` None when the file has none; `model` always None).

    The graph's bytes are not parsed here; app/qmf/onnx_graph.py checks them before use.
    """
    path = Path(path) if path is not None else default_model_path()
    data, header, data_start, manifest = _read_checked(path)
    stored_digest = (header.get("__metadata__") or {}).get(WEIGHTS_HASH_KEY)
    if stored_digest is None:
        raise BundleError(path, "the model has no weights checksum (not written by QMF Studio)")
    if _raw_weights_digest(path, header, data, data_start) != stored_digest:
        raise BundleError(path, "the weights do not match their checksum: the file was modified or damaged")
    graph = None
    entry = header.get(GRAPH_TENSOR)
    if entry is not None:
        if entry.get("dtype") != "U8" or len(entry.get("shape") or []) != 1:
            raise BundleError(path, f"the tensor {GRAPH_TENSOR!r} is not a byte string (the file was edited)")
        begin, end = entry["data_offsets"]
        graph = data[data_start + begin : data_start + end]
    return Bundle(path=path, manifest=manifest, model=None, sha256=hashlib.sha256(data).hexdigest(), graph=graph)


def parameter_count(path: str | Path, header: dict[str, Any] | None = None) -> int:
    """Trainable parameters of a model file, from its header (batch-norm statistics and the graph are
    not parameters)."""
    path = Path(path)
    if header is None:
        header, _ = _read_header(path)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    total = 0
    for name, entry in header.items():
        if name in ("__metadata__", GRAPH_TENSOR) or name.rsplit(".", 1)[-1] in buffers:
            continue
        n = 1
        for v in entry.get("shape") or []:
            n *= int(v)
        total += n
    return total


def save_bundle(path: str | Path, model: Any, manifest: dict[str, Any], graph: bool = True) -> Path:
    """Write `model`, its manifest and (with `graph`) its ONNX graph to one safetensors file
    (atomically: temp file, then rename).

    The manifest is checked against the schema first, so a model that could not be opened is never
    written (BundleError naming the value). Its `format`, `format_version` and `model` entries are always
    this function's own, so a loaded bundle's manifest can be passed back as it is.
    """
    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    full = {
        **manifest,
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
    }
    full.setdefault("name", model.config.name)
    try:
        validate_manifest(json.loads(json.dumps(full)))
    except SchemaError as exc:
        raise BundleError(path, f"refusing to write a model that could not be opened: {exc}") from None
    if graph:
        state[GRAPH_TENSOR] = _graph_tensor(model)
    return seal_bundle(path, state, full)


def _graph_tensor(model: Any) -> Any:
    import torch

    from app.qmf.onnx_export import export_graph

    return torch.frombuffer(bytearray(export_graph(model)), dtype=torch.uint8)


def seal_bundle(path: str | Path, state: dict[str, Any], manifest: dict[str, Any]) -> Path:
    """Write tensors and a manifest exactly as given, with consistent checksums, without validating.

    `save_bundle` is the way to write a model. This is the sealing step alone, for tests and fuzzing
    that need a well-sealed file holding values the readers must refuse.
    """
    return _write(Path(path), state, json.dumps(manifest, sort_keys=True))


def _write(path: Path, tensors: dict[str, Any], manifest_text: str) -> Path:
    from safetensors.torch import save_file

    weights_sha256 = weights_digest(tensors)
    metadata = {MANIFEST_KEY: manifest_text, WEIGHTS_HASH_KEY: weights_sha256,
                MANIFEST_HASH_KEY: manifest_digest(manifest_text, weights_sha256)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def add_graph(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the model file at `path` again with the ONNX graph of its own weights (to `out`, default
    in place). The weights and the manifest text stay byte-for-byte the same; a graph already there is
    replaced. Needs torch and onnx (the export)."""
    from safetensors.torch import load as load_tensors

    path = Path(path)
    bundle = load_bundle(path)  # full validation before anything is rewritten
    data = path.read_bytes()
    header, _ = _read_header(path)
    tensors = {k: v for k, v in load_tensors(data).items() if k != GRAPH_TENSOR}
    tensors[GRAPH_TENSOR] = _graph_tensor(bundle.model)
    return _write(Path(out) if out is not None else path, tensors, header["__metadata__"][MANIFEST_KEY])


def load_bundle(path: str | Path | None = None, device: str = "cpu") -> Bundle:
    """Load and fully validate a model file. Raises BundleError saying what is wrong."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    from app.modalities import get_modality
    from app.qmf.model import ModelConfig, QMFModel

    path = Path(path) if path is not None else default_model_path()
    header, data_start = _read_header(path)  # header first: refuse before reading the weights
    manifest = _manifest_from_header(path, header)
    try:
        config = ModelConfig.from_dict(manifest["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(path, f"the model's architecture entry is invalid: {exc}") from None
    _check_tensor_shapes(path, header, config)
    data = _read_data(path, header, data_start)
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(path, f"damaged weights: {exc}") from None
    stored_digest = (header.get("__metadata__") or {}).get(WEIGHTS_HASH_KEY)
    if stored_digest is None:
        raise BundleError(path, "the model has no weights checksum (not written by QMF Studio)")
    if weights_digest(tensors) != stored_digest:
        raise BundleError(path, "the weights do not match their checksum: the file was modified or damaged")
    graph_tensor = tensors.pop(GRAPH_TENSOR, None)
    for m in config.modalities:
        try:
            get_modality(m.kind, m.preprocessing)
        except (KeyError, ValueError, TypeError) as exc:
            raise BundleError(path, f"modality {m.name!r}: {exc}") from None
    try:
        model = QMFModel(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(path, f"cannot build the model it describes: {exc}") from None
    _refuse_shape_mismatch(path, {k: tuple(v.shape) for k, v in model.state_dict().items()},
                           {k: tuple(v.shape) for k, v in tensors.items()})
    model.load_state_dict(tensors, strict=True)
    model.to(torch.device(device)).eval()
    graph = graph_tensor.numpy().tobytes() if graph_tensor is not None else None
    return Bundle(path=path, manifest=manifest, model=model, sha256=hashlib.sha256(data).hexdigest(), graph=graph)
