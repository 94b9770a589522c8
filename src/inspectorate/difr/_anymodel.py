"""Token-DiFR for any declared family: a served log re-computed with the verifier-built
module of a handed-over weights file (``inspectorate.models.load_weights``).

The testbed path (``_verify``) knows one checkpoint format and one module. Here the log
names a weights file of any family the verifier can build (gpt, llama, mlp, rnn): every
family's module offers ``forward(idx) -> logits`` (one teacher-forced pass, what the
verifier scores with) and ``decode(idx, state)`` (incremental, what a server runs, and
what self-calibration serves with). The scoring is Token-DiFR's: under the declared
sampling seed the Gumbel noise of every position is regenerated, the reference's pick
re-derived, and each sequence's mean shortfall judged against a per-sequence threshold.

Activation-DiFR needs a layer hook into the module; the built-in families offer none
here, so it is skipped and the report says so (a log with projections is scored on its
tokens only, never passed on activations it was not checked on).

Honest non-determinism is calibrated by the verifier itself on the sampled sequences'
prompts (at most ``CAL_PROMPTS`` per length): it serves them through ``decode``
(incremental state: all prompts in one batch and ``CAL_SMALL`` one by one at 1 thread,
``CAL_SMALL`` in one batch at 2 threads) under fresh seeds and scores them with its
single-threaded teacher-forced pass, as a log; the thresholds follow
``Calibration.thresholds`` (Bonferroni over the sampled sequences, a tail fit, a floor
from the measured logit error).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch

from inspectorate.difr._calibrate import Calibration
from inspectorate.difr._log import SamplingConfig, SequenceRecord, ServingLog
from inspectorate.difr._sampling import choose, gumbel_noise, scaled
from inspectorate.difr._score import SequenceScore, token_score
from inspectorate.difr._verify import CONSISTENT, INCONSISTENT, UNVERIFIABLE, DifrReport
from inspectorate.errors import InputError

SAMPLE = 64  # sequences the verifier re-computes (its own random draw) per log
CAL_THREADS = (1, 2)  # honest thread counts the self-calibration serves at
CAL_PROMPTS = 16  # prompts (of the drawn sequences) the self-calibration re-serves per variant
CAL_SMALL = 4  # prompts served one by one, and at 2 threads
NO_HOOK = "Activation-DiFR skipped: the verifier's {family} module has no layer hook (tokens only)"


def weights_hash(weights: Any) -> str:
    """The ``model_hash`` a served log names a weights file by (``sha256:<16 hex>``)."""
    return "sha256:" + str(weights.sha256)[:16]


@torch.no_grad()
def teacher_logits(module: torch.nn.Module, record: SequenceRecord) -> np.ndarray:
    """Logits predicting each served token, ``(n, V)`` float64, from one pass over
    ``prompt + tokens[:-1]``."""
    ids = list(record.prompt) + list(record.tokens[:-1])
    logits = module(torch.tensor([ids], dtype=torch.long))
    return logits[0, len(record.prompt) - 1 :].double().numpy()


def score_record(
    module: torch.nn.Module, record: SequenceRecord, sampling: SamplingConfig, keep_costs: bool = False
) -> SequenceScore:
    """One sequence's Token-DiFR re-computation (``_score.score_sequence`` for any family)."""
    return token_score(teacher_logits(module, record), record, sampling, keep_costs)


@torch.no_grad()
def decode_serve(
    module: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    sampling: SamplingConfig,
    max_new: int,
    batch_size: int,
) -> list[tuple[SequenceRecord, np.ndarray]]:
    """Serve ``prompts`` as a server would (``decode`` with carried state, batches of
    equal-length prompts); sequence ``i`` gets index ``i``. Returns each record and the
    logits it was sampled from."""
    out: list[tuple[SequenceRecord, np.ndarray]] = []
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and len(prompts[batches[-1][0]]) == len(prompts[i]):
            batches[-1].append(i)
        else:
            batches.append([i])
    for batch in batches:
        idx = torch.tensor([list(prompts[i]) for i in batch], dtype=torch.long)
        vocab = None
        noise: list[np.ndarray] = []
        toks = np.zeros((len(batch), max_new), dtype=np.int64)
        rows = np.zeros((len(batch), max_new, 0))
        state: Any = None
        for j in range(max_new):
            last, state = cast(Any, module).decode(idx, state)
            lg = last.double().numpy()
            if vocab is None:
                vocab = lg.shape[-1]
                noise = [gumbel_noise(sampling.seed or 0, i, max_new, vocab) for i in batch]
                rows = np.zeros((len(batch), max_new, vocab))
            rows[:, j] = lg
            for b in range(len(batch)):
                g = noise[b][j : j + 1] if sampling.temperature else None
                toks[b, j] = int(choose(lg[b : b + 1], g, sampling)[0])
            idx = torch.tensor(toks[:, j : j + 1])
        for b, i in enumerate(batch):
            out.append((SequenceRecord(i, tuple(prompts[i]), tuple(int(t) for t in toks[b])), rows[b]))
    return sorted(out, key=lambda r: r[0].index)


