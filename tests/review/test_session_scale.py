"""The session's indexed listing (format 3): sort orders, paging, filters, counts, the summary and the
format upgrade, each checked against a plain Python computation over the session's base tables."""

from __future__ import annotations

import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.data.manifest import PairRow
from app.review import session_listing
from app.review.flags import FlagThresholds
from app.review.session import (
    ANY_FLAG,
    NO_FLAG,
    SCHEMA_VERSION,
    VERDICTS,
    ResultRecord,
    ReviewSession,
    RowFilter,
)

MODS = {"image": "image", "audio": "audio"}
LABELS = ["a", "b", "c"]
N = 400


def _prediction(rng: random.Random, label: str | None) -> dict[str, Any]:
    pred = rng.choice(LABELS)
    p = rng.choice([0.5, 0.9, rng.random()])  # ties on purpose
    mods = {}
    for name in MODS:
        q = rng.choice([None, 1.0, rng.uniform(-2, 2)]) if name == "audio" else rng.uniform(0, 1)
        mods[name] = {"label": rng.choice(LABELS), "probability": rng.random(), "probabilities": [0.2, 0.3, 0.5],
                      "energy": -rng.random(), "quality": float("nan") if q is None else q, "share": rng.random()}
    return {"label": pred, "probability": p, "probabilities": [0.2, 0.3, 0.5], "modalities": mods,
            "model": {"name": "m", "sha256": "0" * 64}, "late_fusion": {"probabilities": [0.3, 0.3, 0.4]}}


def _make(path: Path, n: int = N, seed: int = 0) -> ReviewSession:
    rng = random.Random(seed)
    s = ReviewSession.create(path, model_name="m", model_sha256="0" * 64, model_path=None, modalities=MODS,
                             labels=LABELS, source_kind="manifest", source_path=path.parent)
    labels = [None if rng.random() < 0.1 else rng.choice([*LABELS, "z"]) for _ in range(n)]
    s.add_pairs(PairRow(i, f"pair_{rng.randrange(10**6):06d}_{i}", {"image": f"/x/{i}.png"}, labels[i])
                for i in range(n))
    records = []
    for i in range(n):
        r = rng.random()
        if r < 0.1:
            continue  # pending
        if r < 0.18:
            records.append(ResultRecord(i, labels[i], error=f"/x/{i}.wav: truncated"))
        else:
            records.append(ResultRecord(i, labels[i], prediction=_prediction(rng, labels[i]),
                                        decode_seconds=rng.choice([0.1, 0.2]), predict_seconds=rng.choice([0.05, 0.5])))
    s.write_results(records)
    for row in s.rows():
        if rng.random() < 0.3:
            v = rng.choice(VERDICTS)
            s.set_verdict(row.id, v, relabel="b" if v == "relabel" else None,
                          note=rng.choice(["", "odd", "blurry image", "Odd"]))
        elif rng.random() < 0.1:
            s.set_verdict(row.id, note="only a note")
    return s


def reference(s: ReviewSession) -> list[dict[str, Any]]:
    """Every pair as the base tables hold it (no listing), in source order."""
    names = s.modality_names
    conn = s.conn
    mods: dict[int, dict[str, dict[str, Any]]] = {}
    for idx, name, *vals in conn.execute(
            "SELECT pair_idx, modality, label, probability, energy, quality, share FROM modality_results"):
        mods.setdefault(idx, {})[name] = dict(zip(("label", "probability", "energy", "quality", "share"), vals,
                                                  strict=True))
    out = []
    for rec in conn.execute(
        "SELECT p.idx, p.id, p.label, r.status, r.prediction, r.probability, r.correct, r.flags, "
        "r.decode_seconds + r.predict_seconds, v.verdict, v.note FROM pairs p "
        "LEFT JOIN results r ON r.pair_idx = p.idx LEFT JOIN verdicts v ON v.pair_id = p.id ORDER BY p.idx"
    ):
        idx, pid, label, status, pred, prob, correct, flags, secs, verdict, note = rec
        row = {"index": idx, "id": pid, "label": label, "status": status or "pending", "prediction": pred,
               "probability": prob, "correct": correct, "flags": flags or None, "seconds": secs,
               "verdict": verdict, "note": note or None, "flag_list": [f for f in (flags or "").split("|") if f]}
        for name in names:
            for what in ("label", "probability", "energy", "quality", "share"):
                row[f"{name}.{what}"] = mods.get(idx, {}).get(name, {}).get(what)
        out.append(row)
    return out


