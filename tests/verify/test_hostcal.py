"""The host's FLOP rate bounds a claim whose model the verifier cannot build, from below only."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._hostcal import HostRate, flops_floor_cpu_s, host_rate
from inspectorate.verify._physics import compute
from inspectorate.verify._properties import Context

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSPECTORATE_CACHE_DIR", str(tmp_path))
    host_rate.cache_clear()


def test_the_rate_is_measured_once_and_cached(tmp_path: Path) -> None:
    rate = host_rate()
    assert isinstance(rate, HostRate)
    assert 1e8 < rate.peak_flop_per_cpu_s < 1e12 and rate.median_flop_per_cpu_s <= rate.peak_flop_per_cpu_s
    assert 0 <= rate.spread < 1 and (tmp_path / "host-rate.json").exists()
    host_rate.cache_clear()
    assert host_rate() == rate  # read back, not re-measured


def _phase(op: str, n: int, tokens: float, cpu_s: float) -> PhaseEvidence:
    claim = Claim(op, op, op, None, n, model="someone-elses-model")
    ev = PhaseEvidence("p", claim, 0.0, 100.0)
    ev.windows = {"tokens": tokens, "batch_size": 8, "sequence_length": 64}
    ev.sensor = {"cpu_s": cpu_s, "cores": cpu_s / 100.0}
    return ev


def test_inflated_tokens_fall_under_the_flop_floor_and_honest_ones_stay_open() -> None:
    rate = host_rate()
    assert isinstance(rate, HostRate)
    n, tokens = 5_000_000, 2_000_000.0
    floor = flops_floor_cpu_s("training", n, tokens, rate)
    ctx = Context()
    lie = compute(_phase("training", n, tokens, cpu_s=floor / 10), ctx)
    assert lie.decision == "inconsistent" and "host_rate" in lie.basis
    honest = compute(_phase("training", n, tokens, cpu_s=floor * 3), ctx)
    assert honest.decision == "unverifiable" and "cannot be bounded" in honest.evidence["reason"]
    no_count = compute(_phase("training", 0, tokens, cpu_s=1.0), ctx)
    assert no_count.decision == "unverifiable" and "flops_floor_cpu_s" not in no_count.evidence
