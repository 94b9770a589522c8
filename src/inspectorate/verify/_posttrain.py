"""Post-training disguised as serving: four detections from what the prover cannot write.

A serving claim (op ``inference``) whose host also trains leaves traces no rewrite of the
prover's own files removes (docs/posttrain.md):

- ``posttrain_resident_state``: the sensor's memory footprint of the workload tree against
  the declared model's serving bound (fp32 weights + the KV cache of the served batches,
  per rank). Optimizer state (AdamW: 8 B/param), gradient buffers (4 B/param) and a
  second copy of the weights (a frozen server beside a trained copy) do not fit in it.
- ``posttrain_backward_share``: the sensor's CPU-seconds against what the served tokens
  cost. The served tokens come from the served-output log, not the window records (which
  a competent prover inflates to explain its CPU); every logged sequence must re-compute
  under DiFR, so padding the log costs the very compute it would explain.
- ``posttrain_weight_writes``: bytes the sensor saw the tree write beyond the served
  log's own bytes: a weights-sized write is a checkpoint of an updated policy.
- ``posttrain_served_drift``: DiFR (Token-DiFR under the declared seed) of served
  sequences sampled early, late and at a draw between (seeded by the sensor chain's final
  hash) against the declared weights: an updated policy diverges, an honest server does not.

All four are cross-checks (``claim=False``): they can fail a serving claim, never pass
one, and say ``applies: False`` for other claims. They judge serving phases that hand
over a served-output log (``served/<phase>/``, the logged deployment they are built
for) and are unverifiable without one; generic serving memory stays P1's (its
single-rank-training footprint check), so runs without served logs judge as before. Thresholds come from honest serving
phases (bench/posttrain.py), never from the attacks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.verify._evidence import PhaseEvidence
from inspectorate.verify._physics import claimed_work
from inspectorate.verify._properties import WS_COVERAGE, Context, above
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, Finding, finding, prop, unverifiable
from inspectorate.verify._spotcheck import SpotCheck, spot_check

SERVED_DIR = "served"
DECLARED_FILE = "declared.pt"
# Honest-calibrated limits (bench/posttrain.py on honest serving phases; docs/posttrain.md).
MEMORY_EXCESS_PER_PARAM = 4.0  # one fp32 copy (a frozen server or gradients); honest creep <= 5.7 at 3.2M
# plus a per-rank allowance independent of model size (torch arenas, DiFR buffers). It was
# 8 MiB, fitted on 12 honest phases; a CI run then flagged an honest 28k-parameter serving
# phase above it (locally 0.3-9 MB): allocator noise of this size is not physics.
MEMORY_FIXED_B = 32 * 2**20
# Observed CPU-s over the verifier's replay cost of the served tokens. Calibrated, not
# argued: the fitted (log-normal) 99.75% quantile of 20 honest phases (28k, 3.2M, 10.8M;
# 1 thread; every other phase of bench/posttrain.py --calibrate 2 plus the attack runs'
# honest phases) was 2.98 on the shared 2-core box at load 15-34; honest ratios spanned
# 0.87-2.25 there (prover-side per-batch overhead the replay does not pay, and load).
# 32 later honest phases (2 threads), never fitted: 0 flagged (docs/posttrain.md).
COMPUTE_LIMIT = 3.0
SPOT_LIMIT = 1.5  # the same over the spot-check's generic cost (honest 0.39-0.84 here)
REPLAY_REPS = 3  # timings of the verifier's decode replay (median)
WRITE_SHARE = 0.5  # unexplained writes of half the fp32 weights = a checkpoint
WRITE_RECORDS_B = 64 * 1024  # a phase's own records and IPC writes beside its served logs
WRITE_SLACK_CAP_B = 1 << 20  # the edge slack's most (honest edges measured <= ~0.13 MB)
TOKEN_TOL = 1e-3  # a sequence's mean Token-DiFR shortfall beyond fp32 numerical noise (~1e-5)
ACT_TOL = 1e-5  # mean relative Activation-DiFR distance (honest fp32 threshold 5.7e-7, docs/difr.md)
DRIFT_LIMIT = 0.25  # share of late sampled sequences over TOKEN_TOL
SAMPLE_FILES = 2  # served batches sampled at each end of the phase, per rank


def _serving(ev: PhaseEvidence) -> bool:
    return ev.claim.op == "inference"


def _not_serving(name: str, ev: PhaseEvidence) -> Finding:
    return finding(name, 0.0, CONSISTENT, applies=False, claimed_op=ev.claim.op)


def _ranks(ev: PhaseEvidence) -> int:
    return max(ev.claim.world_size or 1, len(ev.claim.chips), 1)


def served_files(ev: PhaseEvidence) -> dict[str, list[Path]]:
    """rank folder -> the phase's served batch logs in serving order (none: empty)."""
    if ev.run_path is None:
        return {}
    root = Path(ev.run_path) / SERVED_DIR / ev.name
    if not root.is_dir():
        return {}
    return {d.name: sorted(d.glob("b*.jsonl")) for d in sorted(root.iterdir()) if d.is_dir()}


