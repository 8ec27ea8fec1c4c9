"""How the Review table's queries scale: the same queries on a large session and on a 10,000-pair one.

    .venv/bin/python benchmarks/session_scale_bench.py                  # 1,000,000 pairs (minutes to build)
    .venv/bin/python benchmarks/session_scale_bench.py --rows 100000    # quicker
    .venv/bin/python benchmarks/session_scale_bench.py --keep DIR       # keep the sessions in DIR (reused next time)

Both sessions are generated through the session API (``ReviewSession.create``, ``add_pairs``,
``write_results`` inside ``bulk_writes``; the verdicts in one transaction): two inputs, ten labels,
5 % of the pairs pending, 2 % errors, 1 % with a verdict and a note. Then, for each session, in
the same process: open, count, first page, the first page sorted by each column the table shows
(both directions), the last page, a page in the middle, a flag filter (count + first page), the
other filters' counts, the summary, the filter menus (flags, labels, predictions), a histogram
(run off the GUI thread by the app), a verdict set and the count after it, the app's table model
(offscreen: set_session, a sort, the end of the table, a filter, each with its 40 visible rows'
cells), and the format-2 -> 3 upgrade. Each figure is printed next to its peer on the small session and to the interactive
limits (16 ms: within a frame; 100 ms: feels immediate). Targets: every interactive query within
100 ms at a million pairs, a sorted first page within 50 ms, the summary within 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.data.manifest import PairRow  # noqa: E402
from app.review.session import ANY_FLAG, ResultRecord, ReviewSession, RowFilter  # noqa: E402

MODALITIES = {"image": "image", "audio": "audio"}
LABELS = [str(d) for d in range(10)]
PAGE = 200  # the table model's page


def _prediction(i: int, label: str) -> dict[str, Any]:
    """A plausible stored prediction for pair i (deterministic, no model)."""
    h = (i * 2654435761) % 2**32
    p = 0.3 + 0.7 * ((h % 1000) / 1000.0)
    pred = label if h % 10 else LABELS[(int(label) + 1) % 10]
    probs = [(1 - p) / 9] * 10
    probs[int(pred)] = p
    mods = {}
    for k, name in enumerate(MODALITIES):
        q = ((h >> (8 + 4 * k)) % 997) / 997.0
        share = 0.5 + (0.4 if k == 0 else -0.4) * (q - 0.5)
        mlabel = pred if (h >> 20) % 7 else LABELS[(int(pred) + 3) % 10]
        mods[name] = {"label": mlabel, "probability": p, "probabilities": probs, "energy": -5 - 3 * q,
                      "quality": 5 + 3 * q, "share": share}
    return {"label": pred, "probability": p, "probabilities": probs, "modalities": mods,
            "model": {"name": "bench", "sha256": "0" * 64}, "late_fusion": {"probabilities": probs}}


def build(path: Path, n: int) -> float:
    """Generate an n-pair session at ``path``; returns the seconds it took."""
    start = time.perf_counter()
    s = ReviewSession.create(path, model_name="bench", model_sha256="0" * 64, model_path=None,
                             modalities=MODALITIES, labels=LABELS, source_kind="manifest", source_path=path.parent)
    chunk = 20_000
    with s.bulk_writes():
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            s.add_pairs(PairRow(i, f"pair-{i:08d}", {"image": f"/data/{i}.png", "audio": f"/data/{i}.wav"},
                                None if i % 50 == 7 else LABELS[i % 10]) for i in range(lo, hi))
            records = []
            for i in range(lo, hi):
                if i % 20 == 3:
                    continue  # pending
                label = None if i % 50 == 7 else LABELS[i % 10]
                if i % 50 == 11:
                    records.append(ResultRecord(i, label, error=f"/data/{i}.wav: truncated", decode_seconds=0.001))
                else:
                    records.append(ResultRecord(i, label, prediction=_prediction(i, label or "0"),
                                                decode_seconds=0.002, predict_seconds=0.001))
            s.write_results(records)
            print(f"\r  building {path.name}: {hi:,} / {n:,} pairs", end="", file=sys.stderr, flush=True)
        with s.transaction():
            s.conn.executemany(
                "INSERT INTO verdicts(pair_id, verdict, relabel, note, updated) VALUES (?,?,?,?,?)",
                ((f"pair-{i:08d}", ("accept", "reject", "relabel")[i % 3], "3" if i % 3 == 2 else None,
                  f"looked at {i}", 0.0) for i in range(5, n, 100)))
    s.close()
    print(file=sys.stderr)
    return time.perf_counter() - start


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Milliseconds of the best of ``repeat`` calls (each on fresh caches when fn opens its own state)."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best, out


def measure(path: Path) -> dict[str, float]:
    """The interactive queries, each on a fresh session object (no cache from the query before)."""
    out: dict[str, float] = {}
    out["open"], s = timed(lambda: ReviewSession.open(path))
    s.close()

    def fresh(name: str, fn: Callable[[ReviewSession], Any]) -> Any:
        with ReviewSession.open(path) as sess:
            ms, value = timed(lambda: fn(sess))
        out[name] = ms
        return value

    fresh("count (no filter)", lambda s: s.count())
    fresh("first page", lambda s: s.rows(limit=PAGE))
    with ReviewSession.open(path) as s0:
        keys = ["id", "label", "prediction", "correct", "flags", "verdict", "note", "status", "probability",
                *(f"{m}.{w}" for m in s0.modality_names for w in ("quality", "share"))]
    for key in keys:
        for desc in (False, True):
            fresh(f"sort {key} {'desc' if desc else 'asc'}: count + first page",
                  lambda s, k=key, d=desc: (s.count(), s.rows(order_by=k, descending=d, limit=PAGE)))
    fresh("last page (by index)", lambda s: s.rows(limit=PAGE, offset=(s.count() - 1) // PAGE * PAGE))
    fresh("last page (by audio quality desc)",
          lambda s: s.rows(order_by="audio.quality", descending=True, limit=PAGE, offset=(s.count() - 1) // PAGE * PAGE))
    fresh("middle page (by probability, cold)",
          lambda s: s.rows(order_by="probability", limit=PAGE, offset=s.count() // 2 // PAGE * PAGE))

    def scroll(s: ReviewSession) -> None:  # the next page after one already read: the usual scroll
        s.rows(order_by="probability", limit=PAGE, offset=s.count() // 2)
        t0 = time.perf_counter()
        s.rows(order_by="probability", limit=PAGE, offset=s.count() // 2 + PAGE)
        out["next page after a middle page"] = (time.perf_counter() - t0) * 1000
    with ReviewSession.open(path) as s:
        scroll(s)
    flt = RowFilter(flag="label mismatch")
    fresh("filter flag 'label mismatch': count + first page", lambda s: (s.count(flt), s.rows(flt, limit=PAGE)))
    fresh("filter flag 'label mismatch' by probability desc",
          lambda s: (s.count(flt), s.rows(flt, order_by="probability", descending=True, limit=PAGE)))
    fresh("filter any flag + verdict none: count + first page",
          lambda s: (s.count(RowFilter(flag=ANY_FLAG, verdict="none")),
                     s.rows(RowFilter(flag=ANY_FLAG, verdict="none"), limit=PAGE)))
    fresh("filter verdict accept by audio share",
          lambda s: (s.count(RowFilter(verdict="accept")),
                     s.rows(RowFilter(verdict="accept"), order_by="audio.share", limit=PAGE)))
    fresh("filter errors: count + first page",
          lambda s: (s.count(RowFilter(status="error")), s.rows(RowFilter(status="error"), limit=PAGE)))
    fresh("count wrong / correct / unlabelled / pending",
          lambda s: [s.count(RowFilter(correctness=c)) for c in ("wrong", "correct", "unlabelled")]
          + [s.count(RowFilter(status="pending"))])
    fresh("search id '12345': count + first page",
          lambda s: (s.count(RowFilter(search="12345")), s.rows(RowFilter(search="12345"), limit=PAGE)))
    fresh("N: next flagged pair from the middle, by probability",
          lambda s: s.next_position(None, "probability", False, s.count() // 2, 1, RowFilter(flag=ANY_FLAG)))
    fresh("N-like: next error pair from the middle, by probability (a long walk)",
          lambda s: s.next_position(None, "probability", False, s.count() // 2, 1, RowFilter(status="error")))
    fresh("summary", lambda s: s.summary())
    fresh("flag menu + label/prediction menus",
          lambda s: (s.distinct("flag"), s.distinct("label"), s.distinct("prediction")))
    fresh("histogram audio quality (off the GUI thread)", lambda s: s.modality_histogram("audio"))

    def verdict(s: ReviewSession) -> None:
        flt = RowFilter(verdict="accept")
        s.count(flt)
        t0 = time.perf_counter()
        s.set_verdict("pair-00000002", "accept", note="benchmark")
        out["set a verdict"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        s.count(flt)
        s.rows(flt, limit=PAGE)
        out["recount + first page after a verdict"] = (time.perf_counter() - t0) * 1000
        s.clear_verdict("pair-00000002")
    with ReviewSession.open(path) as s:
        verdict(s)
    return out


def measure_table_model(path: Path) -> dict[str, float]:
    """The app's table model (app/gui/review/table_model.py, offscreen) on the session: what a click
    on a column header or the scroll bar costs the GUI thread, the 40 visible rows' cells included."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from app.gui.review.table_model import ReviewTableModel

    QApplication.instance() or QApplication([])
    out: dict[str, float] = {}
    s = ReviewSession.open(path)
    model = ReviewTableModel()

    def visible(first: int) -> None:
        for r in range(first, min(first + 40, model.rowCount())):
            for c in range(model.columnCount()):
                model.index(r, c).data()

    def col(key: str) -> int:
        return [k for k, _ in model.columns].index(key)

    out["table model: set_session + 40 visible rows"], _ = timed(lambda: (model.set_session(s), visible(0)))
    out["table model: sort by fused prob. desc + 40 rows"], _ = timed(
        lambda: (model.sort(col("probability"), Qt.SortOrder.DescendingOrder), visible(0)))
    out["table model: sort by audio quality + 40 rows"], _ = timed(
        lambda: (model.sort(col("audio.quality"), Qt.SortOrder.AscendingOrder), visible(0)))
    out["table model: jump to the end (40 rows)"], _ = timed(lambda: visible(model.rowCount() - 40))
    out["table model: scroll 40 rows up from the end"], _ = timed(lambda: visible(model.rowCount() - 80))
    out["table model: filter 'label mismatch' + 40 rows"], _ = timed(
        lambda: (model.set_filter(RowFilter(flag="label mismatch")), visible(0)))
    model.set_session(None)
    s.close()
    return out


