"""Build the tiny run directory the run-dir attack tests use: ``small_run/``.

Three 10-second phases on one host with two ranks, formats as docs/DESIGN.md and
inspectorate.capture write them:
  honest_train  claimed training,  truth training  (collectives every 0.5 s, 100% util)
  honest_infer  claimed inference, truth inference (no collectives, ~55% util)
  lie_train     claimed inference, truth training  (what the attacks try to hide)
Deterministic (seeded); run ``python tests/data/rundirs_attacks/build.py`` to rebuild.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from inspectorate.trace import canonical_json, rechain

T0 = 1777450000.0
PHASES = [
    ("honest_train", "training", "training"),
    ("honest_infer", "inference", "inference"),
    ("lie_train", "inference", "training"),
]
SECONDS = 10


def nvsmi_ts(t: float) -> str:
    return (
        time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(int(t))) + f".{int(round((t % 1) * 1000)) % 1000:03d}"
    )


def build(out: Path) -> Path:
    rng = random.Random(7)
    out.mkdir(parents=True, exist_ok=True)
    labels, cpu, nv, coll, steps, windows = [], [], [], [], [], []
    net = []
    rx = tx = 10_000_000
    for k, (phase, claimed, truth) in enumerate(PHASES):
        start, end = T0 + k * SECONDS, T0 + (k + 1) * SECONDS - 0.001
        labels += [
            {"event": "start", "phase": phase, "claimed": claimed, "truth": truth, "t": start},
            {"event": "end", "phase": phase, "claimed": claimed, "truth": truth, "t": end},
        ]
        train = truth == "training"
        for s in range(SECONDS):
            t = start + s + 0.25
            util = 100 if train else 55
            cpu.append(
                f"{t:.3f},{(95 if train else 40) + rng.uniform(-2, 2):.1f},100.0,4000.0,25.0,"
                f"{(900 if train else 300)}.0,{1.5 if train else 0.6:.2f},{1000 + s}"
            )
            for gpu in (0, 1):
                nv.append(
                    f"{nvsmi_ts(t)},{gpu},NVIDIA H100 80GB HBM3,{util},{util - 10},"
                    f"{18787 if train else 2079},81559,{(575 if train else 174) + rng.uniform(-3, 3):.2f},1980,2619,"
                    f"{54 if train else 34}"
                )
            sent = 0
            if train:
                for half in (0.0, 0.5):
                    coll.append(
                        {
                            "t": t + half,
                            "rank": 0,
                            "world_size": 2,
                            "op": "allreduce",
                            "bytes": 4 * 2**20,
                            "duration_s": 0.002,
                            "dtype": "float32",
                            "phase": phase,
                        }
                    )
                    sent += 4 * 2**20
            rx, tx = rx + sent + 1200, tx + sent + 800
            net.append((t + 0.5, rx, tx))
            kind = "train_step" if train else "infer_token"
            row = {
                "schema": "inspectorate.step/1",
                "kind": kind,
                "t": t,
                "phase": phase,
                "rank": 0,
                "step": s,
                "record_id": f"step_r0_{len(steps):08d}",
            }
            row.update(
                {
                    "loss": 3.0 - 0.01 * s,
                    "grad_norm": 1.2,
                    "lr": 3e-4,
                    "tokens": 4096,
                    "forward_ms": 40.0,
                    "backward_ms": 80.0,
                    "optimizer_ms": 10.0,
                }
                if train
                else {"entropy": 2.1, "top1_prob": 0.4, "latency_ms": 12.0, "token": 42}
            )
            steps.append(row)
        windows.append(
            {
                "record_id": f"rec_{k:06d}",
                "prev_record_hash": "",
                "chip_id": "host0-gpu0",
                "job_id": "job_small",
                "operator": "lab",
                "cluster_region": "local",
                "window_start": _iso(start),
                "window_end": _iso(start + SECONDS - 1),
                "op_type": claimed,
                "flops": 4e14 if train else 1e14,
                "tokens_processed": 40960,
                "batch_size": 8,
                "sequence_length": 512,
                "model_hash_prefix": "sha256:0123456789abcdef",
                "dataset_fingerprint": "sha256:fedcba9876543210",
                "upstream_refs": [f"rec_{k - 1:06d}"] if k else [],
                "data_source_tags": ["corpus:tiny-shakespeare"],
                "code_commit": "git:lab/testbed@abc1234",
                "config_hash": "sha256:00112233445566aa",
            }
        )
    _jsonl(out / "workload_labels.jsonl", labels, sort=True)
    (out / "provenance.json").write_text(
        json.dumps(
            {
                "host": "host0",
                "gpus": 2,
                "driver": "550.54",
                "code_commit": "git:lab/testbed@abc1234",
                "clock_offset_s": 0.0,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )
    (out / "cpu.csv").write_text(
        "timestamp,cpu_percent,per_cpu_max,mem_used_mb,mem_percent,proc_rss_mb,load1,ctx_switches\n"
        + "".join(line + "\n" for line in cpu),
        encoding="utf-8",
    )
    (out / "nvsmi.csv").write_text(
        "timestamp,index,name,utilization.gpu,utilization.memory,memory.used,memory.total,"
        "power.draw,clocks.sm,clocks.mem,temperature.gpu\n" + "".join(line + "\n" for line in nv),
        encoding="utf-8",
    )
    (out / "netdev.log").write_text("".join(_netdev(t, r, x) for t, r, x in net), encoding="utf-8")
    _jsonl(out / "collectives.jsonl", coll)
    (out / "steps.jsonl").write_text(
        "".join(canonical_json(r) + "\n" for r in rechain(steps)), encoding="utf-8"
    )
    (out / "windows.jsonl").write_text(
        "".join(canonical_json(r) + "\n" for r in rechain(windows)), encoding="utf-8"
    )
    return out


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"


def _jsonl(path: Path, rows: list[dict], sort: bool = False) -> None:
    path.write_text(
        "".join(json.dumps(r, sort_keys=sort, separators=(",", ":")) + "\n" for r in rows), encoding="utf-8"
    )


def _netdev(t: float, rx: int, tx: int) -> str:
    head = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    )
    lo = f"    lo: {5000:>8} {50:>8} 0 0 0 0 0 0 {5000:>8} {50:>8} 0 0 0 0 0 0\n"
    eth = f"  eth0: {rx:>8} {rx // 1500:>8} 0 0 0 0 0 0 {tx:>8} {tx // 1500:>8} 0 0 0 0 0 0\n"
    return f"--- {t:.3f} ---\n" + head + lo + eth


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("small_run")))
