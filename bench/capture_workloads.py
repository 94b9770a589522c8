"""Independent workloads under ``inspectorate capture``: per-phase outcomes of honest
claims and of lies, naive and competent, under the strict and lenient policies; and the
sensor's CPU against the workload's.

The workloads (tests/workloads/) share no code with the testbed: a character-level GRU
trained in one process, a sampling loop from an MLP language model, a loop of matrix
products, an MLP trained data-parallel by 2 gloo processes, and a sampling loop with a
policy-gradient update every k samples. Each run is one capture holding every phase of
one workload: honest phases, then the lies (what it does vs what it claims).
``naive``: its step records tell what it really does; ``competent``: every file it
writes agrees with its claim.

    python bench/capture_workloads.py                 # all five, 6 s a phase
    python bench/capture_workloads.py --lean          # matmul only, short (CI's slow test)
    python bench/capture_workloads.py --json out.json

Needs root (cgroups, network namespaces). Figures on a loaded machine are timings of
that machine: say so when you quote them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "workloads"))
import harness

LIES = (
    "train_as_infer",
    "train_as_eval",
    "big_as_small",
    "hidden_under_idle",
    "tokens_inflated",
    "updates_as_serving",
)


def n_params(name: str, config: dict[str, Any]) -> int:
    """Parameters of each workload's model, by its own formula (no model is built)."""
    vocab = 65  # tinyshakespeare's characters (the generated fallback has fewer)
    if name == "chargru":
        h, layers = config.get("hidden", 192), config.get("layers", 2)
        return vocab * h + layers * (2 * 3 * h * h + 2 * 3 * h) + h * vocab + vocab
    if name == "mlp_lm":
        c, e, h, d = (
            config.get("context", 16),
            config.get("embed", 24),
            config.get("hidden", 512),
            config.get("depth", 2),
        )
        return vocab * e + c * e * h + h + (d - 1) * (h * h + h) + h * vocab + vocab
    if name == "matmul":
        return config.get("width", 384) ** 2 * config.get("depth", 4)
    if name == "ddp_mlp":
        w, d = config.get("width", 512), config.get("depth", 3)
        return 256 * w + w + (d - 1) * (w * w + w) + w * 10 + 10
    if name == "pg_sampler":
        h = config.get("hidden", 256)
        return 32 * h + 4 * (2 * h * h + 2 * h) // 1 + h * 32 + 32
    raise ValueError(name)


WORKLOADS: dict[str, dict[str, Any]] = {
    "chargru": {"script": "chargru.py", "config": {}},
    "mlp_lm": {"script": "mlp_lm.py", "config": {}},
    "matmul": {"script": "matmul.py", "config": {}},
    "ddp_mlp": {"script": "ddp_mlp.py", "config": {"world_size": 2}},
    "pg_sampler": {"script": "pg_sampler.py", "config": {"k": 4}},
}


def plan(name: str, seconds: float, records: str, lean: bool) -> dict[str, Any]:
    """Honest phases, then lies; each phase: (name, do, claimed op, n_params factor, token factor)."""
    n = n_params(name, WORKLOADS[name]["config"])
    rows = [("honest_idle", "idle", "idle", 1, 1), ("honest_serve", "serve", "inference", 1, 1)]
    if not lean:
        rows += [("honest_eval", "eval", "eval", 1, 1), ("honest_train", "train", "training", 1, 1)]
    rows += [
        ("lie_hidden_under_idle", "hidden", "idle", 1, 1),
        ("lie_train_as_infer", "train", "inference", 1, 1),
    ]
    if not lean:
        rows += [
            ("lie_train_as_eval", "train", "eval", 1, 1),
            ("lie_big_as_small", "train", "training", 1 / 20, 1),
            ("lie_tokens_inflated", "train", "inference", 1, 3),
        ]
        if name == "pg_sampler":
            rows.append(("lie_updates_as_serving", "serve_updates", "inference", 1, 1))
    world = WORKLOADS[name]["config"].get("world_size", 1)
    phases = []
    for phase, do, op, size, tokens in rows:
        claim: dict[str, Any] = {"op": op, "label": op}
        if op != "idle":
            claim.update(model=f"bench-{name}", n_params=max(int(n * size), 1))
        if world > 1:
            claim["world_size"] = world
        phases.append({"name": phase, "do": do, "seconds": seconds, "claim": claim, "token_factor": tokens})
    return {"config": WORKLOADS[name]["config"], "records": records, "threads": 1, "phases": phases}


