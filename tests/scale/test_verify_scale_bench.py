"""bench/verify_scale.py's own pieces: declaring a model on a generated run (and taking it
back), and the tally of spot-check calls, measurements and seconds that shows the cache
at work across passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import verify_scale
from inspectorate.trace._rungen import RunSpec, generate_run


def _events(host: Path) -> list[dict]:
    return [json.loads(line) for line in (host / "workload_labels.jsonl").read_text().splitlines()]


def test_declare_names_the_model_on_every_working_phase_and_takes_it_back(tmp_path):
    generate_run(tmp_path, RunSpec(hosts=2, hours=0.75, hz=1.0))
    before = {h.name: _events(h) for h in verify_scale._hosts(tmp_path)}
    verify_scale._declare(tmp_path, "laptop")
    for host in verify_scale._hosts(tmp_path):
        events = _events(host)
        assert len(events) == len(before[host.name]) == 8
        for was, now in zip(before[host.name], events, strict=True):
            want = None if was["claimed_op"] == "idle" else "laptop"
            assert now.pop("claimed_model", None) == want and now == was
    verify_scale._declare(tmp_path, None)
    assert {h.name: _events(h) for h in verify_scale._hosts(tmp_path)} == before


def test_the_tally_counts_cache_hits_apart_from_measurements(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from inspectorate.models import named_spec
    from inspectorate.verify import _spotcache
    from inspectorate.verify._spotcheck import SpotCheck, Work

    monkeypatch.setenv("INSPECTORATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTORATE_SPOTCACHE", "on")
    monkeypatch.setattr(_spotcache, "cached", _spotcache.cached)  # restored after the test
    tally = verify_scale._time_spot_checks()
    work = Work("training", "micro", 4, 32, named_spec("micro"))

    def measure() -> SpotCheck:
        return SpotCheck(work, 2e-4, 1280, 0.256, 10, 0.01)

    first = _spotcache.cached(work, 1.0, "whole", measure, SpotCheck)
    again = _spotcache.cached(work, 1.0, "whole", measure, SpotCheck)  # cached: not measured again
    assert isinstance(again, SpotCheck) and again.cpu_s_per_token == first.cpu_s_per_token
    assert tally["calls"] == 2 and tally["measured"] == 1 and tally["s"] > 0.0
