"""Manifests and folders a user made by hand: odd cells, odd names, huge files; one line each, nothing lost.

Reproducers from the reliability audit, generated here: a `~user` cell, an office lock name `~$x.png`,
a NUL byte, a cell over Python's csv limit, a 5,000-character file name, a file name that is not
UTF-8, a folder deeper than PATH_MAX, and a manifest read as a stream.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from app.data.manifest import ManifestError, iter_manifest, read_manifest
from app.data.pairing import pair_folder
from app.modalities import kind_for_path


def _manifest(tmp_path: Path, *rows: str) -> Path:
    (tmp_path / "a.png").write_bytes(b"png")
    (tmp_path / "a.wav").write_bytes(b"wav")
    path = tmp_path / "pairs.csv"
    path.write_text("id,image,audio,label\n" + "".join(r + "\n" for r in rows) + "y,a.png,a.wav,3\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("cell", ["~nosuchuser/a.png", "~$lock.png", "~"])
def test_tilde_cells_are_names_not_home_lookups(tmp_path, cell):
    m = read_manifest(_manifest(tmp_path, f"x,{cell},a.wav,3"), ["image", "audio"])
    assert [r.id for r in m.rows] == ["y"]
    assert len(m.problems) == 1 and m.problems[0].line == 2 and m.problems[0].column == "image"


def test_office_lock_name_is_a_file_in_the_manifest_folder(tmp_path):
    path = _manifest(tmp_path, "x,~$lock.png,a.wav,3")
    (tmp_path / "~$lock.png").write_bytes(b"png")
    m = read_manifest(path, ["image", "audio"])
    assert m.rows[0].files["image"] == tmp_path / "~$lock.png"


def test_nul_byte_in_a_cell_is_a_row_problem(tmp_path):
    m = read_manifest(_manifest(tmp_path, "x,a\0.png,a.wav,3"), ["image", "audio"])
    assert [r.id for r in m.rows] == ["y"]
    assert "NUL byte" in str(m.problems[0])


def test_cell_over_the_csv_limit_is_a_row_problem_and_later_rows_still_read(tmp_path):
    m = read_manifest(_manifest(tmp_path, "x,a.png,a.wav," + "L" * 140_000), ["image", "audio"])
    assert [r.id for r in m.rows] == ["y"] and m.rows[0].line == 3
    assert m.problems[0].line == 2 and "131,072 characters" in str(m.problems[0])


def test_file_name_longer_than_the_file_system_allows_is_a_row_problem(tmp_path):
    m = read_manifest(_manifest(tmp_path, "x," + "n" * 5000 + ".png,a.wav,3"), ["image", "audio"])
    assert [r.id for r in m.rows] == ["y"]
    text = str(m.problems[0])
    assert "cannot use this path" in text and len(text) < 600 and "\n" not in text


def test_bad_utf8_deep_in_a_streamed_manifest_names_the_file_and_line(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_bytes(b"id,image\n" + b"".join(b"r%d,a.png\n" % i for i in range(20_000)) + b"z,\xff.png\n")
    with pytest.raises(ManifestError, match=r"pairs.csv: not UTF-8 text"):
        read_manifest(path, ["image"], check_files=False)


def test_manifest_stream_memory_does_not_grow_with_the_rows(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,image,audio,label\n")
        for i in range(30_000):
            fh.write(f"p{i},img/{i}.png,aud/{i}.wav,{i % 10}\n")
    tracemalloc.start()
    try:
        count = 0
        for row in iter_manifest(path, ["image", "audio"], check_files=False):
            count += 1
            assert row.files["image"].name == f"{row.id[1:]}.png"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    # the rows as a list take ~30 MB here; streaming keeps only the ids seen (for duplicates)
    assert peak < 12 * 2**20, f"{peak / 2**20:.0f} MiB while streaming 30,000 rows"


def test_non_utf8_file_name_in_a_folder_is_listed_and_the_rest_is_paired(tmp_path):
    root = tmp_path / "pairs"
    root.mkdir()
    for stem in ("one", "two"):
        (root / f"{stem}.png").write_bytes(b"x")
        (root / f"{stem}.wav").write_bytes(b"x")
    bad = os.fsencode(root) + b"/caf\xe9.png"
    with open(bad, "wb") as fh:
        fh.write(b"x")
    pairing = pair_folder(root, {"image": "image", "audio": "audio"}, kind_for_path)
    assert [p.id for p in pairing.pairs] == ["one", "two"]
    listed = {str(p.name): reason for p, reason in pairing.unmatched}
    assert listed == {"caf\ufffd.png": "the file name is not valid UTF-8: rename the file to review it"}
    str(pairing.unmatched[0][0]).encode("utf-8")  # printable and storable as it is


def test_folder_deeper_than_path_max_is_listed_not_silently_dropped(tmp_path):
    root = tmp_path / "pairs"
    root.mkdir()
    (root / "a.png").write_bytes(b"x")
    (root / "a.wav").write_bytes(b"x")
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(40):  # 40 x 201 characters: a path of about 8,000, over Linux's 4,096
            os.mkdir("d" * 200, dir_fd=fd)
            new = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        os.close(os.open("deep.png", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)
    pairing = pair_folder(root, {"image": "image", "audio": "audio"}, kind_for_path)
    assert [p.id for p in pairing.pairs] == ["a"]
    reasons = [reason for _, reason in pairing.unmatched]
    assert any("cannot list this folder" in r for r in reasons), pairing.unmatched
    _remove_deep(root)


def _remove_deep(root: Path) -> None:
    """Delete the deep tree again (shutil.rmtree cannot, from a path over PATH_MAX)."""
    def remove(fd: int) -> None:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)
            except IsADirectoryError:
                sub = os.open(name, os.O_RDONLY, dir_fd=fd)
                try:
                    remove(sub)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=fd)

    fd = os.open(root, os.O_RDONLY)
    try:
        remove(fd)
    finally:
        os.close(fd)