def expected_order(ref: list[dict[str, Any]], key: str, descending: bool) -> list[str]:
    valued = sorted((r for r in ref if r[key] is not None), key=lambda r: (r[key], r["index"]), reverse=descending)
    nulls = sorted((r for r in ref if r[key] is None), key=lambda r: r["index"], reverse=descending)
    return [r["id"] for r in valued + nulls]


def keeps(r: dict[str, Any], f: RowFilter) -> bool:
    if f.flag == ANY_FLAG and not r["flag_list"]:
        return False
    if f.flag == NO_FLAG and (r["flag_list"] or r["status"] == "pending"):
        return False
    if f.flag not in (None, ANY_FLAG, NO_FLAG) and f.flag not in r["flag_list"]:
        return False
    if f.label and r["label"] != f.label or f.prediction and r["prediction"] != f.prediction:
        return False
    if f.correctness == "correct" and r["correct"] != 1 or f.correctness == "wrong" and r["correct"] != 0:
        return False
    if f.correctness == "unlabelled" and r["label"] is not None:
        return False
    if f.status == "done" and r["status"] == "pending" or f.status in ("ok", "error", "pending") and r["status"] != f.status:
        return False
    if f.verdict == "none" and r["verdict"] is not None or f.verdict in VERDICTS and r["verdict"] != f.verdict:
        return False
    return not (f.search and f.search not in r["id"])


SORT_KEYS = [*ReviewSession.SORT_KEYS, *(f"{m}.{w}" for m in MODS for w in session_listing.MODALITY_FIELDS)]


@pytest.fixture()
def session(tmp_path: Path):
    s = _make(tmp_path / "s.qmfreview")
    yield s
    s.close()


def test_every_sort_key_both_ways_puts_rows_in_order_with_empty_values_last(session):
    ref = reference(session)
    assert any(r["audio.quality"] is None and r["status"] == "ok" for r in ref)  # NaN stored as NULL
    for key in SORT_KEYS:
        for desc in (False, True):
            got = [r.id for r in session.rows(order_by=key, descending=desc)]
            assert got == expected_order(ref, key, desc), (key, desc)


def test_paging_in_any_order_of_requests_returns_every_row_once_in_order(tmp_path):
    path = tmp_path / "s.qmfreview"
    _make(path).close()
    rng = random.Random(1)
    cases = [("index", False, None), ("probability", True, None), ("verdict", False, None), ("note", True, None),
             ("correct", True, None), ("status", False, None), ("prediction", False, RowFilter(verdict="none")),
             ("audio.quality", False, RowFilter(flag=ANY_FLAG)), ("label", True, RowFilter(status="done")),
             ("id", False, RowFilter(search="_1")), ("flags", True, RowFilter(verdict="none", correctness="wrong"))]
    for key, desc, flt in cases:
        with ReviewSession.open(path) as s:
            whole = [r.id for r in s.rows(flt, key, desc)]
            assert len(whole) == s.count(flt)
            for page in (37, 5):
                starts = list(range(0, len(whole), page))
                # in order, backwards, at random, and every other page (reads that skip rows after a known one)
                for order in (starts, starts[::-1], rng.sample(starts, len(starts)), starts[::2] + starts[1::2]):
                    with ReviewSession.open(path) as fresh:  # no anchors from an earlier pass
                        got = {o: [r.id for r in fresh.rows(flt, key, desc, limit=page, offset=o)] for o in order}
                    assert [i for o in starts for i in got[o]] == whole, (key, desc, flt, page)
            assert s.rows(flt, key, desc, limit=37, offset=len(whole)) == []


