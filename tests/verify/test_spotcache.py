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
    monkeypatch.setattr(_spotcache, "busy_host", lambda: None)  # the suite may load the box
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


def _declared(root, model: str) -> list:
    """Every host of a generated run, its phases declaring ``model`` (a name the verifier builds)."""
    hosts = sorted(p for p in root.iterdir() if p.is_dir())
    for host in hosts:
        path = host / "workload_labels.jsonl"
        events = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**e, "claimed_model": model}) + "\n" for e in events))
    return hosts


def test_a_fleet_measures_each_work_item_once_across_hosts_and_runs(cache, monkeypatch, tmp_path):
    """8 hosts x N runs meet the same few work items: the first verify measures them, a
    verify of another host of the run, or of another run, on this verifier measures
    nothing (calls counted; the in-process memory cleared between verifies, as a new
    process would start)."""
    from inspectorate.trace._rungen import RunSpec, generate_run
    from inspectorate.verify import Inspector

    for name, seed in (("a", 0), ("b", 1)):
        generate_run(tmp_path / name, RunSpec(hosts=2 if name == "a" else 1, hours=0.75, hz=1.0, seed=seed))
    a0, a1 = _declared(tmp_path / "a", "micro")
    (b0,) = _declared(tmp_path / "b", "micro")
    calls: list[tuple[str, int, int]] = []

    def measure(work: Work, seconds: float) -> SpotCheck:
        calls.append((work.op, work.batch, work.seq))
        return SpotCheck(work, 2e-4, 1280, 0.256, 10, 0.01)

    monkeypatch.setattr(_spotcheck, "_measure", measure)
    first = Inspector(policy="lenient").inspect(a0)
    measured = sorted(set(calls))
    assert len(calls) == len(measured) and {op for op, _, _ in measured} >= {"training", "inference", "eval"}
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == len(measured)
    for run in (a1, b0):
        again = Inspector(policy="lenient").inspect(run)
        assert len(calls) == len(measured), f"{run} measured again"
        assert [p.outcome for p in again.phases] == [p.outcome for p in first.phases]
    assert json.loads(cache.read_text())["entries"] == entries
    monkeypatch.setattr(_spotcache, "_host_identity", lambda: "another-verifier/host")
    Inspector(policy="lenient").inspect(b0)  # another verifier machine: its own measurements
    assert len(calls) == 2 * len(measured)


def test_a_measurement_on_an_oversubscribed_host_is_used_not_kept(cache, monkeypatch):
    """A price measured at load 6 per CPU was 2x the quiet one: kept, it made honest
    phases on the quiet box read as work not done."""
    meter, work = Meter(), _work()
    monkeypatch.setattr(_spotcache, "busy_host", lambda: 6.0)
    first = _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert isinstance(first, SpotCheck) and not cache.exists()
    monkeypatch.setattr(_spotcache, "busy_host", lambda: None)
    _spotcache.cached(work, 1.0, "whole", meter(work), SpotCheck)
    assert meter.calls == 2 and cache.exists()  # measured again, and kept this time
