"""The covert-channel bound, attacked: an adaptive sender that spends Token-DiFR's
per-sequence threshold on steered tokens, against fp32 and bf16 declarations.

    python bench/difr_covert.py --corpus ../shared/data/corpora/tinyshakespeare.txt [--workdir W]

Uses bench/difr.py's reference model (cached in --workdir under the same name), its
calibration (same prompts, honest variants and sampling; cached here as JSON) and its
held-out prompt set. The verifier judges logs of 64 sequences at log FPR 1e-3; the
attacker knows that threshold. For each declared precision and each attacker plan
(budget = margin x threshold x L, per-position cap = a fraction of the budget, b
bits per carrier) it serves
the held-out prompts embedding a uniformly random secret, lets the verifier score them
(Token- and Activation-DiFR) and the colluding receiver decode them, and prints bits
embedded per sequence, sequences flagged, the chance a 64-sequence log is caught, and
the calibrated bound (``Calibration.covert_bits``) it is compared with.

Then the defences of ``difr/_ties.py``, as capacity in bits and as a fraction of the
output bits (``log2(V)`` per token, and the honest sampler's entropy): the tie check on
a batched declaration (its honest false positives over held-out logs under several
seeds; the shortfall-budget attacker's logs run through it; the arithmetic-coding sender
that deviates only where the verifier admits it, tuned against the verifier it
simulates), and the deterministic-decode declaration (batch-1 decode, the seed derived
from the verifier's nonce: honest logs at 1 and 2 threads; both attackers), and
batch-logged decoding (``difr/_batchlog.py``: honest batched logs at 1 and 2 threads under
a fixed and a free schedule, both senders, the schedule grinder; ``--batch-logged-only``
runs just that). The box's
load average is printed: timings are from a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from difr import LOG_FPR, calibrate_precision, p_miss, specs
from inspectorate.difr import (
    Calibration,
    CovertPlan,
    HonestVariant,
    ProjectionSpec,
    SamplingConfig,
    ServeOptions,
    covert_decode,
    covert_serve,
    generate,
    load_checkpoint,
    model_hash,
    save_checkpoint,
    score_log,
)
from inspectorate.difr._batchlog import generate_logged, logged_header, schedule_capacity_bits
from inspectorate.difr._covert_code import CodePlan, code_decode, code_serve
from inspectorate.difr._covert_schedule import Candidate, carried_bits, grind
from inspectorate.difr._log import LogHeader, ServingLog
from inspectorate.difr._serve import corpus_prompts
from inspectorate.difr._ties import TieCalibration, check_ties, nonce_seed, serve_and_calibrate_ties
from inspectorate.models._corpus import load_corpus
from inspectorate.replay import quick_train

N_LOG = 64
WITHIN = [(0.9, f) for f in (1.0, 0.5, 0.25, 0.125, 0.0625)]
OVER = (1.5, 3.0)


def reference_model(corpus, workdir: Path, steps: int, block: int) -> torch.nn.Module:
    spec = specs(len(corpus.vocab), steps, block)["reference"]
    path = workdir / f"reference-{steps}.pt"  # bench/difr.py's cache name
    if not path.exists():
        t0 = time.perf_counter()
        save_checkpoint(
            path, quick_train(corpus.split(spec.split), spec), corpus.vocab.chars, {"spec": spec.to_dict()}
        )
        print(f"  trained the reference in {time.perf_counter() - t0:.0f}s")
    return load_checkpoint(path).model


def calibration(ref, prompts, opts, vocab, precision: str, cache: Path) -> Calibration:
    if cache.exists():
        return Calibration.load(cache)
    cal, _ = calibrate_precision(ref, prompts, opts, vocab, precision)
    cal.save(cache)
    return cal


def attack(ref, prompts, opts, vocab, plan: CovertPlan, th, secret: list[int], decode: bool) -> dict:
    """Serve with the plan; the verifier's flags and the receiver's decoding."""
    t0 = time.perf_counter()
    sent = covert_serve(ref, prompts, opts, plan, secret)
    header = LogHeader(model_hash(ref), vocab, opts.sampling, opts.precision, opts.projection)
    scores = score_log(ref, ServingLog(header, tuple(s.record for s in sent)))
    flag_t = np.array([s.token_score > th.token for s in scores])
    flag_a = np.array([s.activation_score > th.activation for s in scores])
    bits = np.array([len(s.bits) for s in sent])
    exact = [covert_decode(ref, s.record, opts, plan) == s.bits for s in sent] if decode else []
    embedded = [b for s in sent for b in s.bits]
    assert embedded == secret[: len(embedded)]  # the sender embeds the secret in order
    unflagged = bits[~(flag_t | flag_a)]
    return {
        "budget": plan.budget,
        "cap": plan.cap,
        "bits_mean": float(bits.mean()),
        "bits_median": float(np.median(bits)),
        "bits_max": int(bits.max()),
        "bits_unflagged_mean": float(unflagged.mean()) if unflagged.size else 0.0,
        "steered_tokens_mean": float(np.mean([steered(s) for s in sent])),
        "flagged_token": int(flag_t.sum()),
        "flagged_activation": int(flag_a.sum()),
        "p_caught_64": 1.0 - p_miss(flag_t | flag_a, N_LOG),
        "decoded_exactly": (int(sum(exact)), len(exact)),
        "max_score_over_threshold": float(max(s.token_score for s in scores) / th.token),
        "seconds": time.perf_counter() - t0,
    }


def steered(sequence) -> int:
    """Positions whose served token is not the Gumbel-max one (a carrier whose bits are not all 0)."""
    hot = {p for p, b in zip(sequence.positions, sequence.bits, strict=True) if b}
    return len(hot)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=None, help="model and calibration cache")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--pool", type=int, default=128)
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--old-plans", choices=("all", "best"), default="all", help="shortfall-budget plans")
    ap.add_argument("--seeds", type=int, default=4, help="held-out honest logs per defence")
    ap.add_argument("--rates", default="1/2,1/8", help="the coding sender's deviation rates")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--batch-logged-only",
        action="store_true",
        help="only the batch-logged declaration (needs the cached calibration for the shortfall sender's budget)",
    )
    args = ap.parse_args()
    rates = [Fraction(r) for r in args.rates.split(",")]
    torch.set_num_threads(1)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="difr-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args.corpus)
    vocab, L = corpus.vocab.chars, args.max_new
    ref = reference_model(corpus, workdir, args.steps, 16 + L)
    proj = ProjectionSpec(seed=20251126, layer=1, dim=8)
    opts = ServeOptions(SamplingConfig(0.8, 40, None, 1234), L, 16, "float32", proj)
    cal_prompts = corpus_prompts(corpus.split("val"), args.pool, 16, seed=1)
    test_prompts = corpus_prompts(corpus.split("val"), args.pool, 16, seed=2)
    secret = np.random.default_rng(20260101).integers(0, 2, args.pool * L).tolist()
    figures: dict = {}
    for prec in args.precisions.split(","):
        cache = workdir / f"cal-{prec}-{args.steps}-{args.pool}-{L}.json"
        cal = calibration(ref, cal_prompts, opts, vocab, prec, cache)
        th = cal.thresholds(N_LOG, LOG_FPR)
        bound = cal.covert_bits(th)
        o = replace(opts, precision=prec, sampling=replace(opts.sampling, seed=77))
        if args.batch_logged_only:
            plan = CovertPlan.under(float(th.token or 0.0), L, 0.99, 1.0, 1)
            figures[prec] = {
                "batch_logged": batch_logged(ref, test_prompts, o, vocab, plan, secret, args.seeds)
            }
            continue
        print(
            f"\n== {prec} declared: token threshold {th.token:.3g} (budget {th.token * L:.3g} per {L}-token "
            f"sequence), activation {th.activation:.3g}; calibrated bound {bound.get('max_bits', 0):.1f} bits max, "
            f"{bound.get('median_bits', 0):.1f} median =="
        )
        print(
            f"  {'margin':>6} {'cap/B':>6} {'b':>2} {'bits/seq mean':>13} {'median':>6} {'max':>4} {'steered':>7} "
            f"{'flag tok':>8} {'flag act':>8} {'P(caught,n=64)':>14} {'decoded':>8} {'max score/thr':>13}"
        )
        within = WITHIN if args.old_plans == "all" else []
        rows = [run_row(ref, test_prompts, o, vocab, th, secret, L, m, f, 1, True) for m, f in within]
        frac = max(rows, key=lambda r: r["bits_unflagged_mean"])["cap_fraction"] if rows else 1.0
        if args.old_plans == "all":
            rows.append(run_row(ref, test_prompts, o, vocab, th, secret, L, 0.9, frac, 2, True))
        width = max(rows, key=lambda r: r["bits_unflagged_mean"])["bits_per_carrier"] if rows else 1
        rows.append(run_row(ref, test_prompts, o, vocab, th, secret, L, 0.99, frac, width, True))
        for margin in OVER if args.old_plans == "all" else ():
            rows.append(run_row(ref, test_prompts, o, vocab, th, secret, L, margin, frac, width, False))
        figures[prec] = {"threshold": th.token, "budget": th.token * L, "bound": bound, "attacks": rows}
        ties = tie_calibration(
            ref, cal_prompts, o, vocab, workdir / f"ties-{prec}-{args.steps}-{args.pool}-{L}.json"
        )
        old_plan = CovertPlan.under(float(th.token or 0.0), L, 0.99, frac, width)
        figures[prec]["ties"] = defences(
            ref, test_prompts, o, vocab, ties, old_plan, secret, args.seeds, rates
        )
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def tie_calibration(ref, prompts, opts, vocab, cache: Path) -> TieCalibration:
    """Honest servers (1 thread batch 16; 2 threads batch 4 shuffled; fresh seeds)."""
    if cache.exists():
        return TieCalibration.load(cache)
    t0 = time.perf_counter()
    variants = [HonestVariant(1, 16, None, 2001), HonestVariant(2, 4, 1, 2002)]
    ties = serve_and_calibrate_ties(ref, prompts, opts, variants, vocab)
    ties.meta = {"sequences": len(prompts) * len(variants), "seconds": time.perf_counter() - t0}
    print(
        f"  tie calibration: {len(prompts) * len(variants)} honest sequences, {ties.n} (position, rival) pairs, "
        f"{ties.flips} honest flips vs the declared-precision re-computation, {time.perf_counter() - t0:.0f}s"
    )
    ties.save(cache)
    return ties


def as_log(ref, opts, vocab, records, server=None) -> ServingLog:
    header = LogHeader(model_hash(ref), vocab, opts.sampling, opts.precision, opts.projection, server or {})
    return ServingLog(header, tuple(records))


def capacity_line(name: str, rep) -> dict:
    d = rep.to_dict()
    fv, fe = d["capacity_fraction"]["vocab"], d["capacity_fraction"]["entropy"]
    print(
        f"  {name:<44} deviations {rep.deviations:>3} (allowed {rep.admission.max_deviations}, honest "
        f"expected {rep.admission.expected_flips:.3f}) refused {len(rep.refused):>3} flagged {'yes' if rep.reasons else 'no':>3} "
        f"| bound {rep.capacity_bits:6.2f} bits/log = {100 * fv:.5f}% of vocab bits, {100 * fe:.5f}% of entropy",
        flush=True,
    )
    return d


def defences(ref, prompts, opts, vocab, ties, old_plan, secret, seeds: int, rates: list[Fraction]) -> dict:
    """Tie check (batched declaration) and deterministic decode: honest FPR, capacity, attackers."""
    n = min(N_LOG, len(prompts))
    log_prompts = prompts[:n]
    out: dict = {"honest_batched": [], "honest_deterministic": []}
    print(f"  -- tie check, batched {opts.precision} declaration (logs of {n} x {opts.max_new} tokens) --")
    for k in range(seeds):
        o = replace(opts, batch_size=(16, 4, 8, 2)[k % 4], order_seed=k, projection=None)
        o = replace(o, sampling=replace(o.sampling, seed=3000 + k))
        torch.set_num_threads(1 + k % 2)
        log = as_log(ref, o, vocab, [g.record for g in generate(ref, log_prompts, o)])
        torch.set_num_threads(1)
        out["honest_batched"].append(
            capacity_line(
                f"honest, seed {3000 + k}, {1 + k % 2} thr, batch {o.batch_size}", check_ties(ref, log, ties)
            )
        )
    o = replace(opts, projection=None)
    sent = covert_serve(ref, log_prompts, o, old_plan, secret)
    rep = check_ties(ref, as_log(ref, o, vocab, [s.record for s in sent]), ties)
    out["shortfall_attacker"] = capacity_line(
        f"shortfall-budget attacker ({sum(len(s.bits) for s in sent)} bits)", rep
    )
    out["coding_attacker"] = [coding_attack(ref, log_prompts, o, vocab, ties, secret, rate) for rate in rates]
    print("  -- deterministic decode declared (batch 1, seed from the verifier's nonce) --")
    for k in range(seeds):
        nonce = f"bench-nonce-{k}"
        od = replace(
            opts, batch_size=1, projection=None, sampling=replace(opts.sampling, seed=nonce_seed(nonce))
        )
        torch.set_num_threads(1 + k % 2)
        log = as_log(
            ref, od, vocab, [g.record for g in generate(ref, log_prompts, od)], {"decode": "deterministic"}
        )
        torch.set_num_threads(1)
        out["honest_deterministic"].append(
            capacity_line(f"honest, nonce {k}, {1 + k % 2} thr", check_ties(ref, log, None))
        )
    od = replace(o, sampling=replace(o.sampling, seed=nonce_seed("bench-nonce-0")))
    sent = covert_serve(ref, log_prompts, od, old_plan, secret)
    log = as_log(ref, od, vocab, [s.record for s in sent], {"decode": "deterministic"})
    out["deterministic_shortfall_attacker"] = capacity_line(
        f"shortfall-budget attacker ({sum(len(s.bits) for s in sent)} bits)", check_ties(ref, log, None)
    )
    print("  coding attacker: no (position, token) is admitted under a deterministic replay: 0 carriers")
    return out


def batch_logged(ref, prompts, opts, vocab, old_plan, secret, seeds: int) -> dict:
    """Batch-logged decoding (``difr/_batchlog.py``): honest servers at 1 and 2 threads under
    fixed and free schedules, the shortfall-budget and coding senders, the schedule grinder."""
    n = min(N_LOG, len(prompts))
    log_prompts = prompts[:n]
    out: dict = {"honest": []}
    print(f"  -- batch-logged {opts.precision} declaration (logs of {n} x {opts.max_new} tokens) --")
    for k in range(seeds):
        batch, threads = (16, 4)[k % 2], 1 + k % 2
        o = replace(opts, batch_size=batch, projection=None)
        o = replace(o, sampling=replace(o.sampling, seed=nonce_seed(f"bench-nonce-{k}")))
        t0 = time.perf_counter()
        gens, plan = generate_logged(ref, log_prompts, o, threads)
        log = ServingLog(logged_header(ref, o, vocab, threads, plan), tuple(g.record for g in gens))
        name = f"honest, nonce {k}, {threads} thr, max batch {batch}"
        fixed = capacity_line(name + ", fixed", check_ties(ref, log, None, schedule=(batch, threads)))
        free = check_ties(ref, log, None)
        out["honest"].append({"fixed": fixed, "free": capacity_line(name + ", free", free)})
        print(f"    [{time.perf_counter() - t0:.0f}s]", flush=True)
        if k == 0:
            honest, honest_opts = log, o
    sent = covert_serve(ref, log_prompts, honest_opts, old_plan, secret)
    lie = ServingLog(honest.header, tuple(s.record for s in sent))
    out["shortfall_attacker"] = capacity_line(
        f"shortfall-budget attacker ({sum(len(s.bits) for s in sent)} bits)",
        check_ties(ref, lie, None, schedule=(16, 1)),
    )
    adm = check_ties(ref, honest, None, schedule=(16, 1)).admission
    print(
        f"  coding attacker: the honest log admits {adm.max_deviations} deviations (theta {adm.theta}): 0 carriers"
    )
    t0 = time.perf_counter()
    cands = [Candidate(16, 1), Candidate(4, 1), Candidate(32, 1), Candidate(16, 2), Candidate(16, 1, 1)]
    outcomes = grind(ref, log_prompts, honest_opts, vocab, cands, fixed=(16, 1))
    rows = []
    for o in outcomes:
        c = o.candidate
        same = o.tokens == outcomes[0].tokens
        rows.append({**asdict(c), "same_tokens_as_canonical": same, **asdict(o, dict_factory=_no_tokens)})
        print(
            f"    grind max batch {c.max_batch:>2} thr {c.threads} order {c.order_seed}: tokens "
            f"{'=' if same else '!='} canonical; passes fixed (truthful / as canonical) "
            f"{o.truthful_passes} / {o.canonical_lie_passes}, free {o.truthful_passes_free} / "
            f"{o.canonical_lie_passes_free}"
        )
    out["grinder"] = {
        "candidates": rows,
        "carried_bits_fixed": carried_bits(outcomes),
        "carried_bits_free": carried_bits(outcomes, free=True),
        "counted_bits_free": schedule_capacity_bits(n, None),
        "seconds": time.perf_counter() - t0,
    }
    g = out["grinder"]
    print(
        f"  schedule grinder ({len(cands)} candidates): carries {g['carried_bits_fixed']:.2f} bits under the fixed "
        f"schedule, {g['carried_bits_free']:.2f} left free (counted bound {g['counted_bits_free']:.2f}) "
        f"[{g['seconds']:.0f}s]",
        flush=True,
    )
    return out


def _no_tokens(items) -> dict:
    return {k: v for k, v in items if k not in ("tokens", "candidate")}


def coding_attack(ref, prompts, opts, vocab, ties, secret, rate: Fraction) -> dict:
    """The arithmetic-coding sender, tuned against the verifier it simulates: it starts from
    the honest log's admission and gives up deviations until its own log passes."""
    t0 = time.perf_counter()
    honest = as_log(ref, opts, vocab, [g.record for g in generate(ref, prompts, replace(opts, batch_size=1))])
    adm = check_ties(ref, honest, ties).admission
    tries = []
    for allowed in range(adm.max_deviations, -1, -1):
        if not math.isfinite(adm.theta):
            break
        plan = CodePlan(adm.theta, allowed, rate)
        records, used = code_serve(ref, prompts, opts, ties, plan, secret)
        log = as_log(ref, opts, vocab, records)
        rep = check_ties(ref, log, ties)
        bits, info = code_decode(ref, log, ties, plan)
        assert bits == secret[: len(bits)]
        tries.append(
            {
                "max_deviations": allowed,
                "used": used,
                "flagged": bool(rep.reasons),
                "information_bits": info,
                "exact_bits": len(bits),
            }
        )
        if not rep.reasons:
            break
    passed = [t for t in tries if not t["flagged"]]
    best = passed[0] if passed else {"information_bits": 0.0, "exact_bits": 0, "used": 0}
    ob = rep.output_bits if tries else check_ties(ref, honest, ties).output_bits
    info = best["information_bits"]
    print(
        f"  {'coding attacker, rate ' + str(rate):<44} tries {len(tries)} (flagged {sum(t['flagged'] for t in tries)}), "
        f"unflagged: {best['used']} deviations carrying {info:.2f} bits ({best['exact_bits']} read back exactly) "
        f"= {100 * info / ob['vocab']:.5f}% of vocab bits, {100 * info / ob['entropy']:.5f}% of entropy "
        f"[{time.perf_counter() - t0:.0f}s]",
        flush=True,
    )
    return {"rate": str(rate), "tries": tries, "best": best, "output_bits": ob}


def run_row(
    ref, prompts, opts, vocab, th, secret, L, margin: float, frac: float, width: int, decode: bool
) -> dict:
    plan = CovertPlan.under(th.token, L, margin, frac, width)
    row = attack(ref, prompts, opts, vocab, plan, th, secret, decode)
    row.update(margin=margin, cap_fraction=frac, bits_per_carrier=width)
    ok, total = row["decoded_exactly"]
    print(
        f"  {margin:>6.2f} {frac:>6.3g} {width:>2} {row['bits_mean']:>13.2f} {row['bits_median']:>6.1f} {row['bits_max']:>4} "
        f"{row['steered_tokens_mean']:>7.2f} {row['flagged_token']:>4}/{len(prompts):<3} "
        f"{row['flagged_activation']:>4}/{len(prompts):<3} {row['p_caught_64']:>14.3f} "
        f"{(f'{ok}/{total}' if total else '-'):>8} {row['max_score_over_threshold']:>13.3f}",
        flush=True,
    )
    return row


if __name__ == "__main__":
    main()
