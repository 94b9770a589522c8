"""The cgroup's CPU wait (PSI ``cpu.pressure``) on the real kernel: a loop that a busy
host starves waits most of the time, a sleeper almost never; both get little CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from inspectorate.capture._isolate import Cgroup, missing_rights
from inspectorate.capture._scope import CgroupCounters

ISOLATION = missing_rights()
SPIN = "import os\nos.nice(19)\nwhile True: pass"
SLEEP = "import time\nwhile True: time.sleep(0.05)"


def _share(code: str, neighbours: int) -> tuple[float, float]:
    group = Cgroup.create(f"inspectorate-test-wait-{os.getpid()}")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(neighbours)]
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        group.join(child.pid)
        counters = CgroupCounters.discover(group.sensor_path)
        time.sleep(0.5)
        a, t0 = counters.read(), time.monotonic()
        time.sleep(2.0)
        b, dt = counters.read(), time.monotonic() - t0
        counters.close()
    finally:
        for p in (child, *busy):
            p.kill()
            p.wait()
        group.remove()
    if "cpu_wait_s" not in a:
        pytest.skip("this host's cgroup has no cpu.pressure (no PSI or no v2 group)")
    return (b["cpu_wait_s"] - a["cpu_wait_s"]) / dt, (b["cpu_s"] - a["cpu_s"]) / dt


@pytest.mark.skipif(bool(ISOLATION), reason=f"cgroups unavailable: {'; '.join(ISOLATION)}")
def test_a_starved_loop_waits_a_sleeper_does_not():
    neighbours = 2 * (os.cpu_count() or 1)
    wait, cores = _share(SPIN, neighbours)
    assert wait > 0.5, (wait, cores)
    sleeper_wait, sleeper_cores = _share(SLEEP, neighbours)
    assert sleeper_wait < 0.2, (sleeper_wait, sleeper_cores)
    assert sleeper_cores < 0.05
