"""Were the weights left as they were? The still part of the working set, judged.

A forward pass reads the weights and does not write them; a training step writes them,
its gradients and its optimizer moments, every step. The sensor estimates, per probe
interval, the bytes the tree touched and left unchanged (``capture._stillset``:
``ws_still_b`` with its standard deviation, over the data mappings that touched
``ws_data_b``). An inference or eval phase of an ``n``-parameter model must show, in the
intervals that touched at least a forward pass's worth of data, a still set at least the
weights a forward reads; a training phase shows only the runtime's few tens of MB.

The same pages say whether a copy of the weights was trained beside them: an optimizer
step moves every weight it trains by a small fraction of itself, and the sensor counts
the drawn pages rewritten that way (``ws_nudged_b``, ``capture._stillset.nudged_pages``).
A server that keeps the declared weights frozen and trains a copy beside them leaves
the first still and nudges the second; an honest one nudges nothing (``weights_nudged``).

Both fail a claim; neither excuses one. A prover can pass it only by keeping a decoy
of the weights' size and reading it every interval, which costs that much resident
memory on top of training's state: the footprint rule bounds that
(``p1_op_type``'s ``footprint_holds_training_state``). It does not apply where the
weights may live elsewhere (a GPU), where the sensor did not estimate (older sensors,
``/proc/PID/mem`` refused) or where no interval touched a forward pass's worth.
"""

from __future__ import annotations

from typing import Any

from inspectorate.models._spec import FP32
from inspectorate.verify._evidence import PhaseEvidence

# Share of the read weights the phase's still estimate must reach (within SIGMAS of its
# error): a forward reads every weight it uses once per pass; the margin is for pages the
# runtime keeps moving (allocator metadata, refcounts on tensor objects). Honest eval and
# serving intervals read 84-135% of their fp32 weights still (docs/verify.md, "Weights
# left still").
STILL_SHARE = 0.8
# Without a declared architecture the verifier cannot tell lookup tables (an untied
# input embedding a forward reads a few rows of) from weights read whole: it asks for
# half the weights.
UNKNOWN_READ_SHARE = 0.5
SIGMAS = 2.5


def read_weights_b(ev: PhaseEvidence, n: int, bytes_per_param: float | None = None) -> float:
    """Bytes of weights every forward pass reads, in the declared ``weights_dtype``
    (fp32 without a description, the model layer's assumption; lookup tables left out),
    or at ``bytes_per_param`` where given."""
    spec = ev.model_spec
    width = bytes_per_param or (spec.weight_bytes if spec is not None else FP32)
    lookup = spec.lookup_params() if spec is not None else None
    if lookup is None:
        return UNKNOWN_READ_SHARE * width * n
    return width * max(n - lookup, 0)


def _on_gpu(ev: PhaseEvidence) -> bool:
    """The workload uses a GPU: its weights may live there, out of the sampled pages."""
    return ev.gpu_util is not None or bool((ev.sensor or {}).get("gpu_mem_b"))


def weights_rewritten(ev: PhaseEvidence, n: int, notes: dict[str, Any]) -> float | None:
    """Suspicion (>= 0.5: the weights were written) for an inference/eval phase, or None
    when the still set cannot speak for it."""
    s = ev.sensor or {}
    rows = s.get("ws_intervals")
    if not rows:
        notes["still_not_judged"] = "no still estimate in the phase (older sensor, or no probe inside it)"
        return None
    if _on_gpu(ev):
        notes["still_not_judged"] = "the workload uses a GPU: its weights may live there"
        return None
    need = STILL_SHARE * read_weights_b(ev, n)
    # intervals that touched at least a forward's worth of data (an idle stretch of a
    # server touches little, and says nothing about its weights), less those that grew
    # by that much and held it for half the interval: a model loaded inside the interval
    # arrived after the draw, so none of it could read as still. Growth allocated just
    # before the interval's end (to pass for a load) is not held, and is judged; growth
    # that is held shows in the footprint, which bounds it.
    full = [r for r in rows if r[3] >= need and r[1] > r[0] and not (r[6] >= need and r[7] >= 0.5)]
    if need <= 0 or not full:
        notes["still_not_judged"] = "no interval touched a forward pass's worth of memory"
        return None
    span = sum(r[1] - r[0] for r in full)
    mean = sum(r[4] * (r[1] - r[0]) for r in full) / span
    sd = sum((r[5] * (r[1] - r[0])) ** 2 for r in full) ** 0.5 / span
    high = mean + SIGMAS * sd
    notes.update(
        still_mean_b=round(mean), still_sd_b=round(sd), still_needed_b=round(need), still_intervals=len(full)
    )
    return need / (need + high) if high > 0 else 1.0


# Share of one fp32 copy of the claimed weights (lookup tables left out) that must read
# as nudged in one interval: a step of SGD moves the whole trained copy; AdamW moves it
# and its second moment (twice as much). An honest server nudges no page at all (0 of
# every honest interval measured, docs/verify.md "Weights nudged").
NUDGED_SHARE = 0.5


def weights_nudged(ev: PhaseEvidence, n: int, notes: dict[str, Any]) -> float | None:
    """Suspicion (>= 0.5: a copy of the weights was trained) for an inference/eval
    phase, or None where no interval read its pages as an optimizer's steps (older
    sensors, a GPU). One interval is enough: an update every k requests lands in some
    intervals only.

    The test is against the estimate's error *at the limit*: were only ``need`` bytes
    nudged, the nudged count of drawn pages would be binomial with mean need / w (w: the
    bytes a drawn page stands for), so the estimate stays under need + SIGMAS x
    sqrt(w x need) but for a 2.5-sigma draw. (The error of the estimate itself grows
    with what it found, and would let a larger trained copy hide behind its own size.)
    w comes back from the row: sd^2 / nudged = w (1 - q), q the nudged share of the draw."""
    s = ev.sensor or {}
    if "ws_nudged" not in s:
        notes["nudged_not_judged"] = "no nudged estimate in the phase (older sensor, or no probe inside it)"
        return None
    if _on_gpu(ev):
        notes["nudged_not_judged"] = "the workload uses a GPU: its weights may live there"
        return None
    need = NUDGED_SHARE * read_weights_b(ev, n, FP32)  # a trained copy is fp32 here
    if need <= 0:
        notes["nudged_not_judged"] = "no weights outside lookup tables"
        return None
    best, top = 0.0, None
    for r in (r for r in s["ws_nudged"] if r[2] > 0):
        limit = need + SIGMAS * (r[3] ** 2 / r[2] * need) ** 0.5
        score = r[2] / (r[2] + limit)
        if score > best:
            best, top = score, (r, limit)
    notes["nudged_needed_b"] = round(need)
    if top is not None:
        notes.update(
            nudged_max_b=round(top[0][2]), nudged_sd_b=round(top[0][3]), nudged_limit_b=round(top[1])
        )
    return best
