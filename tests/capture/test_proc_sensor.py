"""The verifier-owned sensor: samples a live process tree at >= 10 Hz into its own chain."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from inspectorate.capture._proc_sensor import ProcSensor, read_proc, tree_pids
from inspectorate.trace.streams import per_process_cpu, read_sensor


def _busy_child() -> subprocess.Popen[bytes]:
    code = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.6: pass\ntime.sleep(5)"
    return subprocess.Popen([sys.executable, "-c", code])


def test_sensor_sees_a_child_burn_cpu_and_writes_an_intact_chain(tmp_path):
    import os
    import threading

    sensor = ProcSensor(tmp_path, pid=os.getpid(), hz=20, gpu=False)
    sensor.exclude = set()  # in-process for the test: measure this tree, sampler included
    stop = threading.Event()
    runner = threading.Thread(target=sensor.run, args=(stop,))
    runner.start()
    child = _busy_child()
    try:
        assert child.pid in tree_pids(os.getpid(), exclude=set())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (read_proc(child.pid) or read_proc(os.getpid())).cpu_s < 0.6:
            time.sleep(0.05)  # wait for the busy loop to finish, however loaded the box is
        time.sleep(0.2)
    finally:
        stop.set()
        runner.join()
        child.kill()
        child.wait()
    log = read_sensor(tmp_path / "sensor.jsonl")
    assert log.intact and log.frame.height >= 5
    f = log.frame
    assert (f["rss_b"] > 0).all() and (f["threads"] >= 2).all()
    busy = per_process_cpu(log, float(f["t"][0]), float(f["t"][-1]))
    assert busy.get(child.pid, 0.0) >= 0.4  # the child's busy loop, seen from /proc
    assert float(f["cpu_s"][-1] - f["cpu_s"][0]) >= busy[child.pid]


def test_an_edited_sensor_file_breaks_its_chain(tmp_path):
    import os

    ProcSensor(tmp_path, pid=os.getppid(), hz=10, gpu=False).run(duration=0.3)
    path = tmp_path / "sensor.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"procs":', '"procs":1', 1)  # a prover "fixing" one sample
    path.write_text("\n".join(lines) + "\n")
    assert not read_sensor(path).intact


def test_sensor_refuses_slow_rates_and_a_missing_target(tmp_path):
    with pytest.raises(ValueError):
        ProcSensor(tmp_path, pid=1, hz=2)
    with pytest.raises(ValueError):
        ProcSensor(tmp_path)
    assert read_proc(2**22 + 12345) is None


def test_cli_bad_pid_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspectorate.cli",
            "sensor",
            "--pid",
            str(2**22 + 7),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no process" in proc.stderr and "Traceback" not in proc.stderr


def test_gpu_counters_come_from_nvml_when_present(tmp_path, monkeypatch):
    """No GPU here: a stand-in NVML module checks the sensor reads and records it."""
    import os
    import types

    from inspectorate.capture import _sensors

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87, memory=40),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=2**30, total=2**34),
        nvmlDeviceGetPowerUsage=lambda h: 350_000,
        # per process: the workload (our parent's tree) and a stranger sharing the GPU
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            types.SimpleNamespace(pid=os.getppid(), usedGpuMemory=2**29),
            types.SimpleNamespace(pid=2**22 + 7, usedGpuMemory=2**32),
        ],
        nvmlDeviceGetProcessUtilization=lambda h, ts: [
            types.SimpleNamespace(pid=os.getppid(), smUtil=30, memUtil=5, timeStamp=ts + 1),
            types.SimpleNamespace(pid=2**22 + 7, smUtil=57, memUtil=50, timeStamp=ts + 1),
        ],
    )
    monkeypatch.setattr(_sensors, "_load_pynvml", lambda: fake)
    ProcSensor(tmp_path, pid=os.getppid(), hz=10, gpu=True).run(duration=0.25)
    log = read_sensor(tmp_path / "sensor.jsonl")
    assert log.records[0]["gpu"] == [{"index": 0, "util": 87, "mem": 2**30, "power_mw": 350_000}]
    # the device-wide figures are shown; the workload's columns count its own PIDs only
    assert log.frame["gpu_power_w"][0] == 350.0 and log.frame["host_gpu_util"][0] == 87.0
    assert log.frame["gpu_util"][0] == 30.0 and log.frame["gpu_mem_b"][0] == 2**29


def test_read_proc_counts_the_bytes_a_process_writes(tmp_path):
    """``write_b`` (``/proc/PID/io`` wchar) grows by what the process wrote: the counter
    the compute check prices checkpoint writes by."""
    import os

    from inspectorate.capture._proc_sensor import read_proc

    before = read_proc(os.getpid())
    with open(tmp_path / "blob", "wb") as f:
        f.write(b"\0" * 4_000_000)
    after = read_proc(os.getpid())
    assert before is not None and after is not None
    assert after.write_b - before.write_b >= 4_000_000
