"""The tie check: deviations judged against honest numerics per position, the covert
capacity it leaves, and the deterministic-decode declaration that closes it."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch

from inspectorate.difr import (
    CovertPlan,
    SamplingConfig,
    ServeOptions,
    calibrate,
    covert_serve,
    generate,
    load_checkpoint,
    model_hash,
    verify_log,
)
from inspectorate.difr._covert_code import CodePlan, code_decode, code_serve
from inspectorate.difr._log import LogHeader, ServingLog
from inspectorate.difr._sampling import gumbel_noise, shortfall
from inspectorate.difr._ties import (
    TieCalibration,
    accepted_patterns,
    all_costs,
    calibrate_ties,
    check_ties,
    nonce_seed,
    poisson_tail_count,
)
from inspectorate.errors import InputError

L = 24
SECRET = np.random.default_rng(7).integers(0, 2, 256).tolist()


def _opts(seed: int, batch: int = 4, order: int | None = None, projection=None) -> ServeOptions:
    return ServeOptions(SamplingConfig(0.8, 40, seed=seed), L, batch, "bfloat16", projection, order)


def _log(reference, corpus, opts, records, server=None) -> ServingLog:
    header = LogHeader(
        model_hash(reference),
        corpus.vocab.chars,
        opts.sampling,
        opts.precision,
        opts.projection,
        server or {},
    )
    return ServingLog(header, tuple(records))


def _honest(reference, corpus, prompts, opts, threads: int = 1):
    torch.set_num_threads(threads)
    try:
        gens = generate(reference, prompts, opts, keep_logits=True)
    finally:
        torch.set_num_threads(1)
    log = _log(reference, corpus, opts, [g.record for g in gens])
    return log, gens


@pytest.fixture(scope="module")
def cal(reference, corpus, prompts):
    """The mean-shortfall calibration of the same declaration (self-calibration is slow)."""
    return calibrate(reference, prompts, _opts(1234), vocab=corpus.vocab.chars)


@pytest.fixture(scope="module")
def ties(reference, corpus, prompts) -> TieCalibration:
    """Honest bf16 servers under thread / batch / composition variants and fresh seeds."""
    honest = []
    for threads, batch, order, seed in [(1, 4, None, 1), (2, 1, None, 2), (1, 8, 1, 3)]:
        log, gens = _honest(reference, corpus, prompts, _opts(seed, batch, order), threads)
        honest += [(log, g.record, g.logits) for g in gens]
    return calibrate_ties(reference, honest)


def test_all_costs_is_the_verifiers_shortfall_for_every_token():
    rng = np.random.default_rng(0)
    logits, sampling = rng.normal(size=(6, 30)), SamplingConfig(0.8, 10, 0.9, 1)
    noise = gumbel_noise(1, 0, 6, 30)
    costs = all_costs(logits, noise, sampling)
    for t in range(30):
        _, want = shortfall(logits, noise, np.full(6, t), sampling)
        assert np.allclose(costs[:, t], want)


def test_counting_helpers():
    assert accepted_patterns([2, 3], 0) == 1
    assert accepted_patterns([2, 3], 1) == 1 + 2 + 3
    assert accepted_patterns([2, 3], 2) == 1 + 5 + 6
    assert poisson_tail_count(0.0, 1e-3) == 0
    m = poisson_tail_count(2.0, 1e-3)  # P(Poisson(2) > m) <= 1e-3 < P(Poisson(2) > m - 1)
    assert m == 8


def test_honest_batched_bf16_logs_pass_under_fresh_seeds(reference, corpus, prompts, ties):
    for seed, batch, threads in [(11, 3, 1), (12, 8, 2)]:
        log, _ = _honest(reference, corpus, prompts, _opts(seed, batch, order=seed), threads)
        report = check_ties(reference, log, ties)
        assert report.refused == [] and report.deviations <= report.admission.max_deviations, report.reasons
        assert 0 <= report.capacity_bits < report.output_bits["entropy"] < report.output_bits["vocab"]


def test_the_shortfall_budget_attacker_is_refused_by_the_tie_check(
    reference, corpus, prompts, ref_ckpt, ties, cal
):
    """The attacker that passes the mean-shortfall threshold (test_difr_covert.py) spends
    it on deviations honest bf16 numerics cannot produce."""
    opts = _opts(1234)
    plan = CovertPlan.under(cal.thresholds(len(prompts)).token, L, margin=0.9, cap_fraction=1.0)
    sent = covert_serve(reference, prompts, opts, plan, SECRET)
    assert sum(len(s.bits) for s in sent) > 0
    log = _log(reference, corpus, opts, [s.record for s in sent])
    plain = verify_log(log, load_checkpoint(ref_ckpt), cal)
    assert plain.decision == "consistent"  # the global width lets it through ...
    report = verify_log(log, load_checkpoint(ref_ckpt), cal, ties=ties)
    assert report.decision == "inconsistent" and report.ties["refused"]  # ... the per-position one does not


def test_coding_attacker_within_admission_carries_at_most_the_bound(reference, corpus, prompts, ties):
    opts = _opts(1234)
    honest, _ = _honest(reference, corpus, prompts, opts)
    adm = check_ties(reference, honest, ties).admission
    for allowed in range(adm.max_deviations, -1, -1):  # tuned against the verifier it simulates
        plan = CodePlan(adm.theta, allowed, Fraction(1, 2))
        records, used = code_serve(reference, prompts, opts, ties, plan, SECRET)
        log = _log(reference, corpus, opts, records)
        report = check_ties(reference, log, ties)
        assert report.refused == []  # it deviates only where the verifier admits deviations
        bits, information = code_decode(reference, log, ties, plan)
        assert bits == SECRET[: len(bits)] and report.deviations == used
        if not report.reasons:
            break
    assert not report.reasons  # with no deviation left it is an honest log
    # what it served is one of the deviation patterns the verifier counted in its bound
    assert report.deviations <= report.admission.max_deviations and len(bits) <= information
    # the same plan with more deviations than honest numerics produce is caught
    greedy = CodePlan(adm.theta, 10 * (adm.max_deviations + 1), Fraction(1, 2))
    records, used = code_serve(reference, prompts, opts, ties, greedy, [1] * 256)
    over = check_ties(reference, _log(reference, corpus, opts, records), ties)
    assert used > over.admission.max_deviations and over.reasons


def test_deterministic_decode_leaves_no_capacity(reference, corpus, prompts, ref_ckpt, cal):
    nonce = "verifier-nonce-1"
    opts = _opts(nonce_seed(nonce), batch=1)
    ckpt = load_checkpoint(ref_ckpt)
    for threads in (1, 2):
        log, _ = _honest(reference, corpus, prompts, opts, threads)
        log = ServingLog(replace(log.header, server={"decode": "deterministic"}), log.sequences)
        report = verify_log(log, ckpt, cal, nonce=nonce)
        assert report.decision == "consistent", report.reasons
        assert report.ties["deviations"] == 0 and report.ties["capacity_bits"] == 0.0
    # one token flipped to the runner-up is refused, and a seed not from the nonce too
    first = log.sequences[0]
    costs = check_ties(reference, log, None).admission  # no calibration needed
    assert costs.max_deviations == 0
    tokens = list(first.tokens)
    tokens[5] = (tokens[5] + 1) % len(corpus.vocab)
    flipped = ServingLog(log.header, (replace(first, tokens=tuple(tokens)), *log.sequences[1:]))
    assert check_ties(reference, flipped, None).refused[0] == (0, 5)  # later ones follow from it
    assert "nonce" in " ".join(verify_log(log, ckpt, cal, nonce="another").reasons)


def test_tie_calibration_round_trip_and_bad_files(ties, tmp_path):
    path = ties.save(tmp_path / "ties.json")
    again = TieCalibration.load(path)
    x = np.array([0.0, 0.5, 2.0, 50.0])
    assert np.array_equal(again.survival(x), ties.survival(x))
    assert np.all(np.diff(ties.survival(np.linspace(0, 20, 50))) <= 0)  # a survival function
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="bad tie calibration"):
        TieCalibration.load(tmp_path / "bad.json")