def test_filters_and_counts_agree_with_python(session):
    ref = reference(session)
    flags = sorted({f for r in ref for f in r["flag_list"]})
    assert "error" in flags and "label mismatch" in flags
    filters = [RowFilter(), RowFilter(flag=ANY_FLAG), RowFilter(flag=NO_FLAG), RowFilter(flag="no such flag"),
               *(RowFilter(flag=f) for f in flags), RowFilter(label="a"), RowFilter(label="z"), RowFilter(prediction="b"),
               *(RowFilter(correctness=c) for c in ("correct", "wrong", "unlabelled")),
               *(RowFilter(status=st) for st in ("done", "ok", "error", "pending")),
               *(RowFilter(verdict=v) for v in (*VERDICTS, "none")), RowFilter(search="_1"), RowFilter(search="%"),
               RowFilter(flag="disagreement", verdict="none", label="a"), RowFilter(status="ok", search="2", prediction="c")]
    for f in filters:
        want = [r["id"] for r in ref if keeps(r, f)]
        assert session.count(f) == len(want), f
        assert [r.id for r in session.rows(f)] == want, f
        assert [r.id for r in session.rows(f, "probability", True)] == [
            i for i in expected_order(ref, "probability", True) if i in set(want)], f
    some = ref[5]["id"]
    assert session.shows(some, RowFilter(label=ref[5]["label"] or "zz")) == (ref[5]["label"] is not None)


def test_summary_and_menus_agree_with_python(session):
    ref = reference(session)
    s = session.summary()
    done = [r for r in ref if r["status"] != "pending"]
    labelled = [r for r in ref if r["status"] == "ok" and r["label"] is not None]
    assert (s["pairs"], s["done"], s["errors"]) == (len(ref), len(done), sum(r["status"] == "error" for r in ref))
    assert s["correct"] == sum(r["label"] == r["prediction"] for r in labelled) and s["labelled"] == len(labelled)
    rows = s["confusion"]["labels"]
    assert rows == [*LABELS, "z"]
    for i, lab in enumerate(rows):
        for j, pred in enumerate(LABELS):
            assert s["confusion"]["matrix"][i][j] == sum(r["label"] == lab and r["prediction"] == pred for r in labelled)
    assert s["verdicts"] == {v: sum(r["verdict"] == v for r in ref) for v in VERDICTS}
    want_flags: dict[str, int] = {}
    for r in ref:
        for f in r["flag_list"]:
            want_flags[f] = want_flags.get(f, 0) + 1
    assert s["flags"] == want_flags == session.flag_counts()
    assert session.distinct("flag") == sorted(want_flags)
    assert session.distinct("label") == sorted({r["label"] for r in ref if r["label"]})
    assert session.distinct("prediction") == sorted({r["prediction"] for r in ref if r["prediction"]})


def test_histogram_counts_match_numpy(session):
    values = [r["audio.quality"] for r in reference(session) if r["audio.quality"] is not None]
    counts, lo, hi = session.modality_histogram("audio", "quality", bins=30)
    want, edges = np.histogram(values, bins=30)
    assert counts == [int(c) for c in want] and (lo, hi) == (edges[0], edges[-1])


def test_a_verdict_changes_the_counts_and_pages_at_once_from_either_connection(session):
    accepted = RowFilter(verdict="accept")
    before = session.count(accepted)
    target = next(r for r in session.rows(RowFilter(verdict="none")))
    session.set_verdict(target.id, "accept")
    assert session.count(accepted) == before + 1
    assert target.id in [r.id for r in session.rows(accepted)]
    assert session.summary()["verdicts"]["accept"] == before + 1
    with ReviewSession.open(session.path) as other:  # the run's process or a second window
        other.clear_verdict(target.id)
    assert session.count(accepted) == before
    assert target.id not in [r.id for r in session.rows(accepted, "verdict")]
    session.set_verdict(target.id, note="a note now")
    assert session.rows(order_by="note")[0].note  # pairs with a note first
    assert session.row(target.id).note == "a note now"


