"""The Review view's work over every pair of a session runs off the GUI thread: new flag thresholds,
the upgrade of an older large file (above background.*_FROM*) and the summary's histograms."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.review import ReviewView, background
from app.review.flags import FlagThresholds
from app.review.session import ANY_FLAG, ReviewSession, RowFilter
from tests.review.test_session_scale import _as_older_format, _make, reference


@pytest.fixture()
def view(qtbot):
    v = ReviewView(model_path_provider=lambda: None)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    yield v
    v.shutdown()


def test_new_thresholds_on_a_large_session_are_applied_in_a_thread(qtbot, view, tmp_path, monkeypatch):
    path = tmp_path / "s.qmfreview"
    _make(path).close()
    monkeypatch.setattr(background, "REFLAG_IN_BACKGROUND_FROM", 1)  # this small session counts as large
    view.open_session(path)
    view.set_filter(flag=ANY_FLAG)
    with ReviewSession.open(path) as s:
        errors = s.count(RowFilter(status="error"))
        assert view.table_model.rowCount() == s.count(RowFilter(flag=ANY_FLAG)) > errors
    messages: list[str] = []
    view.statusMessage.connect(lambda text, _ms: messages.append(text))
    with qtbot.waitSignal(view.reflagger.finished, timeout=30_000) as done:
        view.set_thresholds(FlagThresholds(low_share=0.0, low_confidence=0.0, disagreement=False,
                                           label_mismatch=False, unfamiliar=False))
    assert done.args == [str(path), ""]
    qtbot.waitUntil(lambda: view.table_model.rowCount() == errors, timeout=10_000)  # only "error" is left
    assert any(m.startswith("Recomputing flags:") for m in messages) and "Flags recomputed." in messages
    with ReviewSession.open(path) as s:
        assert s.thresholds.low_confidence == 0.0 and s.flag_counts() == {"error": errors}


def test_summary_histograms_are_counted_off_the_gui_thread(qtbot, view, tmp_path):
    path = tmp_path / "s.qmfreview"
    _make(path).close()
    view.open_session(path)
    view.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: not view.summary_panel.histograms_pending, timeout=10_000)
    with ReviewSession.open(path) as s:
        values = [r["audio.quality"] for r in reference(s) if r["audio.quality"] is not None]
    want, _ = np.histogram(values, bins=30)
    assert view.summary_panel.histogram_counts("audio") == [float(c) for c in want]


def test_a_large_session_of_an_older_format_is_upgraded_in_a_thread_then_shown(qtbot, view, tmp_path, monkeypatch):
    path = tmp_path / "old.qmfreview"
    with _make(path) as s:
        want = [r.id for r in s.rows(order_by="probability")]
    _as_older_format(path, 2)
    assert ReviewSession.needs_upgrade(path)
    monkeypatch.setattr(background, "UPGRADE_IN_BACKGROUND_FROM_BYTES", 0)
    with qtbot.waitSignal(view.upgrader.finished, timeout=30_000) as done:
        view.open_session(path)
        assert view.session is None and view.progress_bar.maximum() == 0  # busy while it upgrades
    assert done.args == [str(path), ""]
    qtbot.waitUntil(lambda: view.session is not None, timeout=10_000)
    assert not ReviewSession.needs_upgrade(path) and view.session.meta()["schema_version"] == 3
    assert view.table_model.rowCount() == len(want)


def test_the_table_shows_every_row_in_the_sessions_order_however_it_was_read(qtbot, tmp_path):
    """Rows come in small reads (a click far down, a run's refresh of the rows in view): whatever was
    read when, each position shows that row of the session's order, and the cells say what it holds."""
    from PySide6.QtCore import Qt

    from app.gui.review.table_model import ReviewTableModel

    path = tmp_path / "s.qmfreview"
    session = _make(path, n=700)
    model = ReviewTableModel()
    model.set_session(session)
    model.sort([k for k, _ in model.columns].index("probability"), Qt.SortOrder.DescendingOrder)
    truth = session.rows(RowFilter(), "probability", True)
    assert model.rowCount() == len(truth) == 700
    probability = [k for k, _ in model.columns].index("probability")
    for position in (650, 3, 199, 200, 451, 0, 699):  # jumps across pages and chunks
        assert model.row_at(position).id == truth[position].id
    model.refresh((420, 460))  # a run's refresh of the rows in view: the others are read again when asked
    for position in range(0, 700, 7):
        assert model.row_at(position).id == truth[position].id
        shown = model.index(position, probability).data()
        assert shown == ("" if truth[position].probability is None else f"{truth[position].probability:.3f}")
    session.close()


def test_a_file_job_is_no_longer_running_when_it_says_it_finished(qtbot, tmp_path):
    """What `finished` starts (the upgraded session opened, the next job) must not find the job still
    running: the thread is still returning when its slot runs, and under load the upgraded session
    was then never shown."""
    from PySide6.QtCore import Qt

    job = background.FileJob()
    seen = []
    # a direct connection runs the slot in the job's thread, before it returns: the latest moment
    job.finished.connect(lambda path, error: seen.append((job.running, path, error)), Qt.ConnectionType.DirectConnection)
    job.start(tmp_path / "f", lambda p, progress: None)
    job.wait(10)
    assert seen == [(False, str(tmp_path / "f"), "")]
    job.start(tmp_path / "g", lambda p, progress: (_ for _ in ()).throw(ValueError("damaged file")))
    job.wait(10)
    assert seen[-1] == (False, str(tmp_path / "g"), "damaged file") and not job.running
