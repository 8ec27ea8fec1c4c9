"""Decode the selected pair's files for the detail previews, off the GUI thread.

Reading a pair (PNG decode, WAV read and resampling) takes tens of milliseconds; done on the GUI
thread on every row click it stalled the window. The same pattern as the Predict tab's service: a
worker thread takes the latest request from a one-slot mailbox (clicking through rows never builds
a backlog), and the answer to a request superseded in the meantime is dropped here, in the GUI
thread, before the page sees it. The session's own preprocessing is used; no model is needed.

The worker is one thread of a `ThreadPoolExecutor` rather than a QThread: a view may be destroyed
without being shut down (a closed test window), and a QThread destroyed while it runs aborts the
process; an idle pool thread does not care. Its answers reach the GUI thread by a queued signal.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.gui.collector import install_gui_thread_collector


@dataclass(frozen=True)
class DecodeRequest:
    request_id: int
    pair_id: str
    modalities: tuple[tuple[str, str, str], ...]  # (name, kind, preprocessing as JSON): the session's inputs
    files: dict[str, str]


@dataclass(frozen=True)
class DecodedPair:
    request_id: int
    pair_id: str
    raw: dict[str, Any]  # name -> raw array, or None where the file cannot be read


class PreviewDecoder(QObject):
    """Lives in the GUI thread: `decode(...)` returns a request id; `decoded` answers only the latest."""

    decoded = Signal(object)  # DecodedPair

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._latest = 0
        self._worker = _DecodeWorker()
        self._worker.answered.connect(self._deliver)  # emitted from the pool thread: queued
        install_gui_thread_collector()  # Python runs in another thread: collect cycles in this one only

    def decode(self, pair_id: str, modalities: list[dict[str, Any]], files: dict[str, str]) -> int:
        import json

        self._latest += 1
        spec = tuple((m["name"], m["kind"], json.dumps(m.get("preprocessing") or {}, sort_keys=True))
                     for m in modalities)
        self._worker.put(DecodeRequest(self._latest, pair_id, spec, dict(files)))
        return self._latest

    def cancel(self) -> None:
        """Whatever is pending or running now is not wanted any more."""
        self._latest += 1

    @Slot(object)
    def _deliver(self, answer: DecodedPair) -> None:
        if answer.request_id == self._latest:
            self.decoded.emit(answer)

    def stop(self) -> None:
        self.cancel()
        self._worker.stop()


class _DecodeWorker(QObject):
    """The mailbox and the decoding, run by one pool thread."""

    answered = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pending: DecodeRequest | None = None
        self._modalities: dict[tuple, Any] = {}  # readers per session input spec, built once
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qmf-review-preview")

    def put(self, request: DecodeRequest) -> None:
        with self._lock:
            self._pending = request
        self._pool.submit(self._process)  # one thread: drains run one after another; an empty one returns

    def stop(self) -> None:
        with self._lock:
            self._pending = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _process(self) -> None:
        while True:
            with self._lock:
                request, self._pending = self._pending, None
            if request is None:
                return
            self.answered.emit(DecodedPair(request.request_id, request.pair_id, self._decode(request)))

    def _decode(self, request: DecodeRequest) -> dict[str, Any]:
        import json

        from app.modalities import InputError, get_modality

        raw: dict[str, Any] = {}
        for name, kind, params in request.modalities:
            key = (name, kind, params)
            try:
                if key not in self._modalities:
                    self._modalities[key] = get_modality(kind, json.loads(params))
                modality = self._modalities[key]
                path = request.files.get(name)
                raw[name] = modality.load(path) if path else modality.blank()
            except (InputError, OSError, ValueError):  # the table row already says why; no picture
                raw[name] = None
        return raw
