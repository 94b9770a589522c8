"""Collective-communication log: one JSON line per all-reduce, written from a DDP comm hook.

Why our own log beside NCCL's: gloo (the CPU testbed) prints nothing like NCCL_DEBUG,
and even on GPUs the hook sees what DDP *asked* for (bucket bytes) while NCCL's log says
what the library did, so the two cross-check each other. torch is imported lazily.

Duration semantics: the time from issuing the all-reduce to its future completing.
With gloo that is the full exchange; with NCCL the future completes when the work is
enqueued on the stream, so it is a lower bound, not the wire time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class CollectiveLog:
    """Thread-safe JSONL appender for ``collectives.jsonl`` (one object per collective)."""

    def __init__(self, path: Path | str, rank: int, world_size: int, phase: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rank = rank
        self.world_size = world_size
        self.phase = phase
        self.count = 0
        self._lock = threading.Lock()
        self._out = open(self.path, "a", encoding="utf-8")

    def set_phase(self, name: str | None) -> None:
        """Collectives from now on are tagged with this phase."""
        self.phase = name

    def log(
        self, *, op: str, nbytes: int, duration_s: float, dtype: str, t: float | None = None
    ) -> dict[str, Any]:
        """Append one collective; ``t`` (epoch seconds) is when it was issued."""
        entry = {
            "t": time.time() if t is None else t,
            "rank": self.rank,
            "world_size": self.world_size,
            "op": op,
            "bytes": int(nbytes),
            "duration_s": duration_s,
            "dtype": dtype,
            "phase": self.phase,
        }
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._out.closed:
                self._out.write(line)
                self._out.flush()
                self.count += 1
        return entry

    def close(self) -> None:
        with self._lock:
            self._out.close()

    def __enter__(self) -> CollectiveLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def allreduce_logging_hook(log: CollectiveLog) -> Callable[[Any, Any], Any]:
    """A DDP comm hook doing what the default all-reduce hook does, and logging it.

    Register with ``ddp_model.register_comm_hook(state=None, hook=allreduce_logging_hook(log))``
    (``state`` may also be a process group). The bucket is divided by the world size
    then summed across ranks, i.e. averaged, exactly like torch's ``allreduce_hook``.
    """
    import torch
    import torch.distributed as dist

    def hook(state: Any, bucket: Any) -> Any:
        group = state if state is not None else dist.group.WORLD
        tensor = bucket.buffer()
        world = dist.get_world_size(group)
        nbytes = tensor.numel() * tensor.element_size()
        dtype = str(tensor.dtype).removeprefix("torch.")
        tensor.div_(world)
        t0_wall, t0 = time.time(), time.perf_counter()
        fut = dist.all_reduce(tensor, group=group, async_op=True).get_future()

        def done(f: Any) -> Any:
            log.log(
                op="allreduce", nbytes=nbytes, duration_s=time.perf_counter() - t0, dtype=dtype, t=t0_wall
            )
            return f.value()[0]

        return fut.then(done)

    # DDP checks the annotations as objects; this module's are strings (postponed).
    hook.__annotations__ = {
        "state": Any,
        "bucket": dist.GradBucket,
        "return": torch.futures.Future[torch.Tensor],
    }
    return hook