def run_one(name: str, records: str, seconds: float, lean: bool, root: Path) -> list[dict[str, Any]]:
    out = root / f"{name}-{records}"
    proc = harness.capture_run(
        WORKLOADS[name]["script"], plan(name, seconds, records, lean), out, timeout_s=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name}/{records}: capture exited {proc.returncode}: {proc.stderr[-1500:]}")
    strict, lenient = harness.outcomes(out, "strict"), harness.outcomes(out, "lenient")
    prov = json.loads((out / "provenance.json").read_text())
    rows = []
    for phase, res in strict.items():
        flagged = sorted(k for k, v in res["decisions"].items() if v == "inconsistent")
        rows.append(
            {
                "workload": name,
                "records": records,
                "phase": phase,
                "strict": res["outcome"],
                "lenient": lenient[phase]["outcome"],
                "lenient_certified": lenient[phase]["certified"],
                "flagged_by": flagged,
                "unverifiable": sorted(k for k, v in res["decisions"].items() if v == "unverifiable"),
                "tree_cores": res["tree_cores"],
            }
        )
    rows.append({"workload": name, "records": records, "phase": "_overhead", **overhead(out, prov)})
    return rows


def overhead(run: Path, prov: dict[str, Any]) -> dict[str, Any]:
    from inspectorate.trace.streams import read_sensor

    frame = read_sensor(run / "sensor.jsonl").frame
    workload = float(frame["cpu_s"].max() or 0.0)
    sensor = (prov.get("overhead") or {}).get("sensor_cpu_s")
    return {
        "workload_cpu_s": workload,
        "sensor_cpu_s": sensor,
        "sensor_over_workload": sensor / workload if sensor is not None and workload > 0 else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workload | phase | naive: strict outcome | naive: lenient | naive: flagged by | competent: strict outcome | competent: lenient | competent: flagged by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["workload"], r["phase"], r["records"]): r for r in rows if r["phase"] != "_overhead"}
    for wl, phase in dict.fromkeys((r["workload"], r["phase"]) for r in rows if r["phase"] != "_overhead"):
        cells = []
        for mode in ("naive", "competent"):
            r = by.get((wl, phase, mode))
            lenient = "certified" if r and r["lenient_certified"] else "not certified"
            cells += [r["strict"], lenient, ", ".join(r["flagged_by"]) or "-"] if r else ["", "", ""]
        lines.append(f"| {wl} | {phase} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| workload | records | workload CPU-s | sensor CPU-s | sensor / workload |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        if r["phase"] == "_overhead":
            ratio = r["sensor_over_workload"]
            lines.append(
                f"| {r['workload']} | {r['records']} | {r['workload_cpu_s']:.1f} | {r['sensor_cpu_s'] or 0:.2f} | "
                + (f"{100 * ratio:.1f}% |" if ratio is not None else "- |")
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--records", default="naive,competent")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds a phase")
    ap.add_argument("--lean", action="store_true", help="matmul only, naive, 4 phases")
    ap.add_argument("--out", type=Path, default=None, help="keep the run dirs here")
    ap.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    args = ap.parse_args(argv)
    names = ["matmul"] if args.lean else args.workloads.split(",")
    modes = ["naive"] if args.lean else args.records.split(",")
    root = args.out or Path(tempfile.mkdtemp(prefix="capture-workloads-"))
    rows: list[dict[str, Any]] = []
    for name in names:
        for mode in modes:
            rows += run_one(name, mode, args.seconds, args.lean, root)
            print(f"done {name}/{mode}", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