@functools.lru_cache(maxsize=8)
def _declared(path: Path) -> Any:
    from inspectorate.difr import load_checkpoint

    return load_checkpoint(path)


def declared(ev: PhaseEvidence) -> Any | None:
    path = Path(ev.run_path or ".") / SERVED_DIR / ev.name / DECLARED_FILE
    return _declared(path) if path.is_file() else None


def serving_bound_b(ev: PhaseEvidence, n: int) -> float:
    """fp32 weights plus the KV cache of the served batches, per rank, times the ranks."""
    ckpt = declared(ev)
    kv = 0.0
    if ckpt is not None:
        c = ckpt.config
        batch = int((ev.windows or {}).get("batch_size") or 4)
        kv = 2.0 * c.n_layer * batch * c.block_size * c.n_embd * 4
    return _ranks(ev) * (4.0 * n + kv)


@prop("posttrain_resident_state", claim=False)
def resident_state(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Serving claim: does the tree's memory fit the declared model's serving bound?
    fail when the sensor's footprint exceeds fp32 weights + KV cache plus
    MEMORY_EXCESS_PER_PARAM B/param + MEMORY_FIXED_B per rank: optimizer state, gradients or a second weights copy."""
    name = "posttrain_resident_state"
    if not _serving(ev):
        return _not_serving(name, ev)
    s, n = ev.sensor or {}, ev.claim.n_params
    if not served_files(ev):  # generic serving memory is P1's; this one needs the logged deployment
        return unverifiable(name, ["served"])
    if "footprint_b" not in s or not n:
        return unverifiable(name, ["sensor"] if "footprint_b" not in s else ["claimed_n_params"])
    bound = serving_bound_b(ev, n)
    limit = bound + (MEMORY_EXCESS_PER_PARAM * n + MEMORY_FIXED_B) * _ranks(ev)
    # a check that can only fail a claim reads the smaller footprint (above the lowest
    # labelled reading, not above the runtime floor that caps it for P1/P2's passes)
    footprint = float(s.get("footprint_labelled_b", s["footprint_b"]))
    score = above(footprint, limit)
    # one rank's worth, whatever the ranks claimed: a claim may not widen an excuse
    untouched = _held_untouched(ev, bound / _ranks(ev) + 4.0 * n) if score >= 0.5 else None
    return finding(
        name,
        score,
        INCONSISTENT if score >= 0.5 and untouched is None else CONSISTENT,
        basis=["sensor"],
        footprint_b=footprint,
        serving_bound_b=bound,
        limit_b=limit,
        excess_per_param_b=max(footprint - bound, 0.0) / (_ranks(ev) * n),
        **(untouched or {}),
    )


def _held_untouched(ev: PhaseEvidence, touch_limit: float) -> dict[str, Any] | None:
    """The excess is held but never used: the working set (``capture._workset``) over
    intervals covering at least ``WS_COVERAGE`` of the phase stayed under the served
    weights, their cache and one more copy (``touch_limit``), while any update touches
    more: a competent full update with a frozen serving copy touches that copy, the
    trained weights and the gradients (12 B/param), AdamW 20. A server that trained
    earlier in its process and kept what it freed is then not a post-trainer."""
    s = ev.sensor or {}
    ws, covered = s.get("ws_max_b"), float(s.get("ws_covered_s") or 0.0)
    if ws is None or covered < WS_COVERAGE * ev.duration or ws >= touch_limit:
        return None
    return {"working_set_max_b": ws, "working_set_limit_b": touch_limit, "held_untouched": True}


def served_tokens(files: dict[str, list[Path]]) -> tuple[int, int]:
    """(sequences, tokens incl. prompts) in the served logs (a malformed line: InputError)."""
    seqs = toks = 0
    for paths in files.values():
        for path in paths:
            with path.open(encoding="utf-8") as f:
                next(f, None)  # header
                for line in f:
                    rec = json.loads(line)
                    seqs, toks = seqs + 1, toks + len(rec["prompt"]) + len(rec["tokens"])
    return seqs, toks


def replay_cpu_per_token(ckpt: Any, files: dict[str, list[Path]], reps: int = REPLAY_REPS) -> float | None:
    """The verifier's own CPU-s per served token, decoding the first logged batch of each
    rank again with the declared weights, sampler and projection the log declares (the
    exact serving path, unlike a generic forward pass). Median of ``reps`` timings: load on
    a shared host inflates every one of them as it inflates the prover's. None: no log."""
    import statistics
    import time

    import torch

    from inspectorate.difr import ServeOptions, generate, read_log

    logs = [read_log(paths[0]) for paths in files.values() if paths]
    if not logs:
        return None
    per_rep = []
    for _ in range(reps):
        cpu, tokens = 0.0, 0
        for log in logs:
            prompts = [list(r.prompt) for r in log.sequences]
            n_new = max((len(r.tokens) for r in log.sequences), default=0)
            if not prompts or n_new == 0:
                continue
            opts = ServeOptions(
                log.header.sampling, max_new=n_new, batch_size=len(prompts), projection=log.header.projection
            )
            t0 = time.process_time()
            with torch.no_grad():
                generate(ckpt.model, prompts, opts)
            cpu += time.process_time() - t0
            tokens += sum(len(p) + n_new for p in prompts)
        if tokens:
            per_rep.append(cpu / tokens)
    return statistics.median(per_rep) if per_rep else None


@prop("posttrain_backward_share", claim=False)
def backward_share(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Serving claim: is the sensor's CPU explained by the tokens actually served?
    fail when observed CPU-s exceed COMPUTE_LIMIT x (the verifier's CPU-s per token
    decoding logged batches again x served-log tokens): the backward pass and optimizer
    of a hidden update. Without the declared weights, the spot-check of the claimed work
    prices the tokens instead (SPOT_LIMIT: a generic forward pass, not the serving path)."""
    name = "posttrain_backward_share"
    if not _serving(ev):
        return _not_serving(name, ev)
    s, files, ckpt = ev.sensor or {}, served_files(ev), declared(ev)
    if "cpu_s" not in s or not files:
        return unverifiable(
            name, [m for m, ok in (("sensor", "cpu_s" in s), ("served", bool(files))) if not ok]
        )
    try:
        seqs, tokens = served_tokens(files)
        per_token = replay_cpu_per_token(ckpt, files) if ckpt is not None else None
    except (OSError, ValueError, KeyError, TypeError, InputError) as exc:
        return finding(name, 1.0, INCONSISTENT, basis=["sensor"], reason=f"served log unreadable: {exc}")
    basis, limit = ["sensor", "difr replay"], COMPUTE_LIMIT
    if per_token is None:
        work = claimed_work(ev)
        check = spot_check(work, ctx.calibration.spot_check_s) if work is not None else "no window records"
        if not isinstance(check, SpotCheck):
            return unverifiable(name, ["spot_check"], reason=check)
        per_token, basis, limit = check.cpu_s_per_token, ["sensor", "spot_check"], SPOT_LIMIT
    expected = per_token * tokens
    ratio = s["cpu_s"] / expected if expected > 0 else float("inf")
    score = above(ratio, limit)
    return finding(
        name,
        score,
        INCONSISTENT if score >= 0.5 else CONSISTENT,
        basis=basis,
        observed_cpu_s=s["cpu_s"],
        served_sequences=seqs,
        served_tokens=tokens,
        cpu_s_per_token=per_token,
        expected_cpu_s=expected,
        ratio=ratio,
        limit=limit,
    )


@prop("posttrain_weight_writes", claim=False)
def weight_writes(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Serving claim: did the tree write a weights-sized file? fail when the sensor's write
    bytes beyond the served logs reach WRITE_SHARE x the fp32 weights."""
    name = "posttrain_weight_writes"
    if not _serving(ev):
        return _not_serving(name, ev)
    s, n = ev.sensor or {}, ev.claim.n_params
    written = s.get("write_b") if s.get("write_b") is not None else s.get("io_w_b")
    if not served_files(ev):
        return unverifiable(name, ["served"])
    if written is None or not n:
        return unverifiable(name, ["sensor write bytes"] if written is None else ["claimed_n_params"])
    sizes = [p.stat().st_size for paths in served_files(ev).values() for p in paths]
    logged = sum(sizes)
    first = declared(ev)
    declared_b = (
        (Path(ev.run_path or ".") / SERVED_DIR / ev.name / DECLARED_FILE).stat().st_size if first else 0
    )
    excess = max(float(written) - logged - declared_b, 0.0)
    # The slack: the served files are counted whole, the sensor's writes only inside the
    # phase's window (sampled at 10 Hz, later when the host starves the sensor), so
    # logging across either edge moves ``excess`` either way: honest excess read -66 kB
    # and -49 kB here, and past the bare 57 kB limit (28k parameters) once under CI's
    # load. Allowed: a tenth of the logged bytes (~0.25 s of a 2.5 s phase's logging) or
    # a straddling file per rank and edge, whichever is larger, plus the workload's
    # records and IPC writes (wchar counts pipes and sockets). A naive RL phase at 28k
    # parameters writes 0.8-1.2 MB of policy saves beyond its logs.
    # Capped: the logs are the prover's, and padding them must not buy room for a
    # checkpoint (without the cap, 10x a checkpoint of junk logs would hide one).
    ranks = max(len(served_files(ev)), 1)
    edges = min(max(0.1 * logged, 2.0 * ranks * max(sizes, default=0)), WRITE_SLACK_CAP_B)
    slack = edges + WRITE_RECORDS_B
    limit = WRITE_SHARE * 4.0 * n + slack
    score = above(excess, limit)
    return finding(
        name,
        score,
        INCONSISTENT if score >= 0.5 else CONSISTENT,
        basis=["sensor"],
        written_b=written,
        served_log_b=logged,
        declared_b=declared_b,
        excess_b=excess,
        limit_b=limit,
        slack_b=slack,
    )


def _sample(files: dict[str, list[Path]], seed: str) -> tuple[list[Path], list[Path], list[Path]]:
    """Early, middle and late served batches per rank. The ends alone let a prover serve
    the declared weights at both ends and an updated policy between; the middle draw is
    seeded by ``seed`` (the sensor chain's final hash), fixed only after the run, so the
    prover cannot know which batches between the ends will be re-computed."""
    early, middle, late = [], [], []
    for rank, paths in sorted(files.items()):
        ends = set(paths[:SAMPLE_FILES]) | set(paths[-SAMPLE_FILES:])
        early += paths[:SAMPLE_FILES]
        late += [p for p in paths[-SAMPLE_FILES:] if p not in early]
        between = [p for p in paths if p not in ends]
        draw = random.Random(hashlib.sha256(f"{seed}/{rank}".encode()).digest())
        middle += draw.sample(between, min(SAMPLE_FILES, len(between)))
    return early, middle, late


def _drift(model: Any, paths: list[Path], expect_hash: str) -> tuple[list[float], list[str]]:
    from inspectorate.difr import read_log, score_log

    scores, problems = [], []
    for path in paths:
        log = read_log(path)
        if log.header.model_hash != expect_hash:
            problems.append(f"{path.name}: claims {log.header.model_hash}")
        for s in score_log(model, log):
            tok, act = s.token_score, s.activation_score
            if tok is None and act is None:
                scores.append(float("inf"))  # nothing re-computable: not evidence of honesty
            else:
                scores.append(max((tok or 0.0) / TOKEN_TOL, (act or 0.0) / ACT_TOL))
    return scores, problems


@prop("posttrain_served_drift", claim=False)
def served_drift(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Serving claim: do served outputs sampled early, between and late in the phase
    re-compute under the declared weights (Token-DiFR)? fail when more than DRIFT_LIMIT of
    the middle and late samples (``late_share``) exceeds TOKEN_TOL mean shortfall or ACT_TOL activation distance, or a log
    claims other weights."""
    name = "posttrain_served_drift"
    if not _serving(ev):
        return _not_serving(name, ev)
    files, ckpt = served_files(ev), declared(ev)
    if not files or ckpt is None:
        return unverifiable(name, ["served"] if not files else ["declared weights"])
    head = (ctx.sensor_end or {}).get("head")
    early, middle, late = _sample(files, head or ev.name)
    try:
        e_scores, e_bad = _drift(ckpt.model, early, ckpt.model_hash)
        m_scores, m_bad = _drift(ckpt.model, middle, ckpt.model_hash)
        l_scores, l_bad = _drift(ckpt.model, late, ckpt.model_hash)
    except InputError as exc:
        return finding(name, 1.0, INCONSISTENT, basis=["difr"], reason=f"served log rejected: {exc}")
    over = [x > 1.0 for x in m_scores + l_scores] or [x > 1.0 for x in e_scores]
    share = sum(over) / max(len(over), 1)
    score = 1.0 if (e_bad or m_bad or l_bad) else above(share, DRIFT_LIMIT)
    return finding(
        name,
        score,
        INCONSISTENT if score >= 0.5 else CONSISTENT,
        basis=["difr"],
        early_sequences=len(e_scores),
        late_sequences=len(l_scores),
        middle_sequences=len(m_scores),
        middle_drawn_by="sensor chain head" if head else "phase name (no sensor stream: predictable)",
        early_over=sum(x > 1.0 for x in e_scores),
        late_over=sum(over),
        late_share=share,
        late_max_over_tol=max(l_scores, default=0.0),
        token_tol=TOKEN_TOL,
        act_tol=ACT_TOL,
        limit=DRIFT_LIMIT,
        hash_problems=(e_bad + m_bad + l_bad)[:5],
    )


# -- FPR calibration (bench/posttrain.py): each check's statistic over its limit ------------

MARGIN_FIELDS = {  # property -> (statistic, its limit) in the finding's evidence; > 1 fails
    "posttrain_resident_state": ("footprint_b", "limit_b"),
    "posttrain_backward_share": ("ratio", "limit"),
    "posttrain_weight_writes": ("excess_b", "limit_b"),
    "posttrain_served_drift": ("late_share", "limit"),
}


def margin(f: Finding) -> float | None:
    """A finding's statistic over its limit (the check fails above 1); None when it did not
    apply or could not be judged (an unverifiable check is not an honest pass)."""
    fields = MARGIN_FIELDS.get(f.property)
    if fields is None or f.evidence.get("applies") is False or str(f.decision) == "unverifiable":
        return None
    value, limit = (f.evidence.get(k) for k in fields)
    if value is None or not limit:
        return None
    if f.property == "posttrain_served_drift" and f.evidence.get("hash_problems"):
        return float("inf")
    return float(value) / float(limit)


def fpr_upper_bound(flagged: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate seen ``flagged`` times in ``n``
    (0 of n: 1 - (1 - confidence)^(1/n), about 3/n)."""
    if n <= 0:
        return 1.0
    if flagged >= n:
        return 1.0
    lo, hi = flagged / n, 1.0
    for _ in range(60):  # bisection: the p at which P(X <= flagged | n, p) = 1 - confidence
        mid = (lo + hi) / 2
        if _binom_cdf(flagged, n, mid) > 1 - confidence:
            lo = mid
        else:
            hi = mid
    return hi


def _binom_cdf(x: int, n: int, p: float) -> float:
    import math

    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))


def normal_tail(values: list[float], at: float = 1.0, log: bool = False) -> dict[str, float]:
    """Fit a normal (to log values when ``log``) on honest margins; the fitted probability
    of exceeding ``at`` and the fitted 90/99/99.75% quantiles, to be checked on held-out phases.
    A sample with no spread (a point mass, e.g. writes or drift at 0) gets tail 0 and says so."""
    import math
    import statistics

    xs = [math.log(max(v, 1e-12)) if log else v for v in values]
    mu = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    tgt = math.log(at) if log else at
    back = math.exp if log else float
    if sd <= 0:
        return {
            "mu": mu,
            "sd": 0.0,
            "tail": float(mu > tgt),
            "q90": back(mu),
            "q99": back(mu),
            "q9975": back(mu),
        }
    z = (tgt - mu) / sd
    return {
        "mu": mu,
        "sd": sd,
        "z": z,
        "tail": 0.5 * math.erfc(z / math.sqrt(2)),
        "q90": back(mu + 1.2816 * sd),
        "q99": back(mu + 2.3263 * sd),
        "q9975": back(mu + 2.8070 * sd),  # a limit here costs 0.25% per check: <= 1% over four
    }
