"""A sample on demand: the capture wrapper asks its sensor for a sample (with a
working-set probe, ``capture._workset``) at every phase edge, and waits until it is
written.

Why: the working set is read over intervals between probes, and a periodic probe
spaced by its own cost (seconds apart for a large process) rarely fits an interval
inside a short phase. Probing at the edges makes the phase one interval of its own.
The wrapper asks after writing a start label and before writing an end label, and the
workload waits for the label's acknowledgement meanwhile, so the interval holds the
phase's work and nothing of its neighbours'.

The socket lives in a directory only root can enter; a process that reaches it anyway
can only ask for extra samples (rate-limited to ``MIN_GAP_S``), which split intervals and
never hide a touch.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

MIN_GAP_S = 0.2  # forced samples closer than this share one
ASK_TIMEOUT_S = 5.0  # the wrapper waits at most this long for a sample


class SampleControl:
    """The sensor's side: accepts ``probe`` requests, wakes the sampling loop, and
    answers each request once the loop has written the sample it asked for."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self.wake = threading.Event()  # the sampling loop waits on this instead of sleeping
        self.lock = threading.Lock()
        self.waiting: list[socket.socket] = []
        self.last_forced = 0.0
        self.closed = False
        self.thread = threading.Thread(target=self._accept, name="sensor-control", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(ASK_TIMEOUT_S)
            try:
                line = conn.recv(64)
            except OSError:
                conn.close()
                continue
            if line.strip() != b"probe":
                conn.close()
                continue
            with self.lock:
                self.waiting.append(conn)
            self.wake.set()

    def take(self) -> list[socket.socket]:
        """The requests waiting for the next sample; when the last forced sample was
        under ``MIN_GAP_S`` ago, first waits out the gap (forced samples stay <= 5/s
        whoever asks)."""
        with self.lock:
            if not self.waiting:
                return []
        gap = MIN_GAP_S - (time.monotonic() - self.last_forced)
        if gap > 0:
            time.sleep(gap)
        self.last_forced = time.monotonic()
        return self.take_all()

    def done(self, conns: list[socket.socket]) -> None:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sendall(b"ok\n")
            conn.close()

    def close(self) -> None:
        self.closed = True
        self.wake.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.done(self.take_all())

    def take_all(self) -> list[socket.socket]:
        with self.lock:
            taken, self.waiting = self.waiting, []
        return taken


def ask_sample(path: Path | None) -> bool:
    """The wrapper's side: ask the sensor at ``path`` for a sample now and wait until
    it is written (True) or ``ASK_TIMEOUT_S`` passes or nothing listens (False)."""
    if path is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(ASK_TIMEOUT_S)
            sock.connect(str(path))
            sock.sendall(b"probe\n")
            return sock.recv(8).startswith(b"ok")
    except OSError:
        return False
