"""Stream parsers on hand-written fixtures (tests/data/streams/README.md says how each
was made) and on malformed input, which must name the file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from inspectorate.errors import InputError
from inspectorate.trace import (
    read_collectives,
    read_cpu,
    read_dcgm,
    read_labels,
    read_nccl_log,
    read_netdev,
    read_nvsmi,
    read_steps,
    rechain,
)
from inspectorate.trace.streams import netdev_rates, parse_wallclock

DATA = Path(__file__).resolve().parents[1] / "data" / "streams"
T_0720_20 = 1777447220.0  # 2026-04-29 07:20:20 UTC


def _bad(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- nvidia-smi


def test_nvsmi_with_units_and_current_clock_names() -> None:
    frame = read_nvsmi(DATA / "nvsmi_units.csv")
    assert frame.height == 6 and frame.schema["power_draw_w"] == pl.Float64
    assert frame["t"][0] == pytest.approx(T_0720_20 + 0.991)
    assert frame["index"].to_list() == [0, 1] * 3
    assert frame["power_draw_w"].to_list()[:3] == [578.66, 568.88, 575.94]
    assert frame["power_draw_w"][3] is None  # [N/A]
    assert set(frame["clocks_sm_mhz"]) == {1980.0} and set(frame["memory_used_mib"]) == {18787.0}
    assert frame["name"][0] == "NVIDIA H100 80GB HBM3"


def test_nvsmi_without_units_matches_short_names() -> None:
    frame = read_nvsmi(DATA / "nvsmi_nounits.csv")
    assert frame.columns == read_nvsmi(DATA / "nvsmi_units.csv").columns
    assert frame["utilization_gpu"].to_list() == [55.0, 54.0, 55.0, 53.0]
    assert frame["clocks_mem_mhz"][0] == 2619.0


def test_nvsmi_tz_offset_shifts_local_times() -> None:
    utc = read_nvsmi(DATA / "nvsmi_nounits.csv")
    local = read_nvsmi(DATA / "nvsmi_nounits.csv", tz_offset_s=3600)
    assert (utc["t"] - local["t"]).to_list() == pytest.approx([3600.0] * 4)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("index,power.draw\n0,5\n", 1, "timestamp"),
        (
            "timestamp,index,power.draw\n2026/04/29 07:20:20.991,0,12 W\n2026/04/29 07:20:21.991,0,lots W\n",
            3,
            "not a number",
        ),
        ("timestamp,index\n2026/04/29 07:20:20.991,0,7\n", 2, "columns"),
        ("timestamp,index\nyesterday,0\n", 2, "timestamp"),
    ],
)
def test_nvsmi_errors_name_the_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    with pytest.raises(InputError) as info:
        read_nvsmi(_bad(tmp_path, "nvsmi.csv", text))
    assert info.value.line == line and needle in info.value.reason
    assert info.value.path.endswith("nvsmi.csv")


def test_empty_csv_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_nvsmi(_bad(tmp_path, "nvsmi.csv", ""))


# ---------------------------------------------------------------- DCGM


def test_dcgm_dmon_text() -> None:
    frame = read_dcgm(DATA / "dcgm_dmon.txt")
    assert frame.height == 6  # the repeated header and the ID lines are not rows
    assert frame["gpu"].to_list() == [0, 1, 0, 1, 0, 1] and frame["seq"].to_list() == list(range(6))
    assert frame["t"].null_count() == 6  # dmon prints no times
    assert frame["gr_engine_active"][0] == 0.998 and frame["pcie_tx_bytes"][0] == 123456789
    assert frame["tensor_active"].null_count() == 6 and frame["nvlink_rx_bytes"].null_count() == 6


def test_dcgm_csv_with_field_ids() -> None:
    frame = read_dcgm(DATA / "dcgm.csv")
    assert frame.height == 4 and frame["t"][2] == pytest.approx(T_0720_20 + 0.1)
    assert frame["tensor_active"].to_list()[:3] == [0.31, 0.305, 0.312] and frame["tensor_active"][3] is None
    assert frame["dram_active"][0] == 0.602 and frame["sm_occupancy"][1] == 0.399


def test_dcgm_csv_with_field_names_and_timestamped_dmon(tmp_path: Path) -> None:
    csv = _bad(
        tmp_path, "dcgm.csv", "time,entity,DCGM_FI_PROF_SM_ACTIVE,PCITX\n2026-04-29T07:20:20Z,GPU 1,0.5,100\n"
    )
    frame = read_dcgm(csv)
    assert frame["sm_active"][0] == 0.5 and frame["pcie_tx_bytes"][0] == 100 and frame["gpu"][0] == 1
    dmon = _bad(tmp_path, "dmon.txt", "#Entity SMACT\nID\n1777447220.5 GPU 0 0.25\n")
    frame = read_dcgm(dmon)
    assert frame["t"][0] == pytest.approx(T_0720_20 + 0.5) and frame["sm_active"][0] == 0.25


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("#Entity GRACT SMACT\nID\nGPU 0 0.1\n", 3),  # too few values
        ("#Entity GRACT\nID\nGPU 0 0.1\nCPU 0 0.2\n", 4),  # not a GPU row
        ("#Entity GRACT\nID\nGPU 0 busy\n", 3),  # not a number
        ("gpu,1001\n0,0.5\n", 1),  # CSV without a time column
    ],
)
def test_dcgm_errors_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(InputError) as info:
        read_dcgm(_bad(tmp_path, "dcgm.csv", text))
    assert info.value.line == line


# ---------------------------------------------------------------- NCCL


def test_nccl_log_collectives_and_init() -> None:
    log = read_nccl_log(DATA / "nccl_host-a_4242.log")
    coll = log.collectives
    assert coll["op"].to_list() == ["Broadcast", "AllReduce", "AllReduce", "AllReduce"]
    assert coll["opcount"].to_list() == [0, 1, 2, 26]  # opCount is hex
    assert coll["bytes"].to_list() == [1048576, 4194304 * 4, 2097152 * 2, 4194304 * 4]
    assert coll["dtype"].to_list() == ["int8", "float32", "bfloat16", "float32"]
    assert set(coll["rank"]) == {0} and set(coll["nranks"]) == {2} and set(coll["host"]) == {"host-a"}
    assert set(coll["pid"]) == {4242} and coll["t"].null_count() == 4
    assert coll["seq"].to_list() == [0, 1, 2, 3] and coll["line"][0] == 8
    init = log.inits
    assert init.height == 1 and init["rank"][0] == 0 and init["bus_id"][0] == "18000"
    assert init["comm"][0] == "0x55d4c0a1b2c0"
    assert log.other_lines == 2  # "NCCL version ..." and the program's own print


def test_nccl_log_gz_and_timestamps(tmp_path: Path) -> None:
    gz = tmp_path / "nccl_host-a_4242.log.gz"
    gz.write_bytes(gzip.compress((DATA / "nccl_host-a_4242.log").read_bytes()))
    assert read_nccl_log(gz).collectives.equals(read_nccl_log(DATA / "nccl_host-a_4242.log").collectives)
    stamped = read_nccl_log(DATA / "nccl_timestamped.log")
    assert stamped.collectives["t"][0] == pytest.approx(T_0720_20 + 1.25)
    assert stamped.collectives["rank"][0] == 1 and stamped.collectives["bytes"][0] == 2000
    assert stamped.inits["t"][0] == pytest.approx(T_0720_20 + 0.5)


def test_nccl_malformed_lines(tmp_path: Path) -> None:
    bad = "h:1:1 [0] NCCL INFO AllReduce: opCount 1 sendbuff 0x1 recvbuff 0x1 count many datatype 7\n"
    with pytest.raises(InputError) as info:
        read_nccl_log(_bad(tmp_path, "nccl.log", "h:1:1 [0] NCCL INFO Channel 00/02\n" + bad))
    assert info.value.line == 2
    with pytest.raises(InputError) as info:
        read_nccl_log(_bad(tmp_path, "n2.log", "h:1:1 [0] NCCL INFO comm 0x1 nranks 2 - Init COMPLETE\n"))
    assert info.value.line == 1
    broken = tmp_path / "n3.log.gz"
    broken.write_bytes(gzip.compress(b"h:1:1 [0] NCCL INFO x\n" * 100)[:30])
    with pytest.raises(InputError):
        read_nccl_log(broken)


def test_nccl_log_without_nccl_lines_is_empty_not_an_error(tmp_path: Path) -> None:
    log = read_nccl_log(_bad(tmp_path, "n.log", "hello\n"))
    assert log.collectives.height == 0 and log.inits.height == 0 and "bytes" in log.collectives.columns


# ---------------------------------------------------------------- netdev, cpu


def test_netdev_snapshots_and_rates() -> None:
    frame = read_netdev(DATA / "netdev.log")
    assert frame.height == 6 and set(frame["iface"]) == {"lo", "eth0"}
    eth0 = frame.filter(pl.col("iface") == "eth0")
    assert eth0["rx_bytes"].to_list() == [50000000, 52000000, 56000000]
    assert eth0["rx_multicast"][0] == 12 and eth0["t"][2] == T_0720_20 + 3
    rates = netdev_rates(frame).filter(pl.col("iface") == "eth0")
    assert rates["rx_bytes_per_s"].to_list() == [2e6, 2e6] and rates["dt"].to_list() == [1.0, 2.0]
    assert rates["tx_bytes_per_s"].to_list() == [1e6, 1e6]


def test_netdev_counter_reset_gives_null_rate() -> None:
    frame = pl.DataFrame(
        {
            "t": [0.0, 1.0],
            "iface": ["eth0"] * 2,
            "rx_bytes": [100, 5],
            "tx_bytes": [0, 10],
            "rx_packets": [1, 2],
            "tx_packets": [1, 2],
        }
    )
    rates = netdev_rates(frame)
    assert rates["rx_bytes_per_s"][0] is None and rates["tx_bytes_per_s"][0] == 10.0


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 1),
        ("--- 1777447220.0 ---\n  eth0: 1 2 3\n", 2),
        ("--- noon ---\n", 1),
    ],
)
def test_netdev_errors(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(InputError) as info:
        read_netdev(_bad(tmp_path, "netdev.log", text))
    assert info.value.line == line


def test_cpu_csv(tmp_path: Path) -> None:
    path = _bad(
        tmp_path,
        "cpu.csv",
        "timestamp,cpu_percent,per_cpu_max,mem_used_mb,mem_percent,proc_rss_mb,load1,"
        "ctx_switches\n1777447220.000,50.0,100.0,1000.0,12.5,300.0,1.5,12345\n",
    )
    frame = read_cpu(path)
    assert frame["t"][0] == T_0720_20 and frame["ctx_switches"][0] == 12345.0
    with pytest.raises(InputError) as info:
        read_cpu(_bad(tmp_path, "bad.csv", "timestamp,cpu_percent\n1777447220,50\n1777447221,x\n"))
    assert info.value.line == 3


# ---------------------------------------------------------------- JSONL streams


def test_collectives_and_missing_fields(tmp_path: Path) -> None:
    good = {
        "t": 1.0,
        "rank": 0,
        "world_size": 2,
        "op": "allreduce",
        "bytes": 40,
        "duration_s": 0.1,
        "dtype": "float32",
        "phase": "p",
    }
    frame = read_collectives(_bad(tmp_path, "c.jsonl", json.dumps(good) + "\n"))
    assert frame.row(0, named=True) == good
    with pytest.raises(InputError) as info:
        read_collectives(_bad(tmp_path, "c2.jsonl", json.dumps(good) + "\n" + '{"t": 2}\n'))
    assert info.value.line == 2 and "bytes" in info.value.reason


def test_labels_accept_epoch_and_iso_times(tmp_path: Path) -> None:
    text = (
        json.dumps({"event": "start", "phase": "a", "claimed": "inference", "truth": "training", "t": 10.5})
        + "\n"
        + json.dumps({"type": "end", "phase": "a", "claimed_label": "inference", "t": "2026-04-29T07:20:20Z"})
        + "\n"
    )
    frame = read_labels(_bad(tmp_path, "workload_labels.jsonl", text))
    assert frame["event"].to_list() == ["start", "end"] and frame["claimed"].to_list() == ["inference"] * 2
    assert frame["t"].to_list() == [10.5, T_0720_20] and frame["truth"][1] is None
    with pytest.raises(InputError) as info:
        read_labels(_bad(tmp_path, "l2.jsonl", text + '{"event": "middle", "phase": "a", "t": 1}\n'))
    assert info.value.line == 3


def test_steps_chain_is_verified_and_flattened(tmp_path: Path) -> None:
    records = rechain(
        [
            {
                "kind": "train_step",
                "step": i,
                "loss": 3.0 - i,
                "t": float(i),
                "grad_norms_per_group": {"embed": 0.0, "blocks": 1.0 + i},
            }
            for i in range(3)
        ]
    )
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    log = read_steps(path)
    assert log.intact and not log.torn and log.frame.height == 3
    assert log.frame["grad_norms_per_group.blocks"].to_list() == [1.0, 2.0, 3.0]
    records[1]["loss"] = 0.1  # tamper with one record
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"kind": "tra')
    log = read_steps(path)
    assert log.torn and len(log.breaks) == 1 and log.breaks[0].suspect_index == 1


def test_parse_wallclock_forms() -> None:
    assert parse_wallclock("2026/04/29 07:20:20.991") == pytest.approx(T_0720_20 + 0.991)
    assert parse_wallclock("[2026-04-29 07:20:20]") == T_0720_20
    assert parse_wallclock("2026-04-29T09:20:20+02:00") == T_0720_20
    assert parse_wallclock("1777447220.25") == T_0720_20 + 0.25
    assert parse_wallclock("not a time") is None
