"""Tests for app.data.manifest: reading, validation with precise locations, writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.data.manifest import ManifestError, ManifestProblem, PairRow, read_manifest, write_manifest


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def write_csv(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    if crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a", "b", "c"):
        touch(tmp_path / "img" / f"{name}.png")
        touch(tmp_path / "aud" / f"{name}.wav")
    return tmp_path


def test_happy_path_relative_absolute_bom_crlf_label_index(folder: Path, tmp_path: Path) -> None:
    abs_wav = folder / "aud" / "b.wav"
    csv = write_csv(
        folder / "m.csv",
        "id,image,audio,label\n"
        " s1 , img/a.png , aud/a.wav , cat \n"
        "\n"
        f"s2,img/b.png,{abs_wav},1\n"
        ",,,\n"
        "s3,img\\c.png,aud/c.wav,\n",
        bom=True,
        crlf=True,
    )
    m = read_manifest(csv, ["image", "audio"], labels=["cat", "dog"])
    assert m.problems == []
    assert m.modalities == ["image", "audio"]
    assert [r.id for r in m.rows] == ["s1", "s2", "s3"]
    assert [r.line for r in m.rows] == [2, 4, 6]
    assert m.rows[0].files == {"image": folder / "img" / "a.png", "audio": folder / "aud" / "a.wav"}
    assert all(p.is_absolute() for r in m.rows for p in r.files.values())
    assert m.rows[1].files["audio"] == abs_wav
    assert [r.label for r in m.rows] == ["cat", "dog", None]
    assert m.labels() == ["cat", "dog"]
    assert len(m) == 3


def test_modalities_inferred_and_ids_derived(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", "image,audio\nimg/a.png,aud/a.wav\nimg/b.png,aud/b.wav\n")
    m = read_manifest(csv)
    assert m.modalities == ["image", "audio"]
    assert [r.id for r in m.rows] == ["a", "b"]
    assert all(r.label is None for r in m.rows)


def test_id_falls_back_to_row_number_and_missing_modalities_allowed(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", "image,audio,label\n,,3\nimg/a.png,,2\n")
    m = read_manifest(csv, allow_missing_modalities=True)
    # a row with no file at all is still useless
    assert [(p.line, p.column) for p in m.problems] == [(2, None)]
    assert [(r.id, list(r.files)) for r in m.rows] == [("a", ["image"])]


def test_derived_ids_made_unique_explicit_duplicates_rejected(tmp_path: Path) -> None:
    touch(tmp_path / "3" / "0.png")
    touch(tmp_path / "4" / "0.png")
    csv = write_csv(tmp_path / "m.csv", "image\n3/0.png\n4/0.png\n")
    m = read_manifest(csv)
    assert [r.id for r in m.rows] == ["0", "0@3"] and m.problems == []
    csv = write_csv(tmp_path / "m2.csv", "id,image\nx,3/0.png\n,4/0.png\nx,4/0.png\n")
    m = read_manifest(csv)
    assert [r.id for r in m.rows] == ["x", "0"]
    assert [(p.line, p.column) for p in m.problems] == [(4, "id")]


def test_numeric_labels_sorted_numerically(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", "image,label\nimg/a.png,10\nimg/b.png,2\nimg/c.png,1\n")
    assert read_manifest(csv).labels() == ["1", "2", "10"]


def test_every_problem_kind_has_line_and_column(folder: Path) -> None:
    (folder / "adir").mkdir()
    csv = write_csv(
        folder / "m.csv",
        "id,image,audio,label\n"
        "ok,img/a.png,aud/a.wav,cat\n"  # 2 fine
        "e1,,aud/b.wav,cat\n"  # 3 empty image
        "e2,img/missing.png,aud/b.wav,dog\n"  # 4 missing file
        "e3,adir,aud/b.wav,dog\n"  # 5 directory
        "ok,img/b.png,aud/b.wav,dog\n"  # 6 duplicate id
        "e4,img/c.png,aud/c.wav,bird\n"  # 7 unknown label
        "e5,img/c.png,aud/c.wav,5\n"  # 8 label index out of range
        "e6,img/c.png,aud/c.wav,cat,extra\n",  # 9 too many cells
    )
    m = read_manifest(csv, ["image", "audio"], labels=["cat", "dog"])
    assert [r.id for r in m.rows] == ["ok"]
    got = {(p.line, p.column): p.message for p in m.problems}
    assert set(got) == {
        (3, "image"),
        (4, "image"),
        (5, "image"),
        (6, "id"),
        (7, "label"),
        (8, "label"),
        (9, None),
    }
    assert got[(3, "image")].startswith("empty cell")
    assert got[(4, "image")] == f"file not found: {folder / 'img' / 'missing.png'}"
    assert "folder" in got[(5, "image")]
    assert "duplicate id 'ok'" in got[(6, "id")] and "line 2" in got[(6, "id")]
    assert "unknown label 'bird'" in got[(7, "label")]
    assert "out of range" in got[(8, "label")]
    text = str(next(p for p in m.problems if p.line == 4))
    assert text == f"{csv}:4: column 'image': file not found: {folder / 'img' / 'missing.png'}"
    assert str(ManifestProblem(9, None, "bad")) == "line 9: bad"


def test_several_problems_in_one_row_all_reported(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", "image,audio\nimg/nope.png,aud/nope.wav\n")
    m = read_manifest(csv)
    assert [(p.line, p.column) for p in m.problems] == [(2, "image"), (2, "audio")]
    assert m.rows == []


def test_check_files_off(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", "image\nimg/nope.png\n")
    m = read_manifest(csv, check_files=False)
    assert m.problems == [] and m.rows[0].files["image"] == folder / "img" / "nope.png"


def test_quoted_multiline_cell_keeps_line_numbers(folder: Path) -> None:
    csv = write_csv(folder / "m.csv", 'id,image\n"two\nlines",img/a.png\nx,img/nope.png\n')
    m = read_manifest(csv)
    assert m.rows[0].line == 2 and m.rows[0].id == "two\nlines"
    assert [p.line for p in m.problems] == [4]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"\n  \n", "empty file"),
        (b"id,label\nx,1\n", "no modality column"),
        (b"image,image\na.png,b.png\n", "duplicate column"),
        (b"ID,image,id\nx,a.png,y\n", "duplicate column"),
        (b"image\n\xff\xfe.png\n", "not UTF-8"),
    ],
)
def test_manifest_errors(tmp_path: Path, content: bytes, match: str) -> None:
    csv = tmp_path / "m.csv"
    csv.write_bytes(content)
    with pytest.raises(ManifestError, match=match):
        read_manifest(csv)


def test_missing_requested_columns_named(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "m.csv", "id,image,label\n")
    with pytest.raises(ManifestError) as err:
        read_manifest(csv, ["image", "audio"])
    assert "audio" in str(err.value) and "found: id, image, label" in str(err.value)


def test_not_found_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.csv")
    with pytest.raises(ManifestError, match="folder"):
        read_manifest(tmp_path)
    assert issubclass(ManifestError, ValueError)


def test_write_read_round_trip(folder: Path, tmp_path: Path) -> None:
    rows = [
        PairRow(1, "s1", {"image": folder / "img" / "a.png", "audio": folder / "aud" / "a.wav"}, "cat"),
        {
            "id": "s,2",
            "image": str(folder / "img" / "b.png"),
            "audio": folder / "aud" / "b.wav",
            "label": "dog",
        },
        {"id": "s3", "files": {"image": folder / "img" / "c.png"}, "label": None},
    ]
    out = write_manifest(tmp_path / "sub" / "out.csv", rows, ["image", "audio"])
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,image,audio,label"
    assert "../img/a.png" in text  # relative to the CSV, forward slashes
    m = read_manifest(out, ["image", "audio"], allow_missing_modalities=True)
    assert m.problems == []
    assert [(r.id, r.files, r.label) for r in m.rows] == [
        ("s1", rows[0].files, "cat"),
        ("s,2", {"image": folder / "img" / "b.png", "audio": folder / "aud" / "b.wav"}, "dog"),
        ("s3", {"image": folder / "img" / "c.png"}, None),
    ]

    out2 = write_manifest(tmp_path / "abs.csv", rows[:1], ["image"], relative_to_csv=False)
    lines = out2.read_text(encoding="utf-8").splitlines()
    assert lines == ["id,image,label", f"s1,{folder / 'img' / 'a.png'},cat"]


def test_write_without_labels_has_no_label_column(folder: Path, tmp_path: Path) -> None:
    out = write_manifest(tmp_path / "o.csv", [{"image": folder / "img" / "a.png"}], ["image"])
    assert out.read_text(encoding="utf-8") == "id,image\nrow1,img/a.png\n"
    with pytest.raises(ValueError):
        write_manifest(tmp_path / "bad.csv", [], ["label"])
