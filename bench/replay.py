"""Replay benchmark: detection of forged training claims against the number of segments
replayed (Proof-of-Learning's cost/assurance curve).

    python bench/replay.py --corpus ../shared/data/corpora/tinyshakespeare.txt [--workdir W]

Records an honest run A and a donor run B (another seed), calibrates the replay
tolerance on B (thread counts 1 and 2: the honest non-determinism a verifier's machine
adds), then judges A under other threads (false positives) and four forgeries of A
built by a competent prover that keeps every fingerprint in its claim consistent. Every
segment of every claim is replayed once; detection with ``r`` segments drawn at random is
then exact: ``1 - C(S-b, r) / C(S, r)`` for ``b`` disagreeing segments of ``S`` (1 when
the metric or a file check already fails, which costs no training).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from inspectorate.models._corpus import load_corpus
from inspectorate.models._gpt import GPTConfig
from inspectorate.replay import TrainSpec, calibrate_tolerance, record_run, replay_claim
from inspectorate.replay._attacks import checkpoint_swapped, data_substituted, metric_inflated, steps_skipped

RS = (1, 2, 3, 5, 10)


def spec_for(vocab: int, steps: int, every: int) -> TrainSpec:
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=vocab)
    return TrainSpec(
        model=cfg.to_dict(), steps=steps, batch_size=16, seq_len=64, lr=3e-3, checkpoint_every=every
    )


def detection(result, r: int) -> float:
    """P(caught) when the verifier replays r random segments (metric/file checks always run)."""
    if any("segment" not in reason for reason in result.reasons):
        return 1.0
    total, bad = result.n_segments, sum(not s.agree for s in result.segments)
    r = min(r, total)
    return 1.0 - math.comb(total - bad, r) / math.comb(total, r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=20, help="checkpoint interval (segment length)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="replay-bench-"))
    corpus = load_corpus(args.corpus)
    spec = spec_for(len(corpus.vocab), args.steps, args.every)
    t0 = time.perf_counter()
    run_a = record_run(spec, corpus, work / "A")
    run_b = record_run(replace(spec, seed=1), corpus, work / "B")
    print(
        f"two honest runs of {spec.steps} steps recorded in {time.perf_counter() - t0:.0f}s; "
        f"{len(run_a.checkpoints) - 1} segments of {spec.checkpoint_every} steps; "
        f"A's val loss {run_a.metric['value']:.4f}"
    )
    t0 = time.perf_counter()
    tol = calibrate_tolerance(run_b, corpus, threads=(1, 2))
    print(
        f"tolerance (calibrated on run B, threads 1/2, x{tol.basis['factor']:g}): weight distance {tol.weight:.3g} "
        f"(honest max {tol.basis['honest_max_distance']:.3g}), metric {tol.metric:.3g} "
        f"(honest max {tol.basis['honest_max_metric']:.3g}) in {time.perf_counter() - t0:.0f}s"
    )

    claims = {
        "honest(2 thr)": run_a,
        "metric-0.02": metric_inflated(run_a, work / "metric", delta=0.02),
        "metric-0.001": metric_inflated(run_a, work / "metric_small", delta=0.001),
        "ckpt_swap@5": checkpoint_swapped(run_a, run_b, 5, work / "swap"),
        "skip50%@6": steps_skipped(spec, corpus, work / "skip", segment=6, keep=0.5),
        "skip10%@6": steps_skipped(spec, corpus, work / "skip10", segment=6, keep=0.9),
        "data_subst": data_substituted(spec, corpus, work / "data"),
    }
    print(
        f"\n{'claim':<14}{'decision':<14}{'bad segs':>9}{'max dist':>10}  P(caught) with r random segments replayed"
    )
    print(f"{'':<14}{'':<14}{'':>9}{'':>10}  " + "".join(f"{'r=' + str(r):>8}" for r in RS))
    for name, claim in claims.items():
        threads = 2 if name.startswith("honest") else 1
        torch.set_num_threads(threads)
        result = replay_claim(claim, corpus, None, tol)
        torch.set_num_threads(1)
        bad = sum(not s.agree for s in result.segments)
        worst = max(s.distance for s in result.segments) if result.segments else float("nan")
        row = "".join(f"{detection(result, r):>8.3f}" for r in RS)
        print(f"{name:<14}{result.decision:<14}{bad:>9}{worst:>10.3g}  {row}")
    cost = [r * spec.checkpoint_every / spec.steps for r in RS]
    print(
        "replay cost (fraction of the claimed training): "
        + ", ".join(f"r={r}: {c:.0%}" for r, c in zip(RS, cost, strict=True))
    )


if __name__ == "__main__":
    main()
