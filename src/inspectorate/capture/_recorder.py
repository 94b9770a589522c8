"""StepRecorder: one hash-chained, typed record per optimizer or inference step.

The workload calls it; it never reaches into the model beyond reading parameters,
grads and optimizer state (instrumentation through a recorder object, not woven
into model code). Every record carries ``schema``, ``kind``, ``record_id``, ``t``
(epoch seconds), ``phase``, ``rank`` and ``step`` so that verifiers can read a mixed
stream of kinds by column.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._torch_stats import (
    default_param_group,
    fingerprint,
    finite,
    group_params,
    step_norms,
    token_stats,
)

SCHEMA = "inspectorate.step/1"


def _host_telemetry(proc: psutil.Process) -> dict[str, Any]:
    """Process RSS, process CPU% since the last call, 1-minute load: a few syscalls."""
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "process_rss_mb": round(proc.memory_info().rss / 2**20, 3),
        "cpu_percent": proc.cpu_percent(interval=None),
        "system_load_1m": load1,
    }


def _device_memory(model: Any) -> dict[str, Any]:
    """CUDA allocator counters (no sync) when the model lives on a GPU."""
    try:
        param = next(model.parameters())
    except (StopIteration, AttributeError):
        return {}
    if param.device.type != "cuda":
        return {}
    import torch

    return {
        "cuda_allocated_mb": round(torch.cuda.memory_allocated(param.device) / 2**20, 3),
        "cuda_reserved_mb": round(torch.cuda.memory_reserved(param.device) / 2**20, 3),
    }


class StepRecorder:
    """Writes ``inspectorate.step/1`` records to a crash-safe chain file.

    ``fingerprint_every``: a ``fingerprint`` record follows every N-th train step
    (N<=0 disables). ``param_group`` maps a parameter name to its group.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        phase: str,
        rank: int = 0,
        fingerprint_every: int = 50,
        param_group: Callable[[str], str] = default_param_group,
        fsync_every: int = 0,
    ) -> None:
        self.writer = ChainWriter(path, fsync_every=fsync_every)
        self.phase = phase
        self.rank = rank
        self.fingerprint_every = fingerprint_every
        self.param_group = param_group
        self._proc = psutil.Process()
        self._proc.cpu_percent(interval=None)  # prime: the first call always says 0.0
        self._groups: dict[str, list[Any]] | None = None
        self._groups_model: Any = None
        self._last_train_t: float | None = None
        self._prev_logp: Any = None

    @property
    def path(self) -> Path:
        return self.writer.path

    def set_phase(self, phase: str) -> None:
        """Records from now on carry this phase name (one file may span phases).

        The parameter groups are dropped with the phase: holding the last model here
        kept a finished training job's weights resident through every later phase of a
        long-lived rank (500 MB a rank at 124M), and the sensor read them as the next
        serving phase's memory."""
        self.phase = phase
        self._prev_logp = None
        self._groups = None
        self._groups_model = None

    def _emit(self, kind: str, step: int | None, fields: dict[str, Any]) -> dict[str, Any]:
        record = {
            "schema": SCHEMA,
            "kind": kind,
            "t": time.time(),
            "phase": self.phase,
            "rank": self.rank,
            "step": step,
        }
        record.update(fields)
        return self.writer.append(record, id_prefix=f"step_r{self.rank}_")

    def _param_groups(self, model: Any) -> dict[str, list[Any]]:
        """Group the model's parameters once (re-done if a different model arrives).

        The model itself is kept (not its id): a freed model's id can be reused by the
        next phase's model, which would silently keep the old parameters.
        """
        if self._groups is None or self._groups_model is not model:
            self._groups = group_params(model.named_parameters(), self.param_group)
            self._groups_model = model
        return self._groups

    def train_step(
        self,
        step: int,
        *,
        loss: Any,
        model: Any,
        optimizer: Any,
        lr: float,
        tokens: int,
        forward_s: float,
        backward_s: float,
        optimizer_s: float,
    ) -> dict[str, Any]:
        """Record one optimizer step; call after ``optimizer.step()``, before ``zero_grad``.

        The grads are still in place then, so the norms are the ones this update used.
        """
        now = time.time()
        step_time = forward_s + backward_s + optimizer_s
        fields = step_norms(self._param_groups(model), optimizer, loss)
        fields.update(
            lr=float(lr),
            tokens=int(tokens),
            forward_ms=round(forward_s * 1e3, 4),
            backward_ms=round(backward_s * 1e3, 4),
            optimizer_ms=round(optimizer_s * 1e3, 4),
            step_time_s=step_time,
            tokens_per_second=finite(tokens / step_time) if step_time > 0 else None,
            interval_s=None if self._last_train_t is None else now - self._last_train_t,
            telemetry={**_host_telemetry(self._proc), **_device_memory(model)},
        )
        self._last_train_t = now
        record = self._emit("train_step", step, fields)
        if self.fingerprint_every > 0 and step % self.fingerprint_every == 0:
            self.fingerprint(step, model)
        return record

    def fingerprint(self, step: int, model: Any) -> dict[str, Any]:
        """Record the weights' SHA-256 and summary stats (copies weights to host: not per step)."""
        return self._emit("fingerprint", step, fingerprint(model, self.param_group))

    def infer_token(
        self,
        step: int,
        *,
        logits: Any,
        latency_s: float,
        kv_bytes: int,
        token: int,
        tokens: int | None = None,
    ) -> dict[str, Any]:
        """Record one sampled token: entropy, top-1 prob, KL from the previous token's distribution.
        ``tokens``: tokens the step processed (batch, plus the prompt on a prefill step), so
        verifiers can count 2·N·D from step records as they do 6·N·D from train steps."""
        stats, self._prev_logp = token_stats(logits, self._prev_logp)
        stats.update(token=int(token), latency_ms=round(latency_s * 1e3, 4), kv_bytes=int(kv_bytes))
        if tokens is not None:
            stats["tokens"] = int(tokens)
        return self._emit("infer_token", step, stats)

    def eval_step(self, step: int, *, loss: float, tokens: int, seconds: float) -> dict[str, Any]:
        """Record one evaluation batch (no update happened)."""
        fields = {
            "loss": finite(float(loss)),
            "tokens": int(tokens),
            "seconds": seconds,
            "tokens_per_second": finite(tokens / seconds) if seconds > 0 else None,
        }
        return self._emit("eval_step", step, fields)

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record a free-form event (phase start, checkpoint saved, ...). ``step`` is optional."""
        step = fields.pop("step", None)
        return self._emit(kind, step, fields)

    def close(self) -> None:
        """Sync and close the chain file; idempotent."""
        self.writer.close()

    def __enter__(self) -> StepRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
