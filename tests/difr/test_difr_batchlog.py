"""Batch-logged decoding: a batched bf16 server whose canonical schedule the verifier
replays exactly (0 covert bits), and the senders that try to use it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from inspectorate.difr import CovertPlan, SamplingConfig, ServeOptions, covert_serve
from inspectorate.difr._batchlog import (
    MAX_THREADS,
    canonical_schedule,
    generate_logged,
    logged_header,
    read_schedule,
    replay_logged,
)
from inspectorate.difr._covert_schedule import Candidate, carried_bits, grind, schedule_decode
from inspectorate.difr._log import ServingLog, read_log
from inspectorate.difr._ties import check_ties, nonce_seed
from inspectorate.difr._verify import _request_reasons
from inspectorate.errors import InputError

L = 24
NONCE = "verifier-nonce-7"


def _opts(batch: int = 4, precision: str = "bfloat16") -> ServeOptions:
    return ServeOptions(SamplingConfig(0.8, 40, seed=nonce_seed(NONCE)), L, batch, precision)


def _logged(reference, corpus, prompts, batch: int = 4, threads: int = 1):
    opts = _opts(batch)
    gens, plan = generate_logged(reference, prompts, opts, threads, keep_logits=True)
    log = ServingLog(
        logged_header(reference, opts, corpus.vocab.chars, threads, plan), tuple(g.record for g in gens)
    )
    return log, gens


def test_canonical_schedule_is_fifo_and_closes_on_a_new_prompt_length():
    got = canonical_schedule([8, 8, 8, 5, 5, 8], 2, 3)
    assert [b.seqs for b in got] == [(0, 1), (2,), (3, 4), (5,)]
    assert [b.prefill for b in got] == [8, 8, 5, 8] and {b.steps for b in got} == {3}
    with pytest.raises(InputError):
        canonical_schedule([8], 0, 3)


@pytest.mark.parametrize(("batch", "threads", "n"), [(4, 1, 8), (2, 2, 3)])
def test_the_replay_is_bit_identical_to_the_batched_bf16_server(
    reference, corpus, prompts, batch, threads, n
):
    prompts = prompts[:n]  # 2 threads on a loaded 2-core box is slow: fewer sequences
    log, gens = _logged(reference, corpus, prompts, batch, threads)
    replayed = replay_logged(reference, log)
    for i, g in enumerate(gens):
        assert np.array_equal(replayed[i], g.logits)  # bit for bit, not within a tolerance
    report = check_ties(reference, log, None, schedule=(batch, threads))
    assert report.decode == "batch-logged" and report.reasons == []
    assert report.deviations == 0 and report.capacity_bits == 0.0 and report.admission.max_deviations == 0
    assert report.output_bits["vocab"] == len(prompts) * L * np.log2(len(corpus.vocab))


def test_a_flipped_token_and_the_shortfall_budget_sender_are_refused(reference, corpus, prompts):
    log, _ = _logged(reference, corpus, prompts)
    first = log.sequences[1]
    tokens = list(first.tokens)
    tokens[6] = (tokens[6] + 1) % len(corpus.vocab)
    flipped = ServingLog(
        log.header, (log.sequences[0], replace(first, tokens=tuple(tokens)), *log.sequences[2:])
    )
    assert check_ties(reference, flipped, None, schedule=(4, 1)).refused[0] == (1, 6)
    # the sender that passes the mean-shortfall threshold (test_difr_covert.py), logged canonically
    opts = _opts()
    sent = covert_serve(reference, prompts, opts, CovertPlan(budget=0.5, cap=0.5), [1] * 64)
    assert sum(len(s.bits) for s in sent) > 0
    covert = ServingLog(log.header, tuple(s.record for s in sent))
    report = check_ties(reference, covert, None, schedule=(4, 1))
    assert report.refused and report.reasons


def test_schedule_choice_is_refused_when_fixed_and_counted_when_not(reference, corpus, prompts):
    log, _ = _logged(reference, corpus, prompts, batch=4, threads=1)
    free = check_ties(reference, log, None)
    assert free.reasons == [] and free.schedule_bits == pytest.approx(np.log2(len(prompts) * MAX_THREADS))
    assert free.capacity_bits == free.schedule_bits  # the only freedom left is the schedule
    other = check_ties(reference, log, None, schedule=(8, 1))
    assert any("request fixed 8" in r for r in other.reasons)


def test_the_schedule_grinder_carries_nothing_past_a_fixed_schedule(reference, corpus, prompts):
    """Other admission orders logged truthfully break the canonical schedule; logged as the
    canonical one, every token they change is refused. With (max batch, threads) fixed,
    only outcomes equal to the canonical one pass: 0 bits."""
    cands = [Candidate(4, 1), Candidate(4, 1, 3), Candidate(2, 1), Candidate(3, 1)]
    outcomes = grind(reference, prompts, _opts(), corpus.vocab.chars, cands, fixed=(4, 1))
    canonical = outcomes[0]
    assert canonical.truthful_passes and canonical.canonical_lie_passes
    shuffled = outcomes[1]
    assert not shuffled.truthful_passes and not shuffled.truthful_passes_free
    assert shuffled.canonical_lie_passes == (shuffled.tokens == canonical.tokens)
    for o in outcomes[2:]:  # canonical FIFO at another max batch: passes only where the request left it free
        assert not o.truthful_passes and o.truthful_passes_free
    assert carried_bits(outcomes) == 0.0
    assert schedule_decode(canonical.tokens, outcomes) == 0
    # left free, what it carries is the distinct outcomes among the schedules it may declare
    distinct = {o.tokens for o in outcomes if o.truthful_passes_free}
    assert carried_bits(outcomes, free=True) == pytest.approx(np.log2(len(distinct)))


def test_batch_logged_header_errors(reference, corpus, prompts):
    log, _ = _logged(reference, corpus, prompts)
    server = dict(log.header.server)
    server["schedule"] = server["schedule"][1:]
    with pytest.raises(InputError, match="every sequence exactly once"):
        read_schedule(ServingLog(replace(log.header, server=server), log.sequences))
    with pytest.raises(InputError, match="max_batch, threads and schedule"):
        read_schedule(ServingLog(replace(log.header, server={"decode": "batch-logged"}), log.sequences))
    with pytest.raises(InputError, match="sampling seed"):
        generate_logged(reference, prompts, replace(_opts(), sampling=SamplingConfig(0.8, 40)), 1)


@pytest.mark.slow
def test_cli_serves_batch_logged_and_verifies_with_a_fixed_schedule(
    ref_ckpt, corpus, prompts, tmp_path, capsys
):
    from typer.testing import CliRunner

    from inspectorate.cli import app, invoke

    vocab = corpus.vocab.chars
    (tmp_path / "p.txt").write_text("\n".join("".join(vocab[t] for t in p) for p in prompts[:4]) + "\n")
    runner, log = CliRunner(), tmp_path / "served.jsonl"
    args = [
        "difr",
        "serve",
        "--model",
        str(ref_ckpt),
        "--prompts",
        str(tmp_path / "p.txt"),
        "--out",
        str(log),
    ]
    args += [
        "--nonce",
        NONCE,
        "--batch-logged",
        "--batch-size",
        "2",
        "--precision",
        "bfloat16",
        "--max-new",
        "12",
    ]
    assert runner.invoke(app, args).exit_code == 0
    assert read_log(log).header.server["schedule"][0]["seqs"] == [0, 1]
    assert read_schedule(read_log(log)).threads == 1
    verify = ["difr", "verify", str(log), "--reference", str(ref_ckpt), "--nonce", NONCE, "--format", "json"]
    done = runner.invoke(app, [*verify, "--schedule", "2,1", "--request", str(tmp_path / "p.txt")])
    assert done.exit_code == 0, done.output
    ties = json.loads(done.output)["ties"]
    assert ties["decode"] == "batch-logged" and ties["capacity_bits"] == 0.0 and ties["deviations"] == 0
    # the request's prompts served in another order: a renumbering the verifier refuses
    logged = read_log(log)
    request = [list(s.prompt) for s in logged.sequences]
    assert _request_reasons(logged, request) == []
    assert "not the request's in order" in _request_reasons(logged, request[::-1])[0]
    capsys.readouterr()
    assert invoke([*verify, "--schedule", "4"]) == 2 and "MAX_BATCH,THREADS" in capsys.readouterr().err
    assert invoke([*args, "--deterministic", "--force"]) == 2
    assert "exclude each other" in capsys.readouterr().err