def test_listing_follows_every_kind_of_write(session):
    assert_listing_is_what_a_rebuild_makes(session)
    ref0 = reference(session)
    session.forget_errors()
    session.set_thresholds(FlagThresholds(low_share=0.6, low_confidence=0.95))
    rng = random.Random(5)
    session.write_results([ResultRecord(r["index"], r["label"], prediction=_prediction(rng, r["label"]))
                           for r in ref0[:50]])  # replaces results
    session.add_pairs([PairRow(1, "late", {"image": "/x/late.png"}, "a")])
    ref = reference(session)
    assert len(ref) == len(ref0) + 1
    for key in ("index", "probability", "flags", "status", "image.share", "note", "audio.quality", "seconds"):
        for desc in (False, True):
            assert [r.id for r in session.rows(order_by=key, descending=desc)] == expected_order(ref, key, desc), key
    for f in (RowFilter(flag="low confidence"), RowFilter(status="error"), RowFilter(status="pending")):
        assert session.count(f) == sum(keeps(r, f) for r in ref), f
    assert_listing_is_what_a_rebuild_makes(session)
    session.start_rerun("m2", "1" * 64, None)
    assert session.count(RowFilter(status="pending")) == len(ref) == session.summary()["pending"]
    assert session.count(RowFilter(verdict="none")) == sum(r["verdict"] is None for r in ref)
    assert_listing_is_what_a_rebuild_makes(session)


def assert_listing_is_what_a_rebuild_makes(s: ReviewSession) -> None:
    """The listing and its group counts, as the triggers kept them, equal a fresh build from the base tables."""
    conn = s.conn
    cols = [r[1] for r in conn.execute("PRAGMA main.table_info(listing)") if r[1] != "grp"]
    gcols = [r[1] for r in conn.execute("PRAGMA main.table_info(listing_groups)") if r[1] != "grp"]
    kept = (conn.execute(f"SELECT {', '.join(cols)} FROM main.listing ORDER BY idx").fetchall(),
            sorted(conn.execute(f"SELECT {', '.join(gcols)} FROM main.listing_groups WHERE n > 0").fetchall()))
    session_listing.rebuild(conn, s.modality_names, schema="temp")
    try:
        built = (conn.execute(f"SELECT {', '.join(cols)} FROM temp.listing ORDER BY idx").fetchall(),
                 sorted(conn.execute(f"SELECT {', '.join(gcols)} FROM temp.listing_groups").fetchall()))
    finally:
        conn.execute("DROP TABLE temp.listing")
        conn.execute("DROP TABLE temp.listing_groups")
    assert kept[0] == built[0]
    assert kept[1] == built[1]


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
           for t in ("pairs", "results", "modality_results", "verdicts")}
    conn.close()
    return out


def _as_older_format(path: Path, version: int) -> None:
    """The file as an older QMF Studio wrote it: no listing (and, for format 1, no late fusion)."""
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE listing")
    conn.execute("DROP TABLE listing_groups")
    if version < 2:
        conn.execute("ALTER TABLE results DROP COLUMN late_probabilities")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_session_is_upgraded_in_place_keeping_every_row_verdict_and_note(tmp_path, version):
    path = tmp_path / "old.qmfreview"
    with _make(path) as s:
        rows = [(r.id, r.status, r.prediction, r.flags, r.verdict, r.relabel, r.note, r.modalities)
                for r in s.rows()]
        summary = s.summary()
    _as_older_format(path, version)
    before = _dump(path)
    with ReviewSession.open(path) as s:
        assert s.meta()["schema_version"] == SCHEMA_VERSION == 3
        got = [(r.id, r.status, r.prediction, r.flags, r.verdict, r.relabel, r.note, r.modalities) for r in s.rows()]
        assert json.dumps(got, default=str) == json.dumps(rows, default=str)
        assert s.summary() == summary
        assert s.count(RowFilter(verdict="accept")) == summary["verdicts"]["accept"]
    after = _dump(path)
    for table in ("pairs", "modality_results", "verdicts"):
        assert after[table] == before[table], table
    if version == 2:
        assert after["results"] == before["results"]
    else:  # the column format 2 added, empty for the old results
        assert [r[:-1] for r in after["results"]] == before["results"] and all(r[-1] is None for r in after["results"])


