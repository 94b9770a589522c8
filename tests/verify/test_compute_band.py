"""compute's band: one busy process is held to 2x the highest honest price of a claimed
token (no all-reduce to pay for), a multi-rank job keeps the wide LOHO band, and an eval
claim is priced up to generation (an eval may generate its answers)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from inspectorate.models import RNNSpec
from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._physics import SINGLE_PROCESS_HIGH, claimed_work, compute
from inspectorate.verify._properties import Context
from inspectorate.verify._spotcheck import spot_check

SPEC = RNNSpec(cell="gru", vocab_size=65, d_embed=64, hidden=64, n_layers=1)
TOKENS = 4096


def _phase(
    op: str, cpu_s: float, busy_procs: int, world_size: int = 1, holders: int | None = None
) -> PhaseEvidence:
    claim = Claim(op, None, op, None, SPEC.n_params(), world_size=world_size, model="gru-64")
    ev = PhaseEvidence("p", claim, 0.0, 10.0)
    ev.windows = {"tokens": TOKENS, "batch_size": 8, "sequence_length": 32}
    ev.sensor = {"cpu_s": cpu_s, "cores": cpu_s / 10.0, "busy_procs": busy_procs, "mem_procs": holders}
    ev.model_spec = SPEC
    return ev


def _price(op: str) -> float:
    work = claimed_work(_phase(op, 1.0, 1))
    assert work is not None
    check = spot_check(work.__class__(op, work.model, work.batch, work.seq, SPEC), DEFAULT.spot_check_s)
    assert not isinstance(check, str)
    return check.cpu_s_per_token


def test_one_process_is_held_to_twice_the_claimed_work_a_multi_rank_job_to_the_wide_band():
    ctx = Context(DEFAULT)
    price = _price("inference")
    beyond = price * TOKENS * SINGLE_PROCESS_HIGH * 1.6  # inside the wide band (5.06), outside 2
    single = compute(_phase("inference", beyond, busy_procs=1), ctx)
    assert single.decision == "inconsistent", single.evidence
    assert single.evidence["band"]["kind"] == "single-process"
    assert "training_over_claimed_price" in single.evidence["spot_check"]  # reported, timed
    wide = compute(_phase("inference", beyond, busy_procs=2, world_size=2), ctx)
    assert wide.decision == "consistent", wide.evidence
    # a starved rank: one busy process, but two hold the model -> wide band
    starved = compute(_phase("inference", beyond, busy_procs=1, world_size=2, holders=2), ctx)
    assert starved.evidence["band"]["kind"] == "multi-process"
    # one process claiming two ranks: the sensor sees one holder -> the single band
    liar = compute(_phase("inference", beyond, busy_procs=1, world_size=2, holders=1), ctx)
    assert liar.evidence["band"]["kind"] == "single-process"
    assert liar.decision == "inconsistent", liar.evidence
    # an older sensor with no per-process list: the claim's ranks decide, as before
    old = compute(_phase("inference", beyond, busy_procs=1, world_size=2), ctx)
    assert old.evidence["band"]["kind"] == "multi-process"
    honest = compute(_phase("inference", price * TOKENS * 1.2, busy_procs=1), ctx)
    assert honest.decision == "consistent", honest.evidence


def test_eval_is_priced_up_to_generation():
    """A recurrent model stepped one token at a time costs more per token than its
    teacher-forced forward: an eval that generates is honest up to that price."""
    ctx = Context(DEFAULT)
    forward, generate = _price("eval"), _price("inference")
    # the reason for the rule: stepping costs more per token (1.3-2x measured here; a
    # ratio is a timing, so the test asserts only its direction, which load cannot flip)
    assert generate > forward
    cpu = generate * TOKENS * 1.2  # a generative eval with some bookkeeping
    f = compute(_phase("eval", cpu, busy_procs=1), ctx)
    assert f.decision == "consistent", f.evidence
    assert f.evidence["band"]["priced_up_to"] == "generative eval"
    over = compute(_phase("eval", generate * TOKENS * SINGLE_PROCESS_HIGH * 2.5, busy_procs=1), ctx)
    assert over.decision == "inconsistent", over.evidence


def test_idle_allows_idle_cores_per_memory_holder_and_no_more():
    """Two honest gloo ranks idling (a polled stop flag) used 0.058 cores: the idle
    allowance scales with processes holding memory, never with claimed ranks."""
    ctx = Context(DEFAULT)
    two_ranks = compute(_phase("idle", 0.58, busy_procs=0, holders=2), ctx)
    assert two_ranks.decision == "consistent", two_ranks.evidence
    assert two_ranks.evidence["idle_cores_allowed"] == pytest.approx(2 * DEFAULT.idle_cores)
    one = compute(_phase("idle", 0.58, busy_procs=0, holders=1), ctx)
    assert one.decision == "inconsistent", one.evidence
    claimed_only = compute(_phase("idle", 0.58, busy_procs=0, world_size=4), ctx)
    assert claimed_only.decision == "inconsistent", claimed_only.evidence
    hidden = compute(_phase("idle", 9.6, busy_procs=2, holders=2), ctx)  # ~1 core of work
    assert hidden.decision == "inconsistent", hidden.evidence


def test_a_transformer_server_that_rereads_its_prefix_is_priced_as_honest():
    """nanoGPT's ``generate`` runs the cropped prefix for every token: ~3x the cached
    price. For a transformer that is the highest honest serving price; a recurrent
    model (above) is still held to its decoded price."""
    from inspectorate.models import GPTSpec
    from inspectorate.verify._spotcheck import Work

    gpt = GPTSpec(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=65)
    reread = spot_check(Work("recompute", "gpt-64", 4, 64, gpt), DEFAULT.spot_check_s)
    cached = spot_check(Work("inference", "gpt-64", 4, 64, gpt), DEFAULT.spot_check_s)
    assert not isinstance(reread, str) and not isinstance(cached, str)
    assert reread.cpu_s_per_token > cached.cpu_s_per_token  # the allowance is real work

    def phase(cpu_s: float) -> PhaseEvidence:
        claim = Claim("inference", None, "inference", None, gpt.n_params(), model="gpt-64")
        ev = PhaseEvidence("p", claim, 0.0, 10.0)
        ev.windows = {"tokens": TOKENS, "batch_size": 4, "sequence_length": 64}
        ev.sensor = {"cpu_s": cpu_s, "cores": cpu_s / 10.0, "busy_procs": 1, "mem_procs": 1}
        ev.model_spec = gpt
        return ev

    honest = compute(phase(reread.cpu_s_per_token * TOKENS), Context(DEFAULT))
    assert honest.decision == "consistent", honest.evidence
    assert honest.evidence["band"]["priced_up_to"] == "generation re-reading the prefix"
    beyond = compute(phase(reread.cpu_s_per_token * TOKENS * 4), Context(DEFAULT))
    assert beyond.decision == "inconsistent", beyond.evidence
