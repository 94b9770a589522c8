"""What evidence would settle an unverifiable finding.

An ``unverifiable`` outcome is only useful to a prover or an inspector if it says what
is missing. Each property's finding names the streams it lacked (``missing_streams``)
or the reason it could not judge; this module turns that into one sentence naming the
evidence, and the command that produces it, that would let the property decide.
"""

from __future__ import annotations

from inspectorate.verify._registry import UNVERIFIABLE, Finding

# Where each stream comes from: the command or file that produces it.
_STREAM_SOURCE = {
    "sensor": "the verifier-owned sensor (`inspectorate capture -- CMD` or `inspectorate sensor --pid`)",
    "windows": "the workload's window records (windows.jsonl)",
    "steps": "the workload's step records (steps.jsonl)",
    "collectives": "the collective log (collectives.jsonl, the DDP comm hook)",
    "netdev": "NIC counters of the workload's own network namespace",
    "claimed_n_params": "a declared parameter count in the phase's claim",
    "cpu": "CPU samples of the workload",
    "nvsmi": "GPU counters (nvsmi.csv or NVML)",
    "spot_check": "a declared model the verifier can build and re-run (the spot-check)",
    "claimed_model": "a declared model in the phase's claim",
    "relay_peer": "the relay peer captured too (start the helper inside `inspectorate capture`, "
    "so its CPU is the workload's, or stop it)",
}

# What settles a property when the missing streams alone do not say it.
_PROPERTY_HINT = {
    "p1_op_type": "sensor evidence that separates the ops at this size: gradient-sync traffic of "
    "2+ ranks, or a model above the memory-separation size (~22M parameters, where training's "
    "extra 12 B/param stands out of the footprint; below it one process training or serving "
    "looks alike to every sensor), or a training replay (`verify --replay --corpus FILE`) for "
    "training claims",
    "p2_model_size": "the gradient-sync traffic of 2+ ranks, a footprint bound within 1.5x of the "
    "claim (large models), a bound training replay, or a served-output check: hand over "
    "RUN/claims/<phase>/weights.pt with served.jsonl (serve) or eval.json (eval), which verify "
    "re-computes (`inspectorate.handover.served` / `.evaluated` write them, docs/capture.md), or "
    "`difr verify` then `verify --recomputed`",
    "p3_finetune": "a replay claim in RUN_DIR/claims/PHASE/ whose segment 0 the verifier replays "
    "(any declared family: `inspectorate.handover.training` writes it from the workload's own "
    "loop, docs/capture.md; or `testbed run --replay-claims`), then `verify --replay --corpus FILE`",
    "compute": "a declared model the verifier can build, so the spot-check can price a claimed token",
    "flops": "window or step records claiming FLOPs, and a sensor to price them",
    "consistency": "two independent streams of the same quantity (collectives with NIC counters, "
    "steps with windows)",
    "integrity": "hash-chained streams (sensor.jsonl, steps.jsonl, windows.jsonl) to check",
    "training_replay": "the claimed code (`--code-commit`) and the claimed data (`--corpus`) "
    "so the verifier can replay",
    "served_model_identity": "a serving log and the declared weights (`difr verify`)",
    "eval_recompute": "an eval claim's batches and the declared weights (RUN/claims/<phase>/eval.json, "
    "`inspectorate.handover.evaluated`)",
}


_CLAIMS = ("p1_op_type", "p2_model_size", "p3_finetune")


def would_settle(f: Finding) -> str | None:
    """One sentence: what would let ``f`` decide; None when ``f`` already decided."""
    if f.decision != UNVERIFIABLE:
        return None
    missing = [s for s in f.evidence.get("missing_streams", []) if isinstance(s, str)]
    reason = f.evidence.get("reason") or f.evidence.get("unverifiable_reason")
    now = f" (now: {reason})" if isinstance(reason, str) else ""
    if missing:
        text = "needs " + "; ".join(_STREAM_SOURCE.get(s, s) for s in missing) + now
        # prover streams can fail a claim, never pass it: say what would pass it
        return text + (f"; to pass it, {_PROPERTY_HINT[f.property]}" if f.property in _CLAIMS else "")
    return "needs " + _PROPERTY_HINT.get(f.property, "evidence from a stream the verifier owns") + now
