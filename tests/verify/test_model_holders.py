"""The footprint bound divides by processes that hold memory, not by processes that spin."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from inspectorate.trace.streams import SensorLog
from inspectorate.verify._sensor_features import model_holders

GB = 1_000_000_000


def _log(samples: list[list[list[float]]]) -> SensorLog:
    records = [{"t": float(i), "per_proc": procs} for i, procs in enumerate(samples)]
    return SensorLog(
        path=Path("sensor.jsonl"), frame=pl.DataFrame({"t": [r["t"] for r in records]}), records=records
    )


def test_two_ranks_holding_the_model_count_twice_however_little_cpu_they_get() -> None:
    # two data-parallel ranks on a loaded host: 0.02 cores each, ~1 GB each
    log = _log(
        [[[1, 0.0, 1.00 * GB, 9], [2, 0.0, 0.99 * GB, 9]], [[1, 0.02, 1.01 * GB, 9], [2, 0.02, 1.0 * GB, 9]]]
    )
    assert model_holders(log, 0.0, 1.0) == 2


def test_spinning_decoys_do_not_divide_the_bound() -> None:
    # one process holds the model; ten small ones spin a full core each
    decoys = [[100 + k, float(k), 0.05 * GB, 1] for k in range(10)]
    first = [[1, 0.0, 2.0 * GB, 9], *decoys]
    last = [[1, 0.1, 2.0 * GB, 9], *[[p, c + 1.0, m, t] for p, c, m, t in decoys]]
    assert model_holders(_log([first, last]), 0.0, 1.0) == 1


def test_no_per_process_readings_means_no_count() -> None:
    assert model_holders(_log([[], []]), 0.0, 1.0) == 0
    # outside the window nothing counts either
    log = _log([[[1, 0.0, GB, 1]], [[1, 0.0, GB, 1]]])
    assert model_holders(log, 5.0, 9.0) == 0
