"""Tests for app.data.pairing: both folder layouts, labels, and every unmatched reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.data.pairing import LAYOUT_BY_NAME, LAYOUT_MODALITY_FOLDERS, pair_folder

KINDS = {".png": "image", ".jpg": "image", ".wav": "audio", ".txt": "text"}
IA = {"image": "image", "audio": "audio"}


def kind_for_path(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def make(root: Path, *names: str) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def reasons(result, root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): why for p, why in result.unmatched}


def test_pair_by_stem_flat(tmp_path: Path) -> None:
    make(tmp_path, "0042.png", "0042.wav", "0001.PNG", "0001.wav", ".DS_Store", ".hidden/x.png", "._0001.png")
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert r.layout == LAYOUT_BY_NAME
    assert [p.id for p in r.pairs] == ["0001", "0042"]
    assert r.pairs[1].files == {"image": tmp_path / "0042.png", "audio": tmp_path / "0042.wav"}
    assert all(p.label is None for p in r.pairs)
    assert [p.line for p in r.pairs] == [1, 2]
    assert r.unmatched == []


def test_pair_by_stem_labels_from_parent_folder(tmp_path: Path) -> None:
    make(tmp_path, "cat/1.png", "cat/1.wav", "dog/1.png", "dog/1.wav", "x/dog/2.jpg", "x/dog/2.wav")
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert r.layout == LAYOUT_BY_NAME
    assert [(p.id, p.label) for p in r.pairs] == [("cat/1", "cat"), ("dog/1", "dog"), ("x/dog/2", "dog")]


def test_no_labels_when_some_pair_is_at_the_root(tmp_path: Path) -> None:
    make(tmp_path, "cat/1.png", "cat/1.wav", "2.png", "2.wav")
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert [(p.id, p.label) for p in r.pairs] == [("2", None), ("cat/1", None)]


def test_by_stem_unmatched_and_ambiguous(tmp_path: Path) -> None:
    make(
        tmp_path,
        "a.png",  # no partner
        "b.wav",  # no partner
        "c.png",
        "c.jpg",  # ambiguous image
        "c.wav",  # partner of an ambiguous key
        "notes.pdf",  # unsupported
        "readme.txt",  # known kind the model does not take
        "d.png",
        "d.wav",
    )
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert [p.id for p in r.pairs] == ["d"]
    why = reasons(r, tmp_path)
    assert why["a.png"] == "no audio file with the same name"
    assert why["b.wav"] == "no image file with the same name"
    assert why["c.png"] == "ambiguous: also c.jpg"
    assert why["c.jpg"] == "ambiguous: also c.png"
    assert "ambiguous" in why["c.wav"]
    assert why["notes.pdf"] == "unsupported file type"
    assert "text" in why["readme.txt"]
    assert list(why) == sorted(why)  # deterministic order


def test_modality_folders_nested_with_labels(tmp_path: Path) -> None:
    make(
        tmp_path,
        "image/3/0042.png",
        "audio/3/0042.wav",
        "image/7/0001.png",
        "audio/7/0001.wav",
        "image/7/0002.png",  # no audio
        "audio/7/0003.wav",  # no image
        "image/7/0004.wav",  # wrong kind in folder
        "image/7/0005.bmp",  # unsupported
        "audio/7/0006.wav",
        "audio/7/0006.WAV.wav",  # different key (stem 0006.WAV) -> no partner
        "stray.png",  # outside the modality folders
        "image/.DS_Store",
    )
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert r.layout == LAYOUT_MODALITY_FOLDERS
    assert [(p.id, p.label) for p in r.pairs] == [("3/0042", "3"), ("7/0001", "7")]
    assert r.pairs[0].files == {
        "image": tmp_path / "image/3/0042.png",
        "audio": tmp_path / "audio/3/0042.wav",
    }
    why = reasons(r, tmp_path)
    assert why["image/7/0002.png"].startswith("no audio file with the same name")
    assert why["audio/7/0003.wav"].startswith("no image file with the same name")
    assert why["image/7/0004.wav"] == "an audio file in the image folder"
    assert why["image/7/0005.bmp"] == "unsupported file type"
    assert why["stray.png"].startswith("not inside a modality folder")
    assert "image/.DS_Store" not in why


def test_modality_folders_flat_no_labels_and_ambiguous(tmp_path: Path) -> None:
    make(tmp_path, "Image/1.png", "Image/1.jpg", "Audio/1.wav", "Image/2.png", "Audio/2.wav")
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert r.layout == LAYOUT_MODALITY_FOLDERS
    assert [(p.id, p.label) for p in r.pairs] == [("2", None)]
    why = reasons(r, tmp_path)
    assert why["Image/1.png"] == "ambiguous: also Image/1.jpg"
    assert "ambiguous" in why["Audio/1.wav"]


def test_same_kind_modalities_need_folders(tmp_path: Path) -> None:
    kinds = {"rgb": "image", "depth": "image"}
    make(tmp_path, "rgb/1.png", "depth/1.png")
    r = pair_folder(tmp_path, kinds, kind_for_path)
    assert r.layout == LAYOUT_MODALITY_FOLDERS and [p.id for p in r.pairs] == ["1"]
    other = tmp_path / "flat"
    make(other, "1.png")
    with pytest.raises(ValueError, match="sub-folders"):
        pair_folder(other, kinds, kind_for_path)


def test_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pair_folder(tmp_path / "nope", IA, kind_for_path)
    make(tmp_path, "f.png")
    with pytest.raises(NotADirectoryError):
        pair_folder(tmp_path / "f.png", IA, kind_for_path)
    r = pair_folder(tmp_path / ".." / tmp_path.name, {"image": "image"}, kind_for_path)
    assert [p.id for p in r.pairs] == ["f"] and r.folder == tmp_path


def test_dotted_names_pair_on_all_but_their_last_suffix(tmp_path: Path) -> None:
    from app.modalities import kind_for_path as app_kind_for_path

    make(tmp_path, "a.b.png", "a.b.wav", "scan.png.png", "scan.png.wav", "x/y.", "x/y.wav", "v1.0/c.PNG", "v1.0/c.wav")
    r = pair_folder(tmp_path, IA, app_kind_for_path)
    assert [(p.id, p.label) for p in r.pairs] == [("a.b", None), ("scan.png", None), ("v1.0/c", None)]
    assert r.pairs[2].files == {"image": tmp_path / "v1.0/c.PNG", "audio": tmp_path / "v1.0/c.wav"}
    why = reasons(r, tmp_path)
    assert why == {"x/y.": "unsupported file type", "x/y.wav": "no image file with the same name"}


def test_modality_folders_label_is_the_innermost_folder(tmp_path: Path) -> None:
    make(tmp_path, "image/4/k/5.png", "audio/4/k/5.wav", "image/3/1.b.png", "audio/3/1.b.wav")
    r = pair_folder(tmp_path, IA, kind_for_path)
    assert r.layout == LAYOUT_MODALITY_FOLDERS
    assert [(p.id, p.label) for p in r.pairs] == [("3/1.b", "3"), ("4/k/5", "k")]
    assert r.pairs[1].files == {"image": tmp_path / "image/4/k/5.png", "audio": tmp_path / "audio/4/k/5.wav"}