def downgrade(path: Path) -> None:
    """Make the file a format-2 session again (drop the listing), as QMF Studio wrote it before."""
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE listing")
    conn.execute("DROP TABLE listing_groups")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="pairs in the large session (default 1,000,000)")
    ap.add_argument("--peer", type=int, default=10_000, help="pairs in the peer session (default 10,000)")
    ap.add_argument("--keep", type=Path, help="build the sessions here and keep them (reused when present)")
    ap.add_argument("--no-upgrade", action="store_true", help="skip timing the format-2 upgrade")
    ap.add_argument("--no-gui", action="store_true", help="skip the table model (needs PySide6)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="qmf-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"large": args.rows, "peer": args.peer}
    paths = {k: folder / f"scale-{n}.qmfreview" for k, n in sizes.items()}
    try:
        for k, p in paths.items():
            if not p.exists():
                print(f"built {sizes[k]:,} pairs in {build(p, sizes[k]):.1f} s ({p.stat().st_size / 2**20:.0f} MiB)")
        large, peer = measure(paths["large"]), measure(paths["peer"])
        if not args.no_gui:
            large.update(measure_table_model(paths["large"]))
            peer.update(measure_table_model(paths["peer"]))
        print(f"\n{'query':58s} {f'{args.rows:,} pairs':>14s} {f'{args.peer:,} pairs':>14s}   limit")
        for name, ms in large.items():
            limit = 1000 if name == "summary" else 50 if name.startswith("sort") else 100
            if "histogram" in name:
                limit = 1000
            mark = "ok" if ms <= limit else "OVER"
            print(f"{name:58s} {ms:11.1f} ms {peer[name]:11.1f} ms   {limit} ms {mark}  (16 ms frame)")
        if not args.no_upgrade:
            for k in ("peer", "large"):
                copy = paths[k].with_name(paths[k].stem + "-v2.qmfreview")
                shutil.copyfile(paths[k], copy)
                downgrade(copy)
                t0 = time.perf_counter()
                ReviewSession.open(copy).close()
                print(f"format 2 -> 3 upgrade on open, {sizes[k]:,} pairs: {time.perf_counter() - t0:.1f} s")
                copy.unlink()
                for suffix in ("-wal", "-shm"):
                    Path(str(copy) + suffix).unlink(missing_ok=True)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
