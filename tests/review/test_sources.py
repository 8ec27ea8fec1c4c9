"""Review sources: folders and manifests become pairs; labels, unmatched files and unknown labels are named."""

from __future__ import annotations

from pathlib import Path

from app.data.pairing import LAYOUT_BY_NAME, LAYOUT_MODALITY_FOLDERS
from app.review.sources import load_source, may_hold
from tests.review.conftest import KINDS, make_review_folder, write_manifest
from tests.synthetic import CLASSES


def test_folder_by_name_pairs_labels_and_lists_unmatched(review_folder: Path) -> None:
    (review_folder / "low" / "stray.png").write_bytes((review_folder / "low" / "low_000.png").read_bytes())
    (review_folder / "readme.txt.bak").write_text("notes")
    src = load_source(review_folder, KINDS, CLASSES)
    assert src.kind == "folder" and src.layout == LAYOUT_BY_NAME
    assert len(src.pairs) == 15
    assert {p.label for p in src.pairs} == set(CLASSES)
    pair = next(p for p in src.pairs if p.id == "mid/mid_002")
    assert pair.files == {"image": review_folder / "mid" / "mid_002.png", "audio": review_folder / "mid" / "mid_002.wav"}
    unmatched = {p.name: why for p, why in src.unmatched}
    assert "no audio file" in unmatched["stray.png"]
    assert unmatched["readme.txt.bak"] == "unsupported file type"


def test_folder_with_modality_subfolders(tmp_path: Path) -> None:
    flat = make_review_folder(tmp_path / "flat", per_class=2)
    root = tmp_path / "mod"
    for f in sorted(flat.rglob("*.*")):
        sub = "image" if f.suffix == ".png" else "audio"
        dest = root / sub / f.relative_to(flat)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    (root / "audio" / "low" / "low_000.wav").unlink()
    src = load_source(root, KINDS, CLASSES)
    assert src.layout == LAYOUT_MODALITY_FOLDERS
    assert len(src.pairs) == 5
    assert {p.label for p in src.pairs} == set(CLASSES)
    assert [p.name for p, _ in src.unmatched] == ["low_000.png"]


def test_manifest_source_keeps_rows_with_missing_files_and_index_labels(tmp_path: Path, review_folder: Path) -> None:
    csv_path = write_manifest(tmp_path / "pairs.csv", [
        ("a", review_folder / "low/low_000.png", review_folder / "low/low_000.wav", "low"),
        ("b", review_folder / "mid/mid_000.png", review_folder / "mid/mid_000.wav", "1"),
        ("c", review_folder / "nope.png", review_folder / "mid/mid_001.wav", "mid"),
        ("d", "", "x.wav", "low"),
    ])
    src = load_source(csv_path, KINDS, CLASSES)
    assert [p.id for p in src.pairs] == ["a", "b", "c"]
    assert [p.label for p in src.pairs] == ["low", "mid", "mid"]
    assert len(src.problems) == 1 and "empty cell" in src.problems[0]


def test_folder_names_that_are_no_labels_leave_pairs_unlabelled(tmp_path: Path) -> None:
    """`day/2024-05-01/...` is a date, not a class: it must not turn every pair into a mismatch."""
    flat = make_review_folder(tmp_path / "flat", per_class=1)
    root = tmp_path / "by-day"
    for i, f in enumerate(sorted(flat.rglob("*.png"))):
        for src_file in (f, f.with_suffix(".wav")):
            dest = root / f"2024-05-0{i + 1}" / src_file.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src_file.read_bytes())
    src = load_source(root, KINDS, CLASSES)
    assert len(src.pairs) == 3 and all(p.label is None for p in src.pairs)
    assert src.notes and "2024-05-01" in src.notes[0] and "unlabelled" in src.notes[0]
    assert load_source(flat, KINDS, CLASSES).notes == []  # class-named folders stay labels


def test_manifest_labels_the_model_does_not_know_are_kept_and_named(tmp_path: Path, review_folder: Path) -> None:
    csv_path = write_manifest(tmp_path / "pairs.csv", [
        ("a", review_folder / "low/low_000.png", review_folder / "low/low_000.wav", "three"),
        ("b", review_folder / "mid/mid_000.png", review_folder / "mid/mid_000.wav", "mid"),
    ])
    src = load_source(csv_path, KINDS, CLASSES)
    assert [p.label for p in src.pairs] == ["three", "mid"]
    assert len(src.notes) == 1 and "pairs.csv:2" in src.notes[0] and "'three'" in src.notes[0]


def test_a_folder_name_that_is_no_label_leaves_only_its_own_pairs_unlabelled(tmp_path: Path) -> None:
    """Class folders beside a `samples/` folder: the class folders keep their labels, `samples/` has none."""
    root = make_review_folder(tmp_path / "pairs", per_class=2)
    extra = root / "samples"
    extra.mkdir()
    for f in sorted((root / "low").glob("low_000.*")):
        (extra / f.name.replace("low", "s")).write_bytes(f.read_bytes())
    src = load_source(root, KINDS, CLASSES)
    labels = {p.id: p.label for p in src.pairs}
    assert labels["samples/s_000"] is None
    assert labels["low/low_001"] == "low" and {labels[k] for k in labels if not k.startswith("samples/")} == set(CLASSES)
    assert len(src.notes) == 1 and "samples" in src.notes[0] and "1 pair" in src.notes[0]


def test_may_hold_is_never_below_the_pairs_a_source_gives(review_folder: Path, tmp_path: Path) -> None:
    """`qmf batch` asks it before reading the source, to fork its workers early: it may say yes too soon
    (a stray file), never no when the source holds that many pairs."""
    (review_folder / ".hidden").mkdir()
    for i in range(40):
        (review_folder / ".hidden" / f"x{i}.png").write_bytes(b"")
    pairs = len(load_source(review_folder, KINDS, CLASSES).pairs)
    assert pairs == 15
    assert may_hold(review_folder, 2, 15) and not may_hold(review_folder, 2, 16)  # hidden files not counted
    (review_folder / "low" / "stray.png").write_bytes(b"")
    assert may_hold(review_folder, 2, 15) and not may_hold(review_folder, 2, 17)
    rows = [(f"p{i}", str(review_folder / "low" / "low_000.png"), str(review_folder / "low" / "low_000.wav"), "low")
            for i in range(30)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    assert len(list(load_source(manifest, KINDS, CLASSES).pairs)) == 30
    assert may_hold(manifest, 2, 30) and not may_hold(manifest, 2, 40)
    assert not may_hold(tmp_path / "missing", 2, 1) and not may_hold(tmp_path / "m.parquet", 2, 1)
