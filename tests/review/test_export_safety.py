"""A CSV export opened in a spreadsheet shows text as text: no cell can run as a formula (OWASP)."""

from __future__ import annotations

import csv
from pathlib import Path

from app.data.manifest import PairRow
from app.review.export import export_csv, import_verdicts, read_csv_export
from app.review.session import ReviewSession

DANGEROUS_IDS = ["=1+2", "+SUM(1;2)", "@SUM(A1)", '=HYPERLINK("http://x","y")', "\t=1+2", "\r=1+2", "-2+3",
                 "'=already quoted", "plain"]
NOTE = "=cmd|' /C calc'!A0"


def _session(tmp_path: Path, name: str = "s.qmfreview") -> ReviewSession:
    s = ReviewSession.create(tmp_path / name, model_name="m", model_sha256="0" * 64, model_path=None,
                             modalities={"image": "image", "audio": "audio"}, labels=["a", "b"],
                             source_kind="folder", source_path=tmp_path)
    s.add_pairs(PairRow(i + 1, pid, {"image": tmp_path / f"{pid}.png", "audio": tmp_path / f"{pid}.wav"}, "a")
                for i, pid in enumerate(DANGEROUS_IDS))
    return s


def test_text_cells_that_a_spreadsheet_would_evaluate_get_a_leading_quote(tmp_path):
    with _session(tmp_path) as s:
        s.set_verdict("=1+2", "relabel", relabel="@b", note=NOTE)
        path = export_csv(s, tmp_path / "out.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    ids = [r["id"] for r in records]
    assert ids == ["'=1+2", "'+SUM(1;2)", "'@SUM(A1)", "'=HYPERLINK(\"http://x\",\"y\")", "'\t=1+2", "'\r=1+2",
                   "'-2+3", "''=already quoted", "plain"]
    first = records[0]
    assert first["note"] == "'" + NOTE and first["relabel"] == "'@b"
    for r in records:
        for column, value in r.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)


def test_numbers_stay_numbers_and_the_export_reads_back_to_the_original_text(tmp_path):
    with _session(tmp_path) as s:
        s.set_verdict("=1+2", "reject", note=NOTE)
        path = export_csv(s, tmp_path / "out.csv")
        back = read_csv_export(path)
        assert [r["id"] for r in back] == DANGEROUS_IDS
        assert back[0]["note"] == NOTE
    with _session(tmp_path, "fresh.qmfreview") as fresh:
        assert import_verdicts(fresh, path) == len(DANGEROUS_IDS)
        assert fresh.verdict("=1+2") == {"verdict": "reject", "relabel": None, "note": NOTE}


def test_negative_numbers_are_not_quoted():
    from app.review.export import _cell

    assert _cell(-3.25) == "-3.25" and _cell(-4) == "-4" and _cell("-4") == "'-4"
