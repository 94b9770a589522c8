"""The workload's side of the label channel (``inspectorate capture`` owns the other).

    from inspectorate import capture

    with capture.phase("serve", op="inference", model="my-mlp", n_params=1_200_000,
                       batch_size=8, sequence_length=64):
        for batch in batches:
            ...
            capture.tokens(batch.numel())

Outside ``inspectorate capture`` (no ``INSPECTORATE_CAPTURE_SOCKET``) every call is a
no-op, so the same script runs unwrapped. What is sent here is the prover's claim: the
wrapper stamps it with its own clock and writes it, the verifier judges it against the
sensor.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from inspectorate.capture._channel import SOCKET_ENV

_lock = threading.Lock()
_conn: dict[str, Any] = {"sock": None, "pid": None}


def active() -> bool:
    """True inside ``inspectorate capture``."""
    return bool(os.environ.get(SOCKET_ENV))


def _sock() -> socket.socket | None:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        return None
    if _conn["sock"] is None or _conn["pid"] != os.getpid():  # a forked child connects anew
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        _conn.update(sock=sock, pid=os.getpid())
    return _conn["sock"]


def _send(msg: dict[str, Any], ack: bool = False) -> None:
    with _lock:
        sock = _sock()
        if sock is None:
            return
        if ack:
            msg = {**msg, "ack": True}
        sock.sendall(json.dumps(msg).encode() + b"\n")
        if ack:
            got = b""
            while not got.endswith(b"\n"):
                chunk = sock.recv(16)
                if not chunk:
                    raise ConnectionError("the capture wrapper closed the label channel")
                got += chunk


@contextmanager
def phase(name: str, *, op: str, **claim: Any) -> Iterator[None]:
    """Claim that the body is phase ``name`` of op ``op`` (training / inference / eval /
    idle); ``claim``: ``model``, ``n_params``, ``label``, ``world_size``, ``chips``,
    ``batch_size``, ``sequence_length``, ``flops_per_token``, ``model_hash_prefix``.
    Returns after the wrapper has written the start label."""
    _send({"event": "start", "phase": name, "op": op, **claim}, ack=True)
    try:
        yield
    finally:
        _send({"event": "end", "phase": name}, ack=True)


def tokens(n: int) -> None:
    """Report ``n`` tokens processed (they go to the window records of open phases)."""
    _send({"event": "tokens", "n": int(n)})