def test_a_read_only_format_2_session_opens_unchanged(tmp_path):
    path = tmp_path / "old.qmfreview"
    with _make(path) as s:
        want = [(r.id, r.verdict, r.note) for r in s.rows(order_by="probability")]
    _as_older_format(path, 2)
    raw = path.read_bytes()
    with ReviewSession.open(path, readonly=True) as s:
        assert s.meta()["schema_version"] == 2
        assert [(r.id, r.verdict, r.note) for r in s.rows(order_by="probability")] == want
        assert s.count(RowFilter(flag=ANY_FLAG)) == sum(1 for r in s.rows() if r.flags)
    assert path.read_bytes() == raw


def test_an_upgrade_that_fails_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "old.qmfreview"
    _make(path).close()
    _as_older_format(path, 2)
    before = _dump(path)

    def broken(conn, names, schema="main"):
        conn.execute("CREATE TABLE listing (idx INTEGER PRIMARY KEY)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(session_listing, "rebuild", broken)
    with pytest.raises(Exception, match="could not be changed|disk I/O"):
        ReviewSession.open(path)
    monkeypatch.undo()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'listing'").fetchone() is None
    conn.close()
    assert _dump(path) == before
    with ReviewSession.open(path) as s:
        assert s.count() == N


def test_bulk_writes_build_the_indexes_at_the_end_and_a_killed_one_is_repaired(tmp_path):
    path = tmp_path / "s.qmfreview"
    with _make(path, n=50) as s:
        with s.bulk_writes():
            assert not session_listing.indexes_complete(s.conn, s.modality_names)
            s.add_pairs([PairRow(1, "bulk", {}, "a")])
            assert s.row("bulk") is not None
            assert s.rows(order_by="index", descending=True, limit=1)[0].id == "bulk"  # what an import asks
            with ReviewSession.open(path, readonly=True) as viewer:  # the app looking at it meanwhile
                assert [r.id for r in viewer.rows(order_by="probability", limit=10)] == expected_order(
                    reference(s), "probability", False)[:10]
        assert session_listing.indexes_complete(s.conn, s.modality_names)
        session_listing.drop_indexes(s.conn, s.modality_names)  # as a process killed inside bulk_writes leaves it
    with ReviewSession.open(path) as s:
        assert session_listing.indexes_complete(s.conn, s.modality_names)
        assert [r.id for r in s.rows(order_by="probability")] == expected_order(reference(s), "probability", False)


def test_the_first_pairs_get_every_index_and_a_failed_first_add_changes_nothing(tmp_path):
    """A new session's first pairs are inserted with the sort indexes dropped and built once after,
    in the same transaction: a source that fails midway leaves the session empty and indexed."""
    s = ReviewSession.create(tmp_path / "s.qmfreview", model_name="m", model_sha256="0" * 64, model_path=None,
                             modalities=MODS, labels=LABELS, source_kind="manifest", source_path=tmp_path)

    def failing():
        yield PairRow(1, "first", {"image": "/x/1.png"}, "a")
        raise OSError("the source went away")

    with s, pytest.raises(OSError, match="went away"):
        s.add_pairs(failing())
    with ReviewSession.open(tmp_path / "s.qmfreview") as s:
        assert s.pair_count() == 0 and session_listing.indexes_complete(s.conn, s.modality_names)
        assert s.add_pairs(PairRow(i, f"p{(7 * i) % 20:02d}", {"image": f"/x/{i}.png"}, "a") for i in range(20)) == 20
        assert session_listing.indexes_complete(s.conn, s.modality_names)
        assert [r.id for r in s.rows(order_by="id", descending=True, limit=3)] == ["p19", "p18", "p17"]
        assert s.add_pairs([PairRow(1, "p05", {}, None), PairRow(2, "p99", {}, None)]) == 1  # later adds as before
        assert session_listing.indexes_complete(s.conn, s.modality_names)


def test_modality_names_that_need_quoting_work(tmp_path):
    s = ReviewSession.create(tmp_path / "q.qmfreview", model_name="m", model_sha256="0" * 64, model_path=None,
                             modalities={"it's": "image", "a b": "audio"}, labels=LABELS, source_kind="manifest",
                             source_path=tmp_path)
    s.add_pairs([PairRow(1, "p", {}, "a")])
    pred = _prediction(random.Random(0), "a")
    pred["modalities"] = {"it's": pred["modalities"]["image"], "a b": pred["modalities"]["audio"]}
    s.write_results([ResultRecord(0, "a", prediction=pred)])
    row = s.rows(order_by="it's.share")[0]
    assert math.isclose(row.modalities["it's"]["share"], pred["modalities"]["it's"]["share"])
    s.close()


def test_a_search_too_large_to_list_is_walked_with_the_same_result(session, monkeypatch):
    from app.review import session_paging

    ref = reference(session)
    listed = {(k, d): [r.id for r in session.rows(RowFilter(search="_1"), k, d)]
              for k in ("index", "probability", "note") for d in (False, True)}
    other = next(r["id"] for r in ref if "_1" not in r["id"])
    session.set_verdict(other, note="a write: the listed search is dropped")
    monkeypatch.setattr(session_paging, "SEARCH_LISTED", 0)
    for (k, d), want in listed.items():
        assert [r.id for r in session.rows(RowFilter(search="_1"), k, d)] == want
        assert want == [i for i in expected_order(ref, k, d) if "_1" in i]
    assert session.count(RowFilter(search="_1")) == sum("_1" in r["id"] for r in ref)


def test_a_damaged_listing_is_rebuilt_from_the_base_tables_when_opened(tmp_path):
    path = tmp_path / "s.qmfreview"
    with _make(path) as s:
        want = [(r.id, r.verdict, r.note) for r in s.rows(order_by="audio.quality")]
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER listing_verdict_added")  # as a damaged file might have it
    conn.execute("UPDATE listing SET note = 'wrong', m1_quality = NULL")
    conn.commit()
    conn.close()
    with ReviewSession.open(path) as s:
        assert [(r.id, r.verdict, r.note) for r in s.rows(order_by="audio.quality")] == want
        s.set_verdict(want[0][0], "reject")
        assert s.row(want[0][0]).verdict == "reject"


def test_next_flagged_position_in_any_view_agrees_with_python(session, monkeypatch):
    from app.review import session_paging

    wanted = RowFilter(flag="label mismatch")
    views = [(None, "index", False), (RowFilter(status="done"), "probability", True), (None, "note", False),
             (RowFilter(search="_1"), "audio.quality", True), (RowFilter(verdict="none"), "flags", False)]
    for flt, key, desc in views:
        ids = [r.id for r in session.rows(flt, key, desc)]
        hits = {r.id for r in session.rows(wanted)}
        for start in (-1, 0, 3, len(ids) // 2, len(ids) - 1, len(ids)):
            for step in (1, -1):
                pos = start + step
                want = None
                while 0 <= pos < len(ids):
                    if ids[pos] in hits:
                        want = pos
                        break
                    pos += step
                assert session.next_position(flt, key, desc, start, step, wanted) == want, (flt, key, desc, start, step)
    monkeypatch.setattr(session_paging, "SEARCH_LISTED", 0)  # a search walked, not listed
    session.set_verdict(session.rows()[0].id, note="a write")
    ids = [r.id for r in session.rows(RowFilter(search="_1"), "probability")]
    first = next((i for i, pid in enumerate(ids) if pid in {r.id for r in session.rows(wanted)}), None)
    assert session.next_position(RowFilter(search="_1"), "probability", False, -1, 1, wanted) == first
    assert session.next_position(None, "index", False, 5, 1, RowFilter(flag="no such flag")) is None


def test_a_new_sessions_first_pairs_are_listed_as_the_triggers_list_later_ones(tmp_path):
    """The first pairs of a session are listed set by set (their per-row triggers dropped meanwhile): the
    listing and group counts equal a rebuild from the base tables, a repeated id is stored once, and the
    triggers are back for the pairs added later."""
    s = ReviewSession.create(tmp_path / "s.qmfreview", model_name="m", model_sha256="0" * 64, model_path=None,
                             modalities=MODS, labels=LABELS, source_kind="manifest", source_path=tmp_path)
    with s:
        first = [PairRow(i, f"p{i % 25:02d}", {"image": f"/x/{i}.png"}, LABELS[i % 3] if i % 4 else None)
                 for i in range(30)]
        assert s.add_pairs(first, build_indexes=False) == 25
        assert_listing_is_what_a_rebuild_makes(s)
        assert s.count(RowFilter(label="b")) == sum(1 for i in range(25) if i % 4 and LABELS[i % 3] == "b")
        s.set_verdict("p03", "accept", note="kept")
        assert s.add_pairs([PairRow(1, "later", {}, "a"), PairRow(2, "p03", {}, None)]) == 1
        assert_listing_is_what_a_rebuild_makes(s)
        assert s.count(RowFilter(status="pending")) == 26


def test_result_rows_write_probabilities_as_json_does() -> None:
    from app.review.session_schema import json_numbers

    for values in ([0.1, 0.2 + 0.1], [], [float("nan"), 1.0], [float("inf"), -float("inf")], [1, 2.5],
                   [5e-324, 1e22, -0.0], np.float32([0.3, 1e-8]).tolist(), [True, 0.5], [np.float64(0.7)]):
        assert json_numbers(values) == json.dumps(values), values


def test_a_large_write_is_listed_as_the_triggers_list_a_small_one(tmp_path):
    """A write of many results is listed set by set (the triggers dropped and made again inside its
    transaction): the listing and group counts equal a rebuild, whether the results are new, replace
    others (an error becoming a prediction and back) or meet verdicts given before; the triggers are
    there after it, for every other writer; a write that fails changes nothing."""
    n = 2 * session_listing.SET_RESULTS
    with _make(tmp_path / "s.qmfreview", n=n, seed=3) as s:
        assert_listing_is_what_a_rebuild_makes(s)
        rng = random.Random(4)
        ref = reference(s)
        again = [ResultRecord(r["index"], r["label"], error="/x/a.wav: truncated") if i % 5 == 0 else
                 ResultRecord(r["index"], r["label"], prediction=_prediction(rng, r["label"]), decode_seconds=0.3)
                 for i, r in enumerate(ref)]
        s.write_results(again)
        assert_listing_is_what_a_rebuild_makes(s)
        assert s.count(RowFilter(status="error")) == sum(1 for i in range(n) if i % 5 == 0)
        assert session_listing.has_listing(s.conn, s.modality_names)  # the triggers are back
        s.conn.execute("DELETE FROM results WHERE pair_idx < 10")  # plain SQL of another writer
        assert s.count(RowFilter(status="pending")) == 10
        assert_listing_is_what_a_rebuild_makes(s)
        before = reference(s)
        broken = [ResultRecord(i, None, prediction=_prediction(rng, None)) for i in range(n)] + \
                 [ResultRecord(0, None, prediction=_prediction(rng, None))]  # pair 0 twice: refused by its key
        with pytest.raises(sqlite3.IntegrityError):
            s.write_results(broken)
        assert reference(s) == before
        assert session_listing.has_listing(s.conn, s.modality_names)
        assert_listing_is_what_a_rebuild_makes(s)
