"""Model bundles: one `.safetensors` file with the weights and the whole manifest.

safetensors is a JSON header followed by raw tensor buffers: loading one executes nothing, unlike a
pickle, so a model file a user hands the app can be opened safely. The manifest (format version,
architecture, modalities and their preprocessing, labels, training recipe, evaluation figures, data
provenance) lives as JSON in the header's metadata under the key `qmf.manifest`, next to a SHA-256 of
the weights, so that a flipped byte in a tensor is caught too, and a SHA-256 over the manifest text and
that weights checksum, so that an edited manifest (swapped labels, other preprocessing) is refused as
well. These are checksums against damage and careless edits, not signatures: whoever rewrites the
file on purpose can rewrite them too.

`read_bundle_manifest` parses the header by hand and imports neither torch nor safetensors, so the
desktop app can build its panels for a model before torch has finished loading.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The locator moved to app.resources (one place for the app, the self-test and the CLI); these
# names stay importable from here.
from app.resources import DEFAULT_MODEL_NAME, default_model_path, resources_dir  # noqa: F401
from app.util.files import atomic_path

FORMAT_NAME = "qmf-studio-bundle"
FORMAT_VERSION = 1
MANIFEST_KEY = "qmf.manifest"
WEIGHTS_HASH_KEY = "qmf.weights_sha256"
MANIFEST_HASH_KEY = "qmf.manifest_sha256"
MAX_HEADER_BYTES = 100 * 1024 * 1024


class BundleError(ValueError):
    """A model file cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _read_header(path: Path, data: bytes | None = None) -> tuple[dict[str, Any], int]:
    """Parse a safetensors header; returns (header dict, byte length of header + 8)."""
    try:
        if data is None:
            with open(path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    raise BundleError(path, "not a model file: too short to hold a safetensors header")
                (n,) = struct.unpack("<Q", head)
                if n > MAX_HEADER_BYTES:
                    raise BundleError(path, "not a model file: the header length is implausible")
                raw = fh.read(n)
        else:
            if len(data) < 8:
                raise BundleError(path, "not a model file: too short to hold a safetensors header")
            (n,) = struct.unpack("<Q", data[:8])
            if n > MAX_HEADER_BYTES:
                raise BundleError(path, "not a model file: the header length is implausible")
            raw = data[8 : 8 + n]
    except FileNotFoundError:
        raise BundleError(path, "file not found") from None
    except IsADirectoryError:
        raise BundleError(path, "is a folder, not a model file") from None
    except PermissionError:
        raise BundleError(path, "permission denied") from None
    if len(raw) < n:
        raise BundleError(path, "truncated: the header is cut short")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(path, "not a model file: the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise BundleError(path, "not a model file: the header is not a JSON object")
    return header, 8 + n


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
        manifest = json.loads(meta[MANIFEST_KEY])
    except json.JSONDecodeError:
        raise BundleError(path, "the model's manifest is not valid JSON (the file was edited or damaged)") from None
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
        end = max(end, offsets[1])
    return end


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


@dataclass
class Bundle:
    path: Path | None
    manifest: dict[str, Any]
    model: Any  # QMFModel, in eval mode
    sha256: str  # of the whole file: the model's identity in reviews and JSON output

    @property
    def name(self) -> str:
        return str(self.manifest["name"])


def save_bundle(path: str | Path, model: Any, manifest: dict[str, Any]) -> Path:
    """Write `model` and its manifest to one safetensors file (atomically: temp file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    full = {
        **manifest,
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
    }
    full.setdefault("name", model.config.name)
    manifest_text = json.dumps(full, sort_keys=True)
    weights_sha256 = weights_digest(state)
    metadata = {MANIFEST_KEY: manifest_text, WEIGHTS_HASH_KEY: weights_sha256,
                MANIFEST_HASH_KEY: manifest_digest(manifest_text, weights_sha256)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def load_bundle(path: str | Path | None = None, device: str = "cpu") -> Bundle:
    """Load and fully validate a model file. Raises BundleError saying what is wrong."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    from app.modalities import get_modality
    from app.qmf.model import ModelConfig, QMFModel

    path = Path(path) if path is not None else default_model_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(path, "file not found") from None
    except IsADirectoryError:
        raise BundleError(path, "is a folder, not a model file") from None
    header, data_start = _read_header(path, data)
    manifest = _manifest_from_header(path, header)
    expected_end = _tensor_bytes_end(path, header)
    if len(data) - data_start < expected_end:
        raise BundleError(path, f"truncated: {len(data)} bytes, the header promises {data_start + expected_end}")
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise BundleError(path, f"damaged weights: {exc}") from None
    stored_digest = (header.get("__metadata__") or {}).get(WEIGHTS_HASH_KEY)
    if stored_digest is None:
        raise BundleError(path, "the model has no weights checksum (not written by QMF Studio)")
    if weights_digest(tensors) != stored_digest:
        raise BundleError(path, "the weights do not match their checksum: the file was modified or damaged")
    try:
        config = ModelConfig.from_dict(manifest["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(path, f"the model's architecture entry is invalid: {exc}") from None
    for m in config.modalities:
        try:
            get_modality(m.kind, m.preprocessing)
        except (KeyError, ValueError, TypeError) as exc:
            raise BundleError(path, f"modality {m.name!r}: {exc}") from None
    try:
        model = QMFModel(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(path, f"cannot build the model it describes: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing tensors {missing[:3]}{' …' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected tensors {unexpected[:3]}{' …' if len(unexpected) > 3 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"shape mismatch for {k}: file {tuple(tensors[k].shape)}, architecture {tuple(expected[k].shape)}")
        raise BundleError(path, "weights do not fit the architecture: " + "; ".join(parts))
    model.load_state_dict(tensors, strict=True)
    model.to(torch.device(device)).eval()
    return Bundle(path=path, manifest=manifest, model=model, sha256=hashlib.sha256(data).hexdigest())
