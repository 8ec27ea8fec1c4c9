"""The torch-free prediction path: the model file's ONNX graph, run by onnxruntime on numpy inputs.

What a user would notice: the same numbers as the torch model (every figure the app and `qmf predict`
show, clean and degraded, on the demo pairs and on generated inputs), `qmf predict` that never loads
torch, a model file whose graph would load code or read other files refused with one line, and
`qmf export-onnx` adding a graph to an older file without touching its weights or manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.qmf import bundle as bundle_mod
from app.qmf import onnx_graph
from app.qmf.bundle import BundleError, default_model_path, read_bundle, resources_dir
from app.qmf.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = resources_dir() / "samples"
TOLERANCE = 1e-4


def _numbers(pred) -> dict[str, np.ndarray]:
    """Every figure a user sees in a prediction, flattened."""
    out = {"probabilities": np.array(pred.probabilities),
           "late_fusion": np.array(pred.late_fusion_probabilities)}
    for name, r in pred.modalities.items():
        out[f"{name}.probabilities"] = np.array(r.probabilities)
        for key in ("probability", "energy", "quality", "share"):
            out[f"{name}.{key}"] = np.array([getattr(r, key)])
    return out


def _max_error(a, b) -> tuple[float, str]:
    worst, where = 0.0, ""
    for pa, pb in zip(a, b, strict=True):
        assert pa.label == pb.label or max(pa.probabilities) - sorted(pa.probabilities)[-2] < TOLERANCE
        na, nb = _numbers(pa), _numbers(pb)
        for key in na:
            err = float(np.abs(na[key] - nb[key]).max())
            if err > worst:
                worst, where = err, key
    return worst, where


@pytest.fixture(scope="module")
def shipped_pair() -> tuple[Predictor, Predictor]:
    return Predictor.load(default_model_path()), Predictor.load(default_model_path(), backend="torch")


def test_the_bundled_model_carries_its_graph_and_runs_with_onnxruntime(shipped_pair) -> None:
    fast, slow = shipped_pair
    assert fast.backend == "onnxruntime" and slow.backend == "torch"
    assert fast.model is None and slow.model is not None
    assert fast.sha256 == slow.sha256
    assert default_model_path().stat().st_size <= 5 * 1024 * 1024


def test_demo_pairs_clean_and_degraded_agree_with_torch(shipped_pair) -> None:
    fast, slow = shipped_pair
    pairs = json.loads((SAMPLES / "samples.json").read_text(encoding="utf-8"))
    raws, files = [], []
    for pair in pairs:
        f = {name: str(SAMPLES / rel) for name, rel in pair["files"].items()}
        clean = fast.load_inputs(f)
        raws.append(clean)
        files.append(f)
        for name, modality in fast.modalities.items():
            for kind in modality.corruption_kinds:
                for level in (3, 10):
                    raws.append(fast.corrupt(clean, [(name, kind, level)], seed=level))
                    files.append(f)
    a, b = fast.predict_many(raws, files), slow.predict_many(raws, files)
    assert [p.label for p in a[:1]] == [p.label for p in b[:1]]
    worst, where = _max_error(a, b)
    assert worst < TOLERANCE, f"largest difference {worst:.2e} in {where}"
    # one at a time (the app's path) gives the same numbers as a batch
    single = fast.predict(raws[1], files[1])
    assert _max_error([single], [a[1]])[0] < TOLERANCE


def test_generated_inputs_agree_with_torch(shipped_pair) -> None:
    fast, slow = shipped_pair
    rng = np.random.default_rng(3)
    raws = []
    for i in range(48):
        image = rng.integers(0, 256, (28, 28), dtype=np.uint8) if i % 3 else np.zeros((28, 28), np.uint8)
        n = int(rng.integers(200, 16000))
        audio = (rng.normal(0, [0.0, 0.01, 0.3][i % 3], n)).astype(np.float32).clip(-1, 1)
        raws.append({"image": image, "audio": audio})
    worst, where = _max_error(fast.predict_many(raws), slow.predict_many(raws))
    assert worst < TOLERANCE, f"largest difference {worst:.2e} in {where}"


def test_a_newly_trained_model_is_saved_with_its_graph(tiny_model, synthetic_pairs) -> None:
    fast, slow = Predictor.load(tiny_model), Predictor.load(tiny_model, backend="torch")
    assert fast.backend == "onnxruntime"
    from app.data.manifest import read_manifest

    rows = read_manifest(synthetic_pairs.test_csv, modalities=None).rows[:20]
    raws = [fast.load_inputs(r.files) for r in rows]
    raws += [fast.corrupt(r, [("audio", "white_noise", 8), ("image", "gaussian", 6)]) for r in raws[:10]]
    worst, where = _max_error(fast.predict_many(raws), slow.predict_many(raws))
    assert worst < TOLERANCE, f"largest difference {worst:.2e} in {where}"


def test_predict_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from app.cli import main\n"
        f"rc = main(['predict', '--json', '--corrupt', 'audio:white_noise:5', {str(SAMPLES / 'eight.png')!r}, "
        f"{str(SAMPLES / 'eight.wav')!r}])\n"
        "assert rc == 0\n"
        "import app.qmf.evaluate, app.review.runner, app.review.cli  # eval and batch review: no torch either\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'safetensors'))\n"
        "print('LOADED', loaded)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout[-500:]
    result = json.loads(out.stdout[: out.stdout.rindex("LOADED")])
    assert result["label"] == "8"


# --- refusing graphs that would load code or read files ---------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _model(nodes, initializers=(), opset_domains=(("", 17),), functions=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opset_domains],
                              functions=list(functions))
    return model.SerializeToString()


def _external_tensor() -> TensorProto:
    t = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    return t


def _if_with_subgraph_node(inner) -> onnx.NodeProto:
    branch = helper.make_graph([inner], "b", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)


REFUSED = {
    "custom op": (_model([helper.make_node("Evil", ["x"], ["y"], domain="com.example.evil")],
                         opset_domains=(("", 17), ("com.example.evil", 1))), "custom"),
    "custom opset import": (_model([helper.make_node("Relu", ["x"], ["y"])],
                                   opset_domains=(("", 17), ("com.example.evil", 1))), "custom"),
    "custom op in a subgraph": (_model([_if_with_subgraph_node(
        helper.make_node("Evil", ["x"], ["y"], domain="com.example.evil"))]), "custom"),
    "external initializer": (_model([helper.make_node("Add", ["x", "w"], ["y"])], [_external_tensor()]),
                             "external data"),
    "external constant in a subgraph": (_model([_if_with_subgraph_node(
        helper.make_node("Constant", [], ["y"], value=_external_tensor()))]), "external data"),
    "local function": (_model([helper.make_node("Relu", ["x"], ["y"])], functions=[helper.make_function(
        "local", "f", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])], [helper.make_opsetid("", 17)])]),
        "functions"),
    "not protobuf": (b"\xff\xff\xff\xff\xff\xff", "not a valid ONNX graph"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_graphs_that_load_code_or_files_are_refused(case) -> None:
    data, words = REFUSED[case]
    with pytest.raises(onnx_graph.GraphError, match=words):
        onnx_graph.check_graph(data)


def test_a_plain_graph_and_the_shipped_graph_pass_the_check() -> None:
    onnx_graph.check_graph(_model([helper.make_node("Relu", ["x"], ["y"])]))
    graph = read_bundle(default_model_path()).graph
    onnx_graph.check_graph(graph)
    assert {o.domain for o in onnx.load_from_string(graph).opset_import} <= set(onnx_graph.ALLOWED_DOMAINS)


def _with_graph(src: Path, dst: Path, graph: bytes) -> Path:
    """`src` written again with `graph` in place of its own (checksums recomputed, as an editor could)."""
    import torch
    from safetensors.torch import load

    data = src.read_bytes()
    header, _ = bundle_mod._read_header(src)
    tensors = load(data)
    tensors[bundle_mod.GRAPH_TENSOR] = torch.frombuffer(bytearray(graph), dtype=torch.uint8)
    return bundle_mod._write(dst, tensors, header["__metadata__"][bundle_mod.MANIFEST_KEY])


def test_a_model_file_with_a_custom_op_graph_is_refused_with_one_line(tmp_path) -> None:
    evil = _with_graph(default_model_path(), tmp_path / "evil.safetensors", REFUSED["custom op"][0])
    with pytest.raises(BundleError) as info:
        Predictor.load(evil)
    assert "evil.safetensors" in str(info.value) and "custom" in str(info.value) and "\n" not in str(info.value)
    out = subprocess.run([sys.executable, "-m", "app.cli", "predict", "--model", str(evil), str(SAMPLES / "eight.png")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "custom" in out.stderr


def test_a_changed_graph_byte_breaks_the_weights_checksum(tmp_path) -> None:
    data = bytearray(default_model_path().read_bytes())
    header, start = bundle_mod._read_header(default_model_path())
    begin, _ = header[bundle_mod.GRAPH_TENSOR]["data_offsets"]
    data[start + begin + 100] ^= 0x01
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum"):
        Predictor.load(bad)


def test_graph_tensor_name_is_one_name() -> None:
    assert bundle_mod.GRAPH_TENSOR == onnx_graph.GRAPH_TENSOR


def test_export_onnx_adds_a_graph_and_keeps_weights_and_manifest(tiny_model, tmp_path) -> None:
    from safetensors.torch import load

    from app.qmf.bundle import load_bundle, save_bundle

    old = load_bundle(tiny_model)
    plain = save_bundle(tmp_path / "plain.safetensors", old.model, old.manifest, graph=False)
    before = read_bundle(plain)
    assert before.graph is None and Predictor.load(plain).backend == "torch"
    with pytest.raises(BundleError, match="export-onnx"):
        Predictor.load(plain, backend="onnx")
    out = subprocess.run([sys.executable, "-m", "app.cli", "export-onnx", str(plain)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    after = read_bundle(plain)
    assert after.graph is not None and after.manifest == before.manifest
    meta = lambda p: bundle_mod._read_header(p)[0]["__metadata__"][bundle_mod.MANIFEST_KEY]  # noqa: E731
    assert meta(plain) == meta(tiny_model)
    w_old, w_new = load(tiny_model.read_bytes()), load(plain.read_bytes())
    assert set(w_new) - set(w_old) == set() and all(
        (w_old[k] == w_new[k]).all() for k in w_old if k != bundle_mod.GRAPH_TENSOR)
    assert Predictor.load(plain).backend == "onnxruntime"


def test_numpy_log_mel_matches_torch_stft() -> None:
    """The numpy features the ONNX path uses are the torch.stft features the model was trained on."""
    import torch

    from app.modalities.audio import _feature_key, _mel_filterbank_np, log_mel

    params = Predictor.load(default_model_path()).modalities["audio"].params
    n_fft = int(params["n_fft"])
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    for x in (rng.normal(0, 0.1, 8000), 0.4 * np.sin(2 * np.pi * 440 * t), np.zeros(8000), rng.normal(0, 0.1, 37)):
        x = x.astype(np.float32)
        spec = torch.stft(torch.from_numpy(x), n_fft=n_fft, hop_length=int(params["hop_length"]), win_length=n_fft,
                          window=torch.hann_window(n_fft, periodic=True), center=True, pad_mode="constant",
                          return_complex=True)
        fb = torch.from_numpy(np.array(_mel_filterbank_np(*_feature_key(params))))
        expected = torch.log(fb @ (spec.real.square() + spec.imag.square()) + float(params["log_floor"])).numpy()
        got = log_mel(x, params)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-3


def test_without_torch_the_app_predicts_and_says_what_training_needs(tmp_path) -> None:
    """The packaged app ships without torch (packaging/qmf_packaging.py): simulate that install."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class _NoTraining:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'onnx', 'safetensors'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, _NoTraining())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def qmf(*argv):
        return subprocess.run([sys.executable, "-m", "app.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=120)

    out = qmf("predict", "--json", str(SAMPLES / "three.png"), str(SAMPLES / "three.wav"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["label"] == "3"
    out = qmf("info")
    assert out.returncode == 0 and "onnxruntime" in out.stdout, out.stderr
    out = qmf("train", "--config", "x.toml", "--manifest", "x.csv", "--out", str(tmp_path / "m.safetensors"))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "torch" in out.stderr and "source" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    selftest = subprocess.run([sys.executable, "-m", "app.selftest"], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=120)
    assert selftest.returncode == 0, selftest.stderr
