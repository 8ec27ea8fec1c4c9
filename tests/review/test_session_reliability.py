"""Sessions survive what users and machines do to them: interrupted creation, read-only files, two runs at
once, a refused --rerun, damaged files. Reproducers from the reliability audit, generated here."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from app.cli import main
from app.data.manifest import PairRow
from app.qmf.predictor import Predictor
from app.review.export import export_csv, read_csv_export
from app.review.session import ReviewSession, SessionBusyError, SessionError
from app.review.session_schema import ResultRecord
from app.review.workflow import prepare_session
from app.util.errors import UserError


def _create(path: Path, modalities=None) -> ReviewSession:
    s = ReviewSession.create(path, model_name="m", model_sha256="0" * 64, model_path=None,
                             modalities=modalities or {"image": "image", "audio": "audio"}, labels=["a", "b"],
                             source_kind="folder", source_path=path.parent)
    s.add_pairs(PairRow(i, f"p{i}", {"image": f"/x/{i}.png", "audio": f"/x/{i}.wav"}, "a") for i in range(1, 4))
    return s


def _open_fds_to(path: Path) -> int:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == str(path):
                count += 1
        except OSError:
            pass
    return count


def _damaged(tmp_path, sql: str):
    """A new session file with `sql` run on it behind the session's back (a damaged page, a bad cell)."""
    path = tmp_path / "s.qmfreview"
    _create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def test_creation_interrupted_before_the_schema_leaves_no_session_behind(tmp_path, monkeypatch):
    path = tmp_path / "s.qmfreview"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReviewSession, "_write_new", killed)
    with pytest.raises(KeyboardInterrupt):
        _create(path)
    monkeypatch.undo()
    assert not path.exists() and list(tmp_path.iterdir()) == []
    _create(path).close()  # and the name is free for the next try
    with ReviewSession.open(path) as s:
        assert s.pair_count() == 3


def test_empty_file_left_by_an_older_version_is_repaired_by_creating_and_explained_by_opening(tmp_path):
    path = tmp_path / "s.qmfreview"
    path.write_bytes(b"")
    with pytest.raises(SessionError, match="an empty file"):
        ReviewSession.open(path)
    with _create(path) as s:
        assert s.pair_count() == 3


def test_read_only_session_can_be_exported_but_not_changed(tmp_path):
    path = tmp_path / "s.qmfreview"
    with _create(path) as s:
        s.write_results([ResultRecord(i, "a", error="broken") for i in range(3)])  # the pairs p1..p3 (idx 0..2)
    with ReviewSession.open(path, readonly=True) as s:
        out = export_csv(s, tmp_path / "out.csv")
        assert [r["id"] for r in read_csv_export(out)] == ["p1", "p2", "p3"]
        with pytest.raises(SessionError, match="read-only"):
            s.set_verdict("p1", "reject")
        assert s.add_pairs([PairRow(1, "p1", {}, None)]) == 0  # nothing new: no write needed


def test_second_run_on_the_same_session_is_told_another_run_holds_it(tiny_model, tmp_path):
    predictor = Predictor.load(tiny_model)
    path = tmp_path / "s.qmfreview"
    with _create(path) as s:
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'model_sha256'", (f'"{predictor.sha256}"',))
        s.conn.execute("UPDATE meta SET value = ? WHERE key = 'source_path'", (f'"{tmp_path / "gone"}"',))
    first = prepare_session(path, predictor)
    try:
        with pytest.raises(SessionBusyError, match=f"another run is processing this session \\(process {os.getpid()}\\)"):
            prepare_session(path, predictor)
    finally:
        first.session.close()
    prepare_session(path, predictor).session.close()  # released when the first run closed


def test_rerun_with_a_model_of_other_inputs_changes_nothing(tiny_model, tmp_path):
    path = tmp_path / "s.qmfreview"
    with _create(path, {"image": "image", "caption": "text"}) as s:
        s.write_results([ResultRecord(i, "a", error="broken") for i in range(3)])  # the pairs p1..p3 (idx 0..2)
    with pytest.raises(UserError, match="made for inputs .* nothing was changed"):
        prepare_session(path, Predictor.load(tiny_model), rerun=True)
    with ReviewSession.open(path) as s:
        assert s.result_count() == 3 and s.model_sha256 == "0" * 64


