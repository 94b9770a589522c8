"""DiFR benchmark: detection of substituted served models against the number of sequences
and tokens, for Token-DiFR and Activation-DiFR, at a log-level FPR of 1e-3.

    python bench/difr.py --corpus ../shared/data/corpora/tinyshakespeare.txt [--workdir W] [--quick]

Trains (once; cached in --workdir) a reference GPT, a second seed of the same
architecture, a fine-tune of the reference and a smaller GPT; builds an int8 dynamically
quantised copy and a 10% mix. Honest non-determinism is calibrated on one prompt set
(thread counts 1/2, batch sizes 1-16, shuffled batch composition, fresh seeds, fp32 and
bf16 separately) and false positives are counted on a held-out prompt set served under
other batchings. Log-level detection for ``n`` sequences is computed exactly from the
per-sequence flags of a pool (hypergeometric), not resampled.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from inspectorate.difr import (
    HonestVariant,
    ProjectionSpec,
    SamplingConfig,
    ServeOptions,
    calibrate,
    generate,
    load_checkpoint,
    model_hash,
    save_checkpoint,
    score_log,
)
from inspectorate.difr._attacks import quantize_int8
from inspectorate.difr._log import LogHeader, ServingLog
from inspectorate.difr._serve import corpus_prompts
from inspectorate.models._corpus import load_corpus
from inspectorate.models._gpt import GPTConfig
from inspectorate.replay import TrainSpec, quick_train
from inspectorate.replay._train import evaluate

NS = (1, 2, 4, 8, 16, 32, 64)
LS = (2, 4, 8, 16, 32, 64, 128)
LOG_FPR = 1e-3
MIX_FRACTION = 0.1


def specs(vocab: int, steps: int, block: int) -> dict[str, TrainSpec]:
    big = GPTConfig(n_layer=3, n_head=4, n_embd=96, block_size=block, vocab_size=vocab).to_dict()
    small = GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=block, vocab_size=vocab).to_dict()
    base = TrainSpec(model=big, steps=steps, batch_size=16, seq_len=block - 16, lr=3e-3, seed=0)
    return {
        "reference": base,
        "other_seed": replace(base, seed=1),
        "smaller": replace(base, model=small, seed=2),
        "finetune": replace(
            base, steps=max(steps // 8, 10), lr=3e-4, warmup_steps=2, split="finetune", seed=3
        ),
    }


def build_models(corpus, workdir: Path, steps: int, block: int) -> dict[str, torch.nn.Module]:
    out: dict[str, torch.nn.Module] = {}
    for name, spec in specs(len(corpus.vocab), steps, block).items():
        path = workdir / f"{name}-{steps}.pt"
        if not path.exists():
            t0 = time.perf_counter()
            start = out["reference"] if name == "finetune" else None
            start = load_checkpoint(workdir / f"reference-{steps}.pt").model if start is not None else None
            model = quick_train(corpus.split(spec.split), spec, model=start)
            save_checkpoint(path, model, corpus.vocab.chars, {"spec": spec.to_dict()})
            print(f"  trained {name} in {time.perf_counter() - t0:.0f}s")
        out[name] = load_checkpoint(path).model
        loss = evaluate(out[name], corpus.split("val"), specs(len(corpus.vocab), steps, block)["reference"])
        print(f"  {name:<11} {out[name].n_params():>8,} params  val loss {loss:.3f}  {model_hash(out[name])}")
    out["int8"] = quantize_int8(out["reference"])
    return out


def scores_for(model, ref, prompts, opts, vocab):
    """Serve with ``model``, re-compute with ``ref``: per-sequence scores (per-token arrays)."""
    records = [g.record for g in generate(model, prompts, opts)]
    header = LogHeader(model_hash(ref), vocab, opts.sampling, opts.precision, opts.projection)
    return score_log(ref, ServingLog(header, tuple(records)))


def cut(cal, honest, length: int):
    """The calibration as if every sequence had been ``length`` tokens long."""
    return replace(
        cal,
        max_new=length,
        token_scores=[float(s.shortfall[:length].mean()) for s in honest],
        activation_scores=[float(s.act_distance[:length].mean()) for s in honest],
        max_mismatches=max(int(s.mismatch[:length].sum()) for s in honest),
    )


def flags(pool, th, length: int, kind: str) -> np.ndarray:
    if kind == "token":
        return np.array([s.shortfall[:length].mean() > th.token for s in pool])
    return np.array([s.act_distance[:length].mean() > th.activation for s in pool])


def p_miss(pool_flags: np.ndarray, n: int) -> float:
    """P(no flagged sequence among n drawn without replacement)."""
    total, bad = len(pool_flags), int(pool_flags.sum())
    if n > total:
        return 0.0 if bad else 1.0
    return math.comb(total - bad, n) / math.comb(total, n)


def detection(attack, honest_test, cal, honest, n: int, length: int, kind: str, mix: bool) -> float:
    th = cut(cal, honest, length).thresholds(n, LOG_FPR)
    if not mix:
        return 1.0 - p_miss(flags(attack, th, length, kind), n)
    k = max(1, round(MIX_FRACTION * n))
    miss = p_miss(flags(attack, th, length, kind), k) * p_miss(flags(honest_test, th, length, kind), n - k)
    return 1.0 - miss


def calibrate_precision(ref, prompts, opts, vocab, precision: str):
    collected: list = []
    variants = [
        HonestVariant(1, 16, None, 1000),
        HonestVariant(2, 4, 1, 1001),
        HonestVariant(1, 1, None, 1002),
        HonestVariant(2, 16, 2, 1003),
    ]
    t0 = time.perf_counter()
    cal = calibrate(ref, prompts, replace(opts, precision=precision), variants, vocab, collect=collected)
    print(f"  {precision}: {len(collected)} honest sequences in {time.perf_counter() - t0:.0f}s")
    return cal, collected


def report_calibration(name, cal, honest, held_out, n_tokens):
    th = cut(cal, honest, n_tokens).thresholds(64, LOG_FPR)
    exact = 1 - np.mean([s.mismatch.mean() for s in honest])
    fp_t, fp_a = flags(held_out, th, n_tokens, "token"), flags(held_out, th, n_tokens, "activation")
    covert = cal.covert_bits(th)
    print(
        f"  {name}: honest exact-match {exact:.5f}, max |logit err| {cal.logit_error_max:.2e}, "
        f"token thr {th.token:.3g}, act thr {th.activation:.3g} (n=64, L={n_tokens})"
    )
    print(
        f"    held-out honest sequences over threshold: token {fp_t.sum()}/{len(fp_t)}, "
        f"activation {fp_a.sum()}/{len(fp_a)}; covert bound {covert.get('max_bits', 0):.2f} bits/seq max, "
        f"{covert.get('median_bits', 0):.2f} median"
    )
    return {
        "exact": exact,
        "fp_token": int(fp_t.sum()),
        "fp_act": int(fp_a.sum()),
        "covert": covert,
        "th": th,
    }


def table(attacks, honest_test, cal, honest, kind: str, n_tokens: int) -> dict:
    print(f"\n  {kind}-DiFR, detection (TPR) at log FPR {LOG_FPR:g}: by sequences n (L={n_tokens})")
    print("    " + f"{'attack':<12}" + "".join(f"{n:>7}" for n in NS))
    results = {}
    for name, pool in attacks.items():
        row = [detection(pool, honest_test, cal, honest, n, n_tokens, kind, name == "mix10%") for n in NS]
        results[name] = {"by_n": row}
        print("    " + f"{name:<12}" + "".join(f"{v:>7.3f}" for v in row))
    print(f"  {kind}-DiFR: by tokens per sequence L (n=64)")
    print("    " + f"{'attack':<12}" + "".join(f"{L:>7}" for L in LS))
    for name, pool in attacks.items():
        row = [
            detection(pool, honest_test, cal, honest, 64, L, kind, name == "mix10%")
            for L in LS
            if L <= n_tokens
        ]
        results[name]["by_L"] = row
        print("    " + f"{name:<12}" + "".join(f"{v:>7.3f}" for v in row))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=None, help="model cache (default: a new temp dir)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--pool", type=int, default=128, help="sequences per attack / per honest variant")
    ap.add_argument("--max-new", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="difr-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(args.corpus)
    block = 16 + args.max_new
    print(f"models (cache {workdir}):")
    models = build_models(corpus, workdir, args.steps, block)
    ref, vocab = models["reference"], corpus.vocab.chars
    proj = ProjectionSpec(seed=20251126, layer=1, dim=8)
    opts = ServeOptions(SamplingConfig(0.8, 40, None, 1234), args.max_new, 16, "float32", proj)
    cal_prompts = corpus_prompts(corpus.split("val"), args.pool, 16, seed=1)
    test_prompts = corpus_prompts(corpus.split("val"), args.pool, 16, seed=2)

    print("\ncalibration (honest re-runs of the reference):")
    cal32, honest32 = calibrate_precision(ref, cal_prompts, opts, vocab, "float32")
    cal16, honest16 = calibrate_precision(ref, cal_prompts, opts, vocab, "bfloat16")
    held = {}
    for prec in ("float32", "bfloat16"):
        o = replace(
            opts, precision=prec, batch_size=3, order_seed=9, sampling=replace(opts.sampling, seed=77)
        )
        held[prec] = scores_for(ref, ref, test_prompts, o, vocab)
    figures = {
        "float32": report_calibration("fp32", cal32, honest32, held["float32"], args.max_new),
        "bfloat16": report_calibration("bf16", cal16, honest16, held["bfloat16"], args.max_new),
    }

    print("\nattacks (served in fp32, claiming the reference's hash):")
    attack_opts = replace(opts, sampling=replace(opts.sampling, seed=77))
    attacks = {
        name: scores_for(models[name], ref, test_prompts, attack_opts, vocab)
        for name in ("other_seed", "finetune", "int8", "smaller")
    }
    attacks["mix10%"] = attacks["other_seed"]
    for name, pool in attacks.items():
        if name != "mix10%":
            print(f"  {name:<11} exact-match {1 - np.mean([s.mismatch.mean() for s in pool]):.3f}")
    for kind in ("token", "activation"):
        print("\n== fp32-declared serving ==" if kind == "token" else "")
        figures[f"fp32_{kind}"] = table(attacks, held["float32"], cal32, honest32, kind, args.max_new)
    print("\n== the same attacks judged against bf16-declared thresholds (a server that declares bf16) ==")
    for kind in ("token", "activation"):
        figures[f"bf16_{kind}"] = table(attacks, held["bfloat16"], cal16, honest16, kind, args.max_new)

    print("\nActivation-DiFR payload:")
    print(
        f"  {proj.dim} float32 per generated token = {4 * proj.dim} bytes/token binary, "
        f"{4 * proj.dim * args.max_new} bytes per {args.max_new}-token sequence; "
        f"{json_bytes_per_token(ref, test_prompts[:4], opts, vocab):.0f} bytes/token as log JSON"
    )
    summary(figures)
    if args.json:
        args.json.write_text(json.dumps(_plain(figures), indent=2))


def json_bytes_per_token(ref, prompts, opts, vocab) -> float:
    records = [g.record for g in generate(ref, prompts, opts)]
    bare = sum(len(json.dumps(replace(r, projections=None).to_dict())) for r in records)
    full = sum(len(json.dumps(r.to_dict())) for r in records)
    return (full - bare) / sum(len(r.tokens) for r in records)


def summary(figures: dict) -> None:
    print(
        "\ngoal: TPR >= 0.99 at log FPR <= 1e-3 with <= 64 sequences of 128 tokens, every attack, both variants"
    )
    for key in ("fp32_token", "fp32_activation", "bf16_token", "bf16_activation"):
        rows = figures[key]
        need = {
            a: next((n for n, v in zip(NS, r["by_n"], strict=True) if v >= 0.99), None)
            for a, r in rows.items()
        }
        met = all(v is not None for v in need.values())
        print(
            f"  {key:<16} {'MET' if met else 'NOT MET'}  sequences needed: "
            + ", ".join(f"{a}={n or '>64'}" for a, n in need.items())
        )


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


if __name__ == "__main__":
    main()