def calibrate_any(
    module: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    sampling: SamplingConfig,
    max_new: int,
    model_hash: str,
    threads: Sequence[int] = CAL_THREADS,
) -> Calibration:
    """Honest scores of ``module`` served through ``decode`` under fresh seeds, scored
    with the verifier's single-threaded teacher-forced pass: at 1 thread every prompt in
    one batch and ``CAL_SMALL`` one by one; at more threads ``CAL_SMALL`` in one batch
    (threads cost far more than their work on a loaded host)."""
    token: list[float] = []
    err, mism, variants = 0.0, 0, []
    plan: list[tuple[int, Sequence[Sequence[int]], int]] = []
    for t in threads:
        small = prompts[:CAL_SMALL]
        plan += [(t, prompts, len(prompts)), (t, small, 1)] if t == 1 else [(t, small, len(small))]
    before = torch.get_num_threads()
    try:
        for k, (t, chosen, batch) in enumerate(plan):
            variant = SamplingConfig(sampling.temperature, sampling.top_k, sampling.top_p, 1000 + k)
            variants.append(
                {"threads": t, "batch_size": batch, "prompts": len(chosen), "sampling_seed": 1000 + k}
            )
            served_rows = _served(module, chosen, variant, max_new, batch, t)
            torch.set_num_threads(1)
            for record, served in served_rows:
                s = score_record(module, record, variant)
                token.append(s.token_score or 0.0)
                mism = max(mism, int(s.mismatch.sum()) if s.mismatch is not None else 0)
                ref = teacher_logits(module, record)
                err = max(err, float(np.abs(scaled(served, variant) - scaled(ref, variant)).max()))
    finally:
        torch.set_num_threads(before)
    return Calibration(
        model_hash=model_hash,
        precision="float32",
        max_new=max_new,
        sampling={k: v for k, v in vars(sampling).items() if k != "seed"},
        token_scores=token,
        activation_scores=None,
        logit_error_max=err,
        max_mismatches=mism,
        variants=variants,
    )


def _served(
    module: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    sampling: SamplingConfig,
    max_new: int,
    batch: int,
    threads: int,
) -> list[tuple[SequenceRecord, np.ndarray]]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return decode_serve(module, prompts, sampling, max_new, batch)
    finally:
        torch.set_num_threads(before)


def verify_weights_log(
    log: ServingLog,
    weights: Any,
    sample: int = SAMPLE,
    draw_seed: int | None = None,
    log_fpr: float = 1e-3,
) -> DifrReport:
    """Re-compute a random draw of ``sample`` sequences of ``log`` with the module of
    ``weights`` (a loaded ``inspectorate.models.Weights``) and judge them."""
    header, module = log.header, weights.module
    ref_hash = weights_hash(weights)
    reasons = []
    if header.model_hash != ref_hash:
        reasons.append(f"log claims model {header.model_hash}, the handed-over weights are {ref_hash}")
    if header.n_ids != weights.spec.vocab or (weights.vocab and header.vocab != weights.vocab):
        reasons.append("log vocabulary differs from the weights'")
        return DifrReport(INCONSISTENT, reasons, header.model_hash, ref_hash, None, [])
    if header.precision != "float32":
        raise InputError(f"any-family DiFR re-computes float32 logs; the log declares {header.precision}")
    sampling = header.sampling
    if sampling.temperature > 0 and sampling.seed is None:
        reasons.append("no sampling seed declared: the served tokens cannot be re-derived")
        return DifrReport(UNVERIFIABLE, reasons, header.model_hash, ref_hash, None, [])
    chosen = draw(len(log.sequences), sample, draw_seed)
    records = [log.sequences[i] for i in chosen]
    context = weights.spec.context
    longest = max((len(r.prompt) + len(r.tokens) for r in records), default=0)
    if context is not None and longest > context:
        # an honest sliding-window sampler writes such a log; teacher forcing through the
        # declared model cannot re-compute past its context, so nothing is decided
        reasons.append(
            f"a drawn sequence holds {longest} tokens, past the declared model's context of {context}: "
            "not re-computed (a server that slides its window must hand over sequences within the context)"
        )
        return DifrReport(UNVERIFIABLE, reasons, header.model_hash, ref_hash, None, [])
    module.eval()
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the verifier's own pass: one thread, independent of the server's
    try:
        scores = [score_record(module, r, sampling) for r in records]
    finally:
        torch.set_num_threads(before)
    flagged: list[int] = []
    th = None
    for length in sorted({len(r.tokens) for r in records}):
        group = [r for r in records if len(r.tokens) == length]
        prompts = [list(r.prompt) for r in group[:CAL_PROMPTS]]
        cal = calibrate_any(module, prompts, sampling, length, ref_hash)
        th = cal.thresholds(len(records), log_fpr)
        ids = {r.index for r in group}
        flagged += [s.index for s in scores if s.index in ids and (s.token_score or 0.0) > (th.token or 0.0)]
    if flagged:
        reasons.append(
            f"{len(flagged)} of {len(records)} re-computed sequence(s) exceed the Token-DiFR threshold"
        )
    decision = INCONSISTENT if reasons else CONSISTENT
    report = DifrReport(decision, reasons, header.model_hash, ref_hash, th, scores, sorted(flagged))
    report.calibration = "self (verifier decode path, threads 1 and 2)"
    return report


def draw(n: int, k: int, seed: int | None) -> list[int]:
    """``k`` distinct positions of ``n`` (all when ``n <= k``), the verifier's draw."""
    if n <= k:
        return list(range(n))
    rng = np.random.default_rng(seed if seed is not None else secrets.randbits(63))
    return sorted(int(i) for i in rng.choice(n, size=k, replace=False))


def any_finding(report: DifrReport, weights: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The verify finding of a report (``difr_finding``) with what binding needs: the
    weights' parameter count and description, and the activation check's absence."""
    from inspectorate.difr._finding import difr_finding

    data = difr_finding(report)
    data["evidence"].update(
        {
            "n_params": int(weights.spec.n_params()),
            "model": weights.spec.to_dict(),
            "activation_difr_skipped": NO_HOOK.format(family=weights.spec.family),
            **(extra or {}),
        }
    )
    return data
