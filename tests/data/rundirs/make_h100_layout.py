"""Build tests/data/rundirs/h100_two_hosts: a tiny run dir in the seed's H100 layout.

Run from the repo root: ``python tests/data/rundirs/make_h100_layout.py``. Output is
deterministic (fixed times, gzip mtime 0) so the committed files equal a fresh build.

Layout: <host>/phases/<phase>/{nvsmi.csv, dcgm.csv, netdev.log, nccl_<host>_<pid>.log.gz}
plus <host>/workload_labels.jsonl and <host>/provenance.json, for two hosts and two
phases: an honest training phase (NCCL all-reduces, ~575 W) and an idle phase (no
NCCL log at all, ~75 W), numbers modelled on the seed write-up's excerpts.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "h100_two_hosts"
T0 = 1777447220.0  # 2026-04-29 07:20:20 UTC
PHASES = [  # name, claimed, truth, start offset s, seconds, power W, util %
    ("honest_pretrain_small", "pretrain", "pretrain", 0, 3, 575.0, 100),
    ("idle_baseline", "idle", "idle", 10, 3, 75.0, 0),
]
HEADER = (
    "timestamp, index, name, utilization.gpu [%], utilization.memory [%], memory.used [MiB], "
    "memory.total [MiB], power.draw [W], clocks.current.sm [MHz], clocks.current.memory [MHz], temperature.gpu"
)


def stamp(t: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(int(t))) + f".{int(round((t % 1) * 1000)):03d}"


def nvsmi(t0: float, seconds: int, power: float, util: int) -> str:
    mem = 18787 if util else 0
    rows = [
        f"{stamp(t0 + s + 0.001 * g)}, {g}, NVIDIA H100 80GB HBM3, {util} %, {util // 2} %, {mem} MiB, "
        f"81559 MiB, {power + g:.2f} W, 1980 MHz, 2619 MHz, {34 + util // 5 + g}"
        for s in range(seconds)
        for g in (0, 1)
    ]
    return "\n".join([HEADER, *rows]) + "\n"


def dcgm(seconds: int, util: int) -> str:
    head = "#Entity   GRACT   SMACT   SMOCC   TENSO   DRAMA   PCITX   PCIRX   NVLTX   NVLRX\nID\n"
    act = util / 100
    rows = [
        f"GPU {g}     {act:.3f}   {act * 0.9:.3f}   {act * 0.4:.3f}   N/A     N/A     {int(1e8 * act) + 1000}"
        f"   {int(9e7 * act) + 2000}   N/A     N/A"
        for _ in range(seconds * 10)
        for g in (0, 1)
    ]
    return head + "\n".join(rows) + "\n"


def netdev(t0: float, seconds: int, rate: int) -> str:
    out = []
    for s in range(seconds):
        out += [
            f"--- {t0 + s:.3f} ---",
            "Inter-|   Receive                                                |  Transmit",
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
            f"    lo: {1000 + s} 10 0 0 0 0 0 0 {1000 + s} 10 0 0 0 0 0 0",
            f"  eth0: {5000000 + rate * s} {4000 + s} 0 0 0 0 0 0 {2000000 + rate * s} {3000 + s} 0 0 0 0 0 0",
        ]
    return "\n".join(out) + "\n"


def nccl(host: str, pid: int, rank: int, steps: int) -> bytes:
    comm = f"0x55d4c0a1b2c{rank}"
    lines = [
        f"{host}:{pid}:{pid + 50} [0] NCCL INFO comm {comm} rank {rank} nranks 2 cudaDev 0 nvmlDev {rank} "
        f"busId 18000 commId 0x9f2c3a1b5e7d4c11 - Init COMPLETE"
    ]
    lines += [
        f"{host}:{pid}:{pid} [0] NCCL INFO AllReduce: opCount {i:x} sendbuff 0x7f3a42000000 recvbuff "
        f"0x7f3a42000000 count 4194304 datatype 7 op 0 root 0 comm {comm} [nranks=2] stream 0x55d4c0b00000"
        for i in range(steps)
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


def build_host(host: str, rank: int) -> None:
    base = ROOT / host
    labels = []
    for name, claimed, truth, offset, seconds, power, util in PHASES:
        d = base / "phases" / name
        d.mkdir(parents=True, exist_ok=True)
        t0 = T0 + offset
        (d / "nvsmi.csv").write_text(nvsmi(t0, seconds, power, util))
        (d / "dcgm.csv").write_text(dcgm(seconds, util))
        (d / "netdev.log").write_text(netdev(t0, seconds, 2_000_000 if util else 100))
        if util:
            (d / f"nccl_{host}_{4242 + rank}.log.gz").write_bytes(nccl(host, 4242 + rank, rank, 5))
        labels += [
            {"event": "start", "phase": name, "claimed": claimed, "truth": truth, "t": t0},
            {"event": "end", "phase": name, "claimed": claimed, "truth": truth, "t": t0 + seconds},
        ]
    (base / "workload_labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels))
    prov = {
        "hostname": host,
        "gpus": ["NVIDIA H100 80GB HBM3"] * 2,
        "driver": "550.54.15",
        "nccl_version": "2.21.5",
        "clock_offset_s": 0.0,
    }
    (base / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")


if __name__ == "__main__":
    for rank, host in enumerate(("host-a", "host-b")):
        build_host(host, rank)
