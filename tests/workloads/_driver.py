"""Runs a plan of phases: each phase *does* one thing (train / serve / eval / idle /
hidden: matrix products) for some seconds while *claiming* another through
``inspectorate.capture.phase``; the tokens reported are the real ones times
``token_factor`` (a prover inflating its tokens). ``records``: ``naive`` writes step
records of what it really does (the prover contradicts itself), ``competent`` writes
records of what it claims (every prover file agrees with the claim), ``none`` writes none.

Plan: ``{"config": {...}, "records": "naive", "phases": [{"name", "do", "seconds",
"claim": {"op", "model", "n_params", ...}, "token_factor"}]}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import _replay_handover
import _served_handover

from inspectorate import capture
from inspectorate.capture import StepRecorder

KIND = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
DO_OP = {
    "train": "training",
    "serve": "inference",
    "serve_updates": "inference",
    "eval": "eval",
    "hidden": "training",
}


def hidden_work() -> int:
    """Compute nobody claimed: a burst of matrix products."""
    import torch

    a = torch.randn(192, 192)
    for _ in range(8):
        a = torch.tanh(a @ a)
    return 0


def run(workload: Any, plan: dict[str, Any], rank: int = 0) -> None:
    run_dir = os.environ.get("INSPECTORATE_RUN_DIR")
    mode = plan.get("records", "naive")
    rec = None
    _replay_handover.prepare(plan)
    if run_dir and rank == 0 and mode != "none":
        rec = StepRecorder(Path(run_dir) / "steps.jsonl", phase="start", fingerprint_every=0)
    for i, ph in enumerate(plan["phases"]):
        claim = dict(ph["claim"])
        claim.setdefault("batch_size", getattr(workload, "batch_size", 1))
        claim.setdefault("sequence_length", getattr(workload, "seq_len", 1))
        if rec is not None:
            rec.set_phase(ph["name"])
        with capture.phase(ph["name"], **claim):
            hand = _replay_handover.begin(workload, ph, run_dir) if rank == 0 else None
            served = _served_handover.open_phase(workload, ph, plan, rank)  # serve/eval outputs, if asked
            end = time.time() + float(ph["seconds"])
            step = 0
            while _keep_going(end):
                t = time.time()
                if ph["do"] == "idle":
                    time.sleep(0.05)
                    continue
                n = hidden_work() if ph["do"] == "hidden" else getattr(workload, ph["do"])()
                if served is not None:
                    served.step()
                dt = time.time() - t
                if hand is not None:
                    hand.step()
                if rank == 0 and n:
                    capture.tokens(int(n * float(ph.get("token_factor", 1.0))))
                if rec is not None and ph["do"] != "hidden":
                    # naive: what it really did; competent: what it claims, tokens as claimed
                    if mode == "naive":  # an update step of a sampling loop is a train step
                        op = "training" if getattr(workload, "last_update", False) else DO_OP[ph["do"]]
                        _record(rec, op, step, n, dt)
                    else:
                        _record(rec, claim["op"], step, int(n * float(ph.get("token_factor", 1.0))), dt)
                step += 1
            if hand is not None:  # inside the phase: the watcher sees its checkpoints written
                hand.finish()
            if served is not None:
                served.close()
        if i + 1 < len(plan["phases"]):
            time.sleep(float(plan.get("gap_s", 0.3)))
    if rec is not None:
        rec.close()


def _keep_going(end: float) -> bool:
    """Every rank of a distributed job stops at the same step (one all-reduce of the
    flag), or a rank would wait forever in the next gradient all-reduce."""
    go = time.time() < end
    try:
        import torch.distributed as dist
    except ImportError:
        return go
    if dist.is_available() and dist.is_initialized():
        import torch

        flag = torch.tensor([1 if go else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())
    return go


def _record(rec: StepRecorder, op: str, step: int, n: int, dt: float) -> None:
    kind = KIND.get(op)
    if kind == "train_step":
        rec.event(kind, step=step, step_time_s=dt, tokens=n, loss=None)
    elif kind == "infer_token":
        rec.event(kind, step=step, latency_ms=dt * 1000.0, tokens=n)
    elif kind == "eval_step":
        rec.event(kind, step=step, step_time_s=dt, tokens=n)


def load_plan() -> dict[str, Any]:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} PLAN.json")
    return json.loads(Path(sys.argv[1]).read_text())


def n_params(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))
