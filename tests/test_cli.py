"""The `qmf` command line end to end, on a model trained inside the test session."""

import csv
import json
import subprocess
import sys

import pytest

from app.cli import main
from app.qmf.predictor import Predictor


def first_row(pairs, split="test", label=None):
    rows = list(csv.DictReader(open(pairs.root / f"{split}.csv")))
    row = next(r for r in rows if label is None or r["label"] == label)
    return pairs.root / row["image"], pairs.root / row["audio"], row["label"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_json_matches_the_library_and_names_every_field(tiny_model, synthetic_pairs, capsys):
    image, audio, label = first_row(synthetic_pairs, label="mid")
    code, out, err = run(capsys, "predict", "--model", tiny_model, "--image", image, "--audio", audio, "--json")
    assert code == 0, err
    data = json.loads(out)
    expected = Predictor.load(tiny_model).predict_files({"image": image, "audio": audio})
    assert data["label"] == expected.label == label
    assert data["model"]["name"] == "tiny-test-model" and len(data["model"]["sha256"]) == 64
    assert data["labels"] == ["low", "mid", "high"]
    assert data["probability"] == pytest.approx(expected.probability, rel=1e-6)
    for name in ("image", "audio"):
        m = data["modalities"][name]
        assert set(m) >= {"file", "label", "probability", "probabilities", "energy", "quality", "share"}
        assert m["quality"] == pytest.approx(expected.modalities[name].quality, rel=1e-6)
        assert m["share"] == pytest.approx(expected.modalities[name].share, rel=1e-6)
    assert sum(data["modalities"][n]["share"] for n in ("image", "audio")) == pytest.approx(1.0)


def test_positional_files_are_routed_by_type(tiny_model, synthetic_pairs, capsys):
    image, audio, label = first_row(synthetic_pairs, label="high")
    code, out, _ = run(capsys, "predict", "--model", tiny_model, audio, image, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["modalities"]["image"]["file"] == str(image)
    assert data["modalities"]["audio"]["file"] == str(audio)


def test_corrupting_an_input_lowers_its_share(tiny_model, synthetic_pairs, capsys):
    image, audio, _ = first_row(synthetic_pairs)
    _, clean, _ = run(capsys, "predict", "--model", tiny_model, image, audio, "--json")
    _, noisy, _ = run(capsys, "predict", "--model", tiny_model, image, audio, "--json",
                      "--corrupt", "image:missing:10")
    clean, noisy = json.loads(clean), json.loads(noisy)
    assert noisy["modalities"]["image"]["share"] < clean["modalities"]["image"]["share"]
    assert noisy["corruptions"] == [{"modality": "image", "kind": "missing", "level": 10.0}]


def test_human_readable_output_shows_label_and_shares(tiny_model, synthetic_pairs, capsys):
    image, audio, label = first_row(synthetic_pairs, label="low")
    code, out, _ = run(capsys, "predict", "--model", tiny_model, image, audio)
    assert code == 0
    assert out.startswith(f"prediction: {label}")
    assert "image" in out and "audio" in out and "%" in out
    assert "degraded" not in out
    _, degraded, _ = run(capsys, "predict", "--model", tiny_model, image, audio, "--corrupt", "audio:white_noise:8")
    assert "degraded before prediction: audio white_noise level 8" in degraded  # never silently


def test_eval_skips_bad_rows_with_a_warning_and_counts_them_once(tiny_model, synthetic_pairs, tmp_path, capsys):
    rows = list(csv.DictReader(open(synthetic_pairs.test_csv)))[:9]
    root = synthetic_pairs.root
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    lines = [f"{r['id']},{root / r['image']},{root / r['audio']},{r['label']}" for r in rows]
    lines[1] = f"{rows[1]['id']},{broken},{root / rows[1]['audio']},{rows[1]['label']}"  # unreadable image
    lines[2] = f"{rows[2]['id']},{root / rows[2]['image']},{root / rows[2]['audio']},"  # no label
    lines[3] = f"{rows[3]['id']},{tmp_path / 'gone.png'},{tmp_path / 'gone.wav'},nonsense"  # 3 problems, 1 row
    manifest = tmp_path / "mixed.csv"
    manifest.write_text("id,image,audio,label\n" + "\n".join(lines) + "\n")
    code, out, err = run(capsys, "eval", "--model", tiny_model, "--manifest", manifest, "--levels", "0",
                         "--seeds", "1", "--json")
    assert code == 0, err
    assert "broken.png" in err and "no label" in err
    assert json.loads(out)["skipped_rows"] == 3
    nolabels = tmp_path / "nolabels.csv"
    nolabels.write_text("id,image,audio\n" + "\n".join(",".join(ln.split(",")[:3]) for ln in lines[4:]) + "\n")
    code, _, err = run(capsys, "eval", "--model", tiny_model, "--manifest", nolabels)
    assert code != 0 and "needs a 'label' column" in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image", "{bad}"], "bad.png"),
        (["--image", "{missing}"], "missing.png"),
        (["--corrupt", "image:nonsense:3", "{image}"], "nonsense"),
        (["--corrupt", "image:gaussian:11", "{image}"], "between 0 and 10"),
        (["--text", "{image}"], "--text"),
        (["{csv}"], "test.csv"),
    ],
)
def test_bad_input_is_one_line_with_nonzero_exit(tiny_model, synthetic_pairs, tmp_path, capsys, args, fragment):
    bad = tmp_path / "bad.png"
    bad.write_text("this is not an image")
    image, _, _ = first_row(synthetic_pairs)
    subs = {"bad": bad, "missing": tmp_path / "missing.png", "image": image, "csv": synthetic_pairs.test_csv}
    argv = ["predict", "--model", str(tiny_model), *[a.format(**subs) for a in args]]
    code, out, err = run(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_bad_model_file_is_reported(tmp_path, capsys):
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x00" * 40)
    code, _, err = run(capsys, "predict", "--model", fake, "--image", "x.png")
    assert code != 0 and "fake.safetensors" in err and len(err.strip().splitlines()) == 1


def test_eval_json_has_the_protocol_table(tiny_model, synthetic_pairs, capsys):
    code, out, err = run(capsys, "eval", "--model", tiny_model, "--manifest", synthetic_pairs.test_csv,
                         "--levels", "0,10", "--seeds", "2", "--json", "--kinds", "image:missing")
    assert code == 0, err
    data = json.loads(out)
    assert [lv["level"] for lv in data["levels"]] == [0.0, 10.0]
    for lv in data["levels"]:
        assert set(lv["accuracy"]) >= {"qmf", "late_fusion", "oracle", "image", "audio"}
        assert 0.0 <= lv["accuracy"]["qmf"]["mean"] <= 1.0 and lv["accuracy"]["qmf"]["std"] >= 0.0
        assert set(lv["quality_auroc"]) == {"image", "audio"}
    assert data["levels"][0]["accuracy"]["qmf"]["mean"] > 0.9  # the tiny model is right on clean pairs
    assert data["levels"][1]["quality_auroc"]["image"] is not None
    assert data["kinds"] == {"image": "missing", "audio": "white_noise"}


def test_eval_rejects_unknown_kind(tiny_model, synthetic_pairs, capsys):
    code, _, err = run(capsys, "eval", "--model", tiny_model, "--manifest", synthetic_pairs.test_csv,
                       "--kinds", "image:wobble")
    assert code != 0 and "wobble" in err


def test_train_then_info(synthetic_pairs, tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text("""
name = "cli-trained"
weight_floor = 0.1
[[modalities]]
name = "image"
kind = "image"
encoder = { channels = [4, 8], hidden = 16 }
[[modalities]]
name = "audio"
kind = "audio"
preprocessing = { duration = 0.6 }
encoder = { channels = [4, 8], hidden = 16, temporal = 3 }
[training]
epochs = 2
batch_size = 16
""")
    out = tmp_path / "m.safetensors"
    code, stdout, err = run(capsys, "train", "--config", recipe, "--manifest", synthetic_pairs.train_csv,
                            "--val", synthetic_pairs.val_csv, "--out", out, "--quiet")
    assert code == 0, err
    assert out.exists() and "wrote" in stdout
    code, stdout, _ = run(capsys, "info", out)
    assert code == 0
    assert "cli-trained" in stdout and "high, low, mid" in stdout
    assert "weight floor 0.1" in stdout  # the recipe's fusion floor reached the bundle
    # the card says how each input is encoded: the image pooled globally, the audio through time
    assert "CNN 4-8, hidden 16, global average pooling" in stdout
    assert "CNN 4-8, hidden 16, temporal pooling (kernel 3)" in stdout
    code, stdout, _ = run(capsys, "info", out, "--json")
    info = json.loads(stdout)
    assert info["training"]["recipe"]["training"]["epochs"] == 2
    assert info["provenance"]["train_rows"] == 72


def test_qmf_entry_point_runs_as_a_process(tiny_model):
    proc = subprocess.run([sys.executable, "-m", "app.cli", "info", str(tiny_model)], capture_output=True, text=True)
    assert proc.returncode == 0 and "tiny-test-model" in proc.stdout


def test_eval_sweep_degrades_one_input_and_its_share_falls(tiny_model, synthetic_pairs, capsys):
    code, out, err = run(capsys, "eval", "--model", tiny_model, "--manifest", synthetic_pairs.test_csv,
                         "--sweep", "image:missing", "--levels", "0,10", "--json")
    assert code == 0, err
    sweep = json.loads(out)["sweep"]
    assert sweep["modality"] == "image" and sweep["kind"] == "missing"
    clean, gone = sweep["levels"]
    assert gone["mean_share"]["image"] < clean["mean_share"]["image"]
    assert clean["quality_auroc"] is None and gone["quality_auroc"] is not None


def test_predict_starts_without_what_it_does_not_need(tiny_model, synthetic_pairs):
    """`qmf predict` starts in a fraction of a second: it loads no torch, no SQLite, no batch or
    training code, and no scientific library beyond numpy."""
    image, audio, _ = first_row(synthetic_pairs)
    code = ("import sys\n"
            "from app.cli import main\n"
            f"assert main(['predict', '--model', {str(tiny_model)!r}, {str(image)!r}, {str(audio)!r}]) == 0\n"
            "heavy = ('torch', 'sqlite3', 'scipy', 'pandas', 'safetensors', 'onnx', 'app.review.runner',\n"
            "         'app.review.session', 'app.qmf.train', 'app.qmf.evaluate')\n"
            "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout[-500:]


def test_info_and_export_onnx_take_the_model_as_every_other_command_does(tiny_model, tmp_path, capsys):
    code, by_option, err = run(capsys, "info", "--model", tiny_model)
    assert code == 0, err
    code, by_argument, _ = run(capsys, "info", tiny_model)
    assert by_option == by_argument and str(tiny_model) in by_option
    with pytest.raises(SystemExit) as two:
        run(capsys, "info", tiny_model, "--model", tmp_path / "other.safetensors")
    assert two.value.code == 2 and "two models given" in capsys.readouterr().err
    with pytest.raises(SystemExit) as none:
        run(capsys, "export-onnx")
    assert none.value.code == 2 and "needs the model file" in capsys.readouterr().err
    copy = tmp_path / "copy.safetensors"
    code, _, err = run(capsys, "export-onnx", "--model", tiny_model, "--out", copy)
    assert code == 0 and copy.exists(), err
