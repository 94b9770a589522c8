"""The memory baseline cannot absorb a model allocated before the prover's first label."""

from __future__ import annotations

import pytest

from inspectorate.verify import _memfloor
from inspectorate.verify._memfloor import MemoryFloor, capped_baseline, runtime_processes

MB = 1 << 20
FLOOR = MemoryFloor(host="h", python="3", torch="t", anon_b=100 * MB, file_b=50 * MB)


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> MemoryFloor:
    monkeypatch.setattr(_memfloor, "memory_floor", lambda: FLOOR)
    return FLOOR


def test_a_model_held_before_the_first_label_stays_above_the_baseline(floor: MemoryFloor) -> None:
    # the tree's lowest reading while labelled is 2 GB: the model was built before any label
    assert capped_baseline(2048.0 * MB, processes=1) == 150 * MB
    assert capped_baseline(2048.0 * MB, processes=2) == 250 * MB  # libraries counted once
    # an honest tree that held less than the floor keeps its own baseline
    assert capped_baseline(120.0 * MB, processes=1) == 120 * MB
    assert capped_baseline(None, processes=3) is None


def test_only_processes_that_hold_an_interpreter_count(floor: MemoryFloor) -> None:
    records = [
        {"t": 0.0, "per_proc": [[1, 0.0, 900 * MB, 4], [2, 0.0, 5 * MB, 1]]},
        {"t": 1.0, "per_proc": [[1, 0.1, 900 * MB, 4], [3, 0.0, 101 * MB, 1]]},
        {"t": 9.0, "per_proc": [[4, 0.0, 900 * MB, 4]]},
    ]
    assert runtime_processes(records, 0.0, 1.0, floor) == 2  # pid 2 is a 5 MB helper
    assert runtime_processes(records, 0.0, 9.0, floor) == 3


def test_the_floor_is_measured_on_this_host() -> None:
    pytest.importorskip("torch")
    _memfloor.memory_floor.cache_clear()
    measured = _memfloor.memory_floor()
    assert measured is not None
    # an interpreter that imported torch holds tens of MB of its own and of libraries
    assert measured.anon_b > 10 * MB and measured.file_b > 10 * MB
