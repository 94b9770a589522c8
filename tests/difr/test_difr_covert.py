"""An adaptive covert attacker against Token-DiFR: within the calibrated budget it passes and
its receiver reads the secret back exactly; past the budget it is flagged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inspectorate.difr import (
    CovertPlan,
    calibrate,
    covert_decode,
    covert_serve,
    load_checkpoint,
    model_hash,
    verify_log,
)
from inspectorate.difr._log import LogHeader, ServingLog
from inspectorate.difr._sampling import choose, gumbel_noise
from inspectorate.errors import InputError

SECRET = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1] * 8


@pytest.fixture(scope="module")
def bf16(reference, prompts, corpus):
    """A bf16 declaration (its wider honest noise is the budget) and its calibration."""
    from inspectorate.difr import ProjectionSpec, SamplingConfig, ServeOptions

    opts = ServeOptions(
        SamplingConfig(temperature=0.8, top_k=40, seed=1234),
        max_new=24,
        batch_size=4,
        precision="bfloat16",
        projection=ProjectionSpec(seed=77, layer=1, dim=4),
    )
    cal = calibrate(reference, prompts, opts, vocab=corpus.vocab.chars)
    return opts, cal, cal.thresholds(len(prompts))


def _log(reference, corpus, opts, sequences) -> ServingLog:
    header = LogHeader(
        model_hash(reference), corpus.vocab.chars, opts.sampling, opts.precision, opts.projection
    )
    return ServingLog(header, tuple(s.record for s in sequences))


def _gumbel_max(reference, opts, record) -> np.ndarray:
    """The token the honest sampler picks at each position of ``record`` (teacher-forced)."""
    import torch

    ids = torch.tensor([list(record.prompt) + list(record.tokens[:-1])])
    with torch.no_grad():
        logits = reference(ids)[0][0, len(record.prompt) - 1 :].double().numpy()
    noise = gumbel_noise(opts.sampling.seed, record.index, len(record.tokens), logits.shape[-1])
    return choose(logits, noise, opts.sampling)


def _deviations(reference, opts, sequences) -> int:
    """Served tokens that are not the Gumbel-max choice."""
    return sum(
        int((_gumbel_max(reference, opts, s.record) != np.array(s.record.tokens)).sum()) for s in sequences
    )


def test_within_budget_passes_and_the_receiver_decodes_exactly(reference, corpus, prompts, ref_ckpt, bf16):
    opts, cal, th = bf16
    plan = CovertPlan.under(th.token, opts.max_new, margin=0.9, cap_fraction=1.0)
    sent = covert_serve(reference, prompts, opts, plan, SECRET)
    embedded = [b for s in sent for b in s.bits]
    assert 0 < len(embedded) < len(SECRET) and embedded == SECRET[: len(embedded)]
    carriers = [(s, p) for s in sent for p in sorted(set(s.positions))]
    steered = sum(s.record.tokens[p] != _gumbel_max(reference, opts, s.record)[p] for s, p in carriers)
    assert _deviations(reference, opts, sent) == steered > 0  # only carriers are steered
    decoded = [b for s in sent for b in covert_decode(reference, s.record, opts, plan)]
    assert decoded == SECRET[: len(embedded)]
    report = verify_log(_log(reference, corpus, opts, sent), load_checkpoint(ref_ckpt), cal)
    assert report.decision == "consistent", report.reasons
    # the verifier's score is what the sender spent (its fp32 costs are the verifier's)
    scores = [s.token_score for s in report.sequences]
    assert np.allclose(scores, [s.spent / opts.max_new for s in sent], rtol=0, atol=1e-6)
    assert max(scores) <= th.token


def test_two_bits_per_carrier_round_trip(reference, prompts, bf16):
    opts, _, _ = bf16
    plan = CovertPlan(budget=2.0, cap=0.5, bits_per_carrier=2)  # generous: no verifier judges here
    sent = covert_serve(reference, prompts, opts, plan, SECRET)
    embedded = [b for s in sent for b in s.bits]
    assert embedded == SECRET[: len(embedded)] and all(s.spent <= plan.budget for s in sent)
    assert any(len(set(s.positions)) < len(s.positions) for s in sent)  # some carried 2 bits
    assert [b for s in sent for b in covert_decode(reference, s.record, opts, plan)] == embedded


def test_over_budget_is_flagged(reference, corpus, prompts, ref_ckpt, bf16):
    opts, cal, th = bf16
    plan = CovertPlan.under(th.token, opts.max_new, margin=10.0, cap_fraction=1.0)
    sent = covert_serve(reference, prompts, opts, plan, SECRET)
    report = verify_log(_log(reference, corpus, opts, sent), load_checkpoint(ref_ckpt), cal)
    assert report.decision == "inconsistent" and report.flagged_token
    over = [s.record.index for s in sent if s.spent > th.token * opts.max_new]
    assert report.flagged_token == over  # the verifier's score is the sender's own spend
    assert report.flagged_activation == []  # activations of the served tokens are honest


def test_a_token_off_the_plan_is_not_decoded(reference, prompts, bf16):
    opts, _, th = bf16
    plan = CovertPlan.under(th.token, opts.max_new, margin=0.9, cap_fraction=1.0)
    sent = covert_serve(reference, prompts, opts, plan, [1] * 64)
    first = next(s for s in sent if s.bits)
    p, tokens = first.positions[0], list(first.record.tokens)
    honest = int(_gumbel_max(reference, opts, first.record)[p])
    assert tokens[p] != honest  # bit 1: the carrier serves its deviation
    tokens[p] = next(t for t in range(3) if t not in (tokens[p], honest))
    with pytest.raises(InputError, match="not a carrier token"):
        covert_decode(reference, replace(first.record, tokens=tuple(tokens)), opts, plan)
    with pytest.raises(InputError, match="sampling seed"):
        covert_serve(reference, prompts, replace(opts, sampling=replace(opts.sampling, seed=None)), plan, [1])
