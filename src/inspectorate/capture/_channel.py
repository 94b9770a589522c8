"""The wrapper's side of the label channel: phases and token counts in, labels and window
records out.

The workload (``inspectorate.capture.phase`` / ``tokens``) or the claims file's schedule
says when a phase starts and ends and what it claims; the workload reports the tokens it
processed. The wrapper stamps every event with its own clock on receipt and writes
``workload_labels.jsonl`` and ``windows.jsonl`` (hash-chained) itself. Both stay the
prover's claims (the workload says what it likes over the channel); what the wrapper
adds is one writer, one clock, and a whitelist of claim fields.

Messages are JSON lines on a unix stream socket whose path is in
``INSPECTORATE_CAPTURE_SOCKET``: ``{"event": "start", "phase": ..., claim fields}``,
``{"event": "end", "phase": ...}``, ``{"event": "tokens", "n": ...}``. A phase opened by
several processes (every rank of a job) is one phase: it ends when the last one closes it.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.errors import ClaimError

SOCKET_ENV = "INSPECTORATE_CAPTURE_SOCKET"
RUN_DIR_ENV = "INSPECTORATE_RUN_DIR"
OPS = ("training", "inference", "eval", "idle")
# claim fields a phase may carry -> (label field verify reads, type)
CLAIM_KEYS: dict[str, tuple[str, type]] = {
    "op": ("claimed_op", str),
    "model": ("claimed_model", str),
    "n_params": ("claimed_n_params", int),
    "world_size": ("world_size", int),
    "chips": ("chips", list),
}
WINDOW_KEYS = ("batch_size", "sequence_length", "flops_per_token", "model_hash_prefix")


@dataclass
class PhaseClaim:
    name: str
    label: str
    fields: dict[str, Any] = field(default_factory=dict)  # CLAIM_KEYS' label fields
    window: dict[str, Any] = field(default_factory=dict)  # WINDOW_KEYS

    @classmethod
    def parse(cls, msg: dict[str, Any], defaults: dict[str, Any] | None = None) -> PhaseClaim:
        merged = {**(defaults or {}), **msg}
        name = merged.get("phase", merged.get("name"))
        if not isinstance(name, str) or not name:
            raise ClaimError("a phase needs a non-empty 'name'")
        op = merged.get("op")
        if op not in OPS:
            raise ClaimError(f"phase {name!r}: 'op' must be one of {', '.join(OPS)}")
        fields: dict[str, Any] = {}
        for key, (label_key, kind) in CLAIM_KEYS.items():
            if merged.get(key) is not None:
                value = merged[key]
                if kind is int and isinstance(value, float) and value.is_integer():
                    value = int(value)
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise ClaimError(f"phase {name!r}: {key!r} must be {kind.__name__}")
                fields[label_key] = value
        window = {k: merged[k] for k in WINDOW_KEYS if merged.get(k) is not None}
        label = str(merged.get("label") or op)
        return cls(name, label, fields, window)


@dataclass
class _Open:
    claim: PhaseClaim
    t0: float
    holders: int = 1
    tokens: list[tuple[float, int]] = field(default_factory=list)


class Channel:
    """Writes labels and window records for the phases opened and closed through it."""

    def __init__(self, run_dir: Path, window_s: float = 5.0, chip: str = "host0") -> None:
        self.run_dir = run_dir
        self.window_s = window_s
        self.chip = chip
        self.lock = threading.Lock()
        self.open: dict[str, _Open] = {}
        self.labels = open(run_dir / "workload_labels.jsonl", "a", encoding="utf-8")
        self.windows = ChainWriter(run_dir / "windows.jsonl")
        self.last_id: str | None = None
        self.grid_t0 = time.time()
        self.errors: list[str] = []
        # called at each phase edge, after a start label and before an end label: capture
        # asks its sensor for a sample there (capture._sensor_control); the workload is
        # waiting for the label's acknowledgement meanwhile
        self.edge: Callable[[], object] | None = None

    # -------------------------------------------------------------- events

    def start(self, claim: PhaseClaim, t: float | None = None) -> None:
        t = time.time() if t is None else t
        with self.lock:
            if claim.name in self.open:
                self.open[claim.name].holders += 1
                return
            self.open[claim.name] = _Open(claim, t)
            self._label("start", claim, t)
            if self.edge is not None:
                self.edge()

    def end(self, name: str, t: float | None = None) -> None:
        with self.lock:
            ph = self.open.get(name)
            if ph is None:
                return
            ph.holders -= 1
            if ph.holders > 0:
                return
            del self.open[name]
            if self.edge is not None and t is None:
                self.edge()  # the phase's last sample comes before its end label
            t = time.time() if t is None else t
            self._label("end", ph.claim, t)
            self._write_windows(ph, t)

    def tokens(self, n: int, t: float | None = None) -> None:
        t = time.time() if t is None else t
        with self.lock:
            for ph in self.open.values():
                if ph.claim.fields.get("claimed_op") != "idle":
                    ph.tokens.append((t, int(n)))

    def end_all(self) -> None:
        """End every phase still open (the command exited inside it)."""
        for name in list(self.open):
            while name in self.open:
                self.end(name)

    def close(self) -> None:
        self.end_all()
        self.labels.close()
        self.windows.close()

    def handle(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        try:
            if event == "start":
                self.start(PhaseClaim.parse(msg))
            elif event == "end" and isinstance(msg.get("phase"), str):
                self.end(msg["phase"])
            elif event == "tokens" and isinstance(msg.get("n"), int) and msg["n"] >= 0:
                self.tokens(msg["n"])
            else:
                raise ClaimError(f"unknown message {str(msg)[:80]}")
        except ClaimError as exc:
            self.errors.append(str(exc))

    # -------------------------------------------------------------- writers

    def _label(self, event: str, claim: PhaseClaim, t: float) -> None:
        entry = {"event": event, "phase": claim.name, "claimed": claim.label, "truth": None, "t": t}
        entry.update(claim.fields)
        self.labels.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
        self.labels.flush()

    def _write_windows(self, ph: _Open, t1: float) -> None:
        """One record per grid window overlapping the phase, clipped to it."""
        claim, w = ph.claim, ph.claim.window
        op = claim.fields.get("claimed_op", "idle")
        n_params = claim.fields.get("claimed_n_params") or 0
        per_token = w.get("flops_per_token") or (6.0 if op == "training" else 2.0) * n_params
        first = math.floor((ph.t0 - self.grid_t0) / self.window_s)
        last = max(first, math.ceil((t1 - self.grid_t0) / self.window_s) - 1)
        for idx in range(first, last + 1):
            lo = max(self.grid_t0 + idx * self.window_s, ph.t0)
            hi = min(self.grid_t0 + (idx + 1) * self.window_s, t1)
            if hi <= lo and idx != first:
                continue
            edge_lo, edge_hi = idx == first, idx == last  # tokens just outside fold into the edges
            n = sum(k for tt, k in ph.tokens if (edge_lo or tt >= lo) and (edge_hi or tt < hi))
            record = {
                "chip_id": self.chip,
                "job_id": f"capture:{claim.name}",
                "operator": "capture",
                "cluster_region": "local",
                "window_start": _iso(lo),
                "window_end": _iso(max(hi, lo)),
                "op_type": op,
                "flops": 0.0 if op == "idle" else float(per_token) * n,
                "tokens_processed": n,
                "batch_size": int(w.get("batch_size") or 0),
                "sequence_length": int(w.get("sequence_length") or 0),
                "model_hash_prefix": str(w.get("model_hash_prefix") or "sha256:undeclared"),
                "dataset_fingerprint": "sha256:undeclared",
                "data_source_tags": [],
                "code_commit": "unknown",
                "config_hash": "sha256:undeclared",
                "upstream_refs": [self.last_id] if self.last_id else [],
            }
            self.last_id = self.windows.append(record, id_prefix="win_")["record_id"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ChannelServer:
    """Accepts the workload's connections on a unix socket and feeds ``Channel``."""

    def __init__(self, channel: Channel, path: Path) -> None:
        self.channel = channel
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True, name="capture-channel")
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self._line(line, conn)

    def _line(self, line: bytes, conn: socket.socket) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            self.channel.errors.append("a channel line is not JSON")
            return
        if isinstance(msg, dict):
            self.channel.handle(msg)
            if msg.get("ack"):
                try:
                    conn.sendall(b"ok\n")  # the client waits: its phase starts after the label
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.acceptor.join(timeout=2)
        for t in self.threads:
            t.join(timeout=2)
        self.sock.close()
        self.path.unlink(missing_ok=True)
