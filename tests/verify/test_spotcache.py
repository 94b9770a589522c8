"""The spot-check cache: kept across runs per (host, CPU, torch, model description, op,
batch, seq); a changed description under the same name, a corrupt file, a tampered or
stale entry are measured again, never trusted; a failure sentence is never stored."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

pytest.importorskip("torch")

from inspectorate.models import named_spec
from inspectorate.verify import _spotcache, _spotcheck
from inspectorate.verify._spotcheck import SpotCheck, Work


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INSPECTORATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTORATE_SPOTCACHE", "on")
    return tmp_path / "spotcheck.json"


def _work() -> Work:
    spec = named_spec("micro")
    assert spec is not None
    return Work("training", "micro", 4, 32, spec)


class Meter:
    """A stand-in measurement that counts how often it ran."""

    def __init__(self, cost: float = 2e-4):
        self.calls, self.cost = 0, cost

    def __call__(self, work: Work):
        def run() -> SpotCheck:
            self.calls += 1
            return SpotCheck(work, self.cost, 1280, self.cost * 1280, 10, 0.01)

        return run


def test_a_measurement_is_reused_across_runs(cache):
    meter, work = Meter(), _work()
    first = _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    again = _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 1 and again == first
    doc = json.loads(cache.read_text())
    assert doc["schema"] == "inspectorate.spotcache/1" and len(doc["entries"]) == 1
    key = next(iter(doc["entries"].values()))["key"]
    assert {"host", "cpu", "torch", "model_sha256", "op", "batch", "seq"} <= set(key)
    _spotcache.cached(work, 1.0, "sliced", meter(work), SpotCheck)  # another way of timing: its own entry
    _spotcache.cached(dataclasses.replace(work, batch=8), 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 3


def test_a_different_description_under_the_same_name_is_measured_again(cache):
    meter = Meter()
    _spotcache.cached(_work(), 1.0, "whole", meter(_work()), SpotCheck)
    spec = _work().spec
    bigger = Work(
        "training", "micro", 4, 32, spec.with_layers(spec.depth + 2)
    )  # a prover's models/micro.json
    _spotcache.cached(bigger, 1.0, "whole", meter(bigger), SpotCheck)
    assert meter.calls == 2


def test_a_corrupt_cache_is_ignored_with_a_note(cache, capsys):
    cache.write_text("{not json")
    meter, work = Meter(), _work()
    _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 1 and "ignored" in capsys.readouterr().err
    assert json.loads(cache.read_text())["schema"] == "inspectorate.spotcache/1"  # rewritten whole


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["result"].update(cpu_s_per_token=-1.0),
        lambda e: e["result"].update(cpu_s_per_token=float("nan")),
        lambda e: e["result"].update(tokens="1280"),
        lambda e: e["key"].update(host="someone-else"),
        lambda e: e.update(measured_at=time.time() - 2 * _spotcache.MAX_AGE_S),
        lambda e: e.update(measured_at=time.time() + 3600),
    ],
)
def test_a_tampered_or_stale_entry_is_measured_again(cache, capsys, tamper):
    meter, work = Meter(), _work()
    _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    doc = json.loads(cache.read_text())
    tamper(next(iter(doc["entries"].values())))
    cache.write_text(json.dumps(doc))
    got = _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 2 and got.cpu_s_per_token == meter.cost
    assert "ignored" in capsys.readouterr().err


def test_a_failure_is_never_stored_and_off_means_off(cache, monkeypatch):
    work = _work()
    assert _spotcache.cached(work, 1.0, "whole", lambda: "cannot measure", SpotCheck) == "cannot measure"
    assert not cache.exists()
    monkeypatch.setenv("INSPECTORATE_SPOTCACHE", "off")
    meter = Meter()
    _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 2 and not cache.exists()


def test_spot_check_reads_the_cache_a_previous_process_wrote(cache, monkeypatch):
    work = Work("eval", "micro", 2, 16)
    first = _spotcheck.spot_check(work, seconds=0.05)
    assert isinstance(first, SpotCheck) and cache.exists()
    _spotcheck._measure.cache_clear()  # a new process: nothing in memory

    def no_measuring(*_a, **_k):
        raise AssertionError("measured although the cache holds it")

    monkeypatch.setattr(_spotcheck, "_measure", no_measuring)
    again = _spotcheck.spot_check(work, seconds=0.05)
    assert isinstance(again, SpotCheck) and again.cpu_s_per_token == first.cpu_s_per_token
