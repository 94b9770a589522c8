"""Samplers: real CPU and /proc/net/dev sampling, NVML through a stand-in module, and a
sensor that fails without disturbing anything."""

from __future__ import annotations

import re
import sys
import time
import types
from pathlib import Path

import pytest

from inspectorate.capture import CpuSampler, NetdevSampler, NvmlSampler, Sensors, gpu_available
from inspectorate.capture._sensors import nvsmi_timestamp
from inspectorate.errors import InputError
from inspectorate.trace import read_cpu, read_netdev, read_nvsmi

NVSMI_HEADER = (
    "timestamp,index,name,utilization.gpu,utilization.memory,memory.used,memory.total,"
    "power.draw,clocks.sm,clocks.mem,temperature.gpu"
)


def test_sensors_write_cpu_and_netdev_streams(tmp_path: Path) -> None:
    start = time.time()
    with Sensors(tmp_path, hz=4.0, gpu=False) as sensors:
        time.sleep(2.0)
    assert all(not s.is_alive() for s in sensors.samplers)
    assert not (tmp_path / "nvsmi.csv").exists()
    header = (tmp_path / "cpu.csv").read_text().splitlines()[0]
    assert (
        header == "timestamp,cpu_percent,per_cpu_max,mem_used_mb,mem_percent,proc_rss_mb,load1,ctx_switches"
    )
    cpu = read_cpu(tmp_path / "cpu.csv")
    assert 5 <= cpu.height <= 11
    assert cpu["t"].min() >= start - 1 and cpu["proc_rss_mb"].min() > 0
    assert cpu["ctx_switches"].is_sorted()
    net = read_netdev(tmp_path / "netdev.log")
    assert "lo" in set(net["iface"])
    assert net["snapshot"].n_unique() == cpu.height or abs(net["snapshot"].n_unique() - cpu.height) <= 1
    assert re.match(r"--- \d+\.\d{3} ---$", (tmp_path / "netdev.log").read_text().splitlines()[0])


def test_sampler_errors_are_counted_not_raised(tmp_path: Path) -> None:
    sampler = NetdevSampler(tmp_path / "netdev.log", hz=20.0, source=tmp_path / "missing")
    sampler.start()
    time.sleep(0.3)
    sampler.stop()
    assert not sampler.is_alive()
    assert sampler.errors >= 3 and sampler.samples == 0


def test_cpu_sampler_can_stop_before_start(tmp_path: Path) -> None:
    sampler = CpuSampler(tmp_path / "cpu.csv")
    sampler.stop()  # never started: must not hang or raise
    with pytest.raises(InputError):
        CpuSampler(tmp_path / "x.csv", hz=0)


def test_nvsmi_timestamp_format() -> None:
    assert nvsmi_timestamp(1777447220.991) == "2026/04/29 07:20:20.991"
    assert nvsmi_timestamp(1777447220.9996) == "2026/04/29 07:20:21.000"


def _fake_pynvml() -> types.ModuleType:
    """Enough of nvidia-ml-py's API for NvmlSampler, with two GPUs; GPU 1 has no power reading."""
    nv = types.ModuleType("pynvml")
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    nv.nvmlInit = lambda: None
    nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: 2
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=100, memory=45)
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=18787 * 2**20, total=81559 * 2**20)

    def power(h: int) -> int:
        if h == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 578660

    nv.nvmlDeviceGetPowerUsage = power
    nv.nvmlDeviceGetClockInfo = lambda h, kind: 1980 if kind == 1 else 2619
    nv.nvmlDeviceGetTemperature = lambda h, kind: 54
    return nv


def test_nvml_sampler_writes_the_seed_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml())
    assert gpu_available()
    with NvmlSampler(tmp_path / "nvsmi.csv", hz=20.0):
        time.sleep(0.25)
    lines = (tmp_path / "nvsmi.csv").read_text().splitlines()
    assert lines[0] == NVSMI_HEADER
    assert re.match(
        r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3},0,NVIDIA H100 80GB HBM3,100,45,18787,81559,578.66,1980,2619,54$",
        lines[1],
    )
    frame = read_nvsmi(tmp_path / "nvsmi.csv")
    assert set(frame["index"]) == {0, 1}
    assert (
        frame.filter(frame["index"] == 1)["power_draw_w"].null_count()
        == frame.filter(frame["index"] == 1).height
    )
    assert abs(frame["t"].max() - time.time()) < 5


def test_gpu_available_is_false_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import now raises ImportError
    assert gpu_available() is False


@pytest.mark.gpu
def test_nvml_sampler_on_a_real_gpu(tmp_path: Path) -> None:
    if not gpu_available():
        pytest.skip("no NVIDIA GPU / NVML here")
    with NvmlSampler(tmp_path / "nvsmi.csv", hz=5.0) as sampler:
        time.sleep(1.0)
    assert sampler.errors == 0
    frame = read_nvsmi(tmp_path / "nvsmi.csv")
    assert frame.height >= 3 and frame["memory_total_mib"].min() > 0