def test_session_with_a_mangled_schema_is_refused_and_its_connection_closed(tmp_path):
    path = tmp_path / "s.qmfreview"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                       "CREATE TABLE pairs (idx TEXT, id TEXT, files TEXT, label TEXT);"
                       "INSERT INTO pairs VALUES ('3', '3', '{}', NULL), ('3', '5', '{}', NULL);")
    conn.close()
    before = _open_fds_to(path)
    for _ in range(3):
        with pytest.raises(SessionError, match="not a QMF review session, or a damaged one"):
            ReviewSession.open(path)
    assert _open_fds_to(path) == before


def test_iter_pending_refuses_an_index_that_does_not_grow(tmp_path):
    path = tmp_path / "s.qmfreview"
    _create(path).close()
    with ReviewSession.open(path) as s:
        s.conn.execute("UPDATE pairs SET files = 'not json' WHERE id = 'p2'")
        with pytest.raises(SessionError, match="files of pair 'p2'"):
            list(s.iter_pending())


@pytest.mark.parametrize("damage", ["pages", "meta_json", "meta_missing"])
def test_damaged_session_is_one_line_in_qmf_batch(tiny_model, tmp_path, capsys, damage):
    path = tmp_path / "s.qmfreview"
    with _create(path) as s:
        s.add_pairs(PairRow(i, f"q{i}", {"image": f"/x/{i}.png"}, "a") for i in range(4, 400))
        if damage == "meta_json":
            s.conn.execute("UPDATE meta SET value = '{' WHERE key = 'modalities'")
        elif damage == "meta_missing":
            s.conn.execute("DELETE FROM meta WHERE key = 'labels'")
    if damage == "pages":
        data = bytearray(path.read_bytes())
        page = 4096
        for at in range(2 * page, len(data), page):  # every page after the first two: garbage
            data[at : at + 64] = b"\xff" * 64
        path.write_bytes(bytes(data))
    code = main(["batch", "--model", str(tiny_model), "--session", str(path), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith(f"qmf batch: error: {path}") and "damaged" in err


def test_batch_on_a_path_that_cannot_hold_a_session_is_one_line(tiny_model, tmp_path, capsys):
    folder = tmp_path / "pairs"
    folder.mkdir()
    code = main(["batch", "--model", str(tiny_model), "--folder", str(folder), "--session", "/proc/x.qmfreview",
                 "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "/proc/x.qmfreview" in err and "internal error" not in err


def test_full_disk_during_a_batch_is_one_line_and_keeps_what_was_written(tiny_model, review_folder, tmp_path,
                                                                         capsys, monkeypatch):
    path = tmp_path / "s.qmfreview"
    real = ReviewSession.write_results
    calls = [0]

    def write_until_full(self, records, thresholds=None):
        calls[0] += 1
        if calls[0] > 1:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, records, thresholds)

    monkeypatch.setattr(ReviewSession, "write_results", write_until_full)
    code = main(["batch", "--model", str(tiny_model), "--folder", str(review_folder), "--session", str(path),
                 "--batch-size", "4", "--workers", "1", "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "the disk is full" in err and str(path) in err
    monkeypatch.undo()
    with ReviewSession.open(path) as s:
        assert s.result_count() == 4  # the batch committed before the disk filled is kept


def test_meta_entry_that_is_not_json_is_a_damaged_session(tmp_path):
    # found by the fuzz campaign: meta() parses every entry, so every entry is checked when opened
    path = _damaged(tmp_path, "INSERT INTO meta(key, value) VALUES('extra', 'not json')")
    with pytest.raises(SessionError, match="damaged session .*'extra' entry is not readable"):
        ReviewSession.open(path)


def test_text_that_is_not_utf8_is_shown_replaced_not_raised(tmp_path):
    # found by the fuzz campaign: a damaged page can hold TEXT bytes that are not UTF-8
    path = _damaged(tmp_path, "UPDATE pairs SET label = CAST(x'61ff62' AS TEXT) WHERE id = 'p1'")
    with ReviewSession.open(path) as s:
        assert s.rows()[0].label == "a\ufffdb"
        export_csv(s, tmp_path / "out.csv")


def test_row_whose_stored_json_is_damaged_is_a_session_error_naming_the_pair(tmp_path):
    # found by the fuzz campaign: reading rows and stored predictions parses JSON cells
    path = _damaged(tmp_path, "UPDATE pairs SET files = '{\"image\": \"a\\x01' WHERE id = 'p3'")
    with ReviewSession.open(path) as s:
        with pytest.raises(SessionError, match=r"s.qmfreview: damaged session \(the files of pair 'p3' cannot be read\)"):
            export_csv(s, tmp_path / "out.csv")
