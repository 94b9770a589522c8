"""JSONL end to end, every figure a whole process timed from outside (start-up included).

For one generated trace written as the reference writes JSONL (``json.dumps`` per line;
the same file as ``check_throughput.py --jsonl-sizes``), each round runs, in a rotating
order so that no contender always goes first after a quiet spell:
  - ours: ``inspectorate check FILE -c COMMITMENT -q`` (read, byte-for-byte proof, hash
    chain, every rule kind),
  - the reference checker (``json.loads`` per line + ``run_deterministic``, imported from
    ``--reference``, never copied) on the same file and commitment,
  - the machine's limit: a plain Python process that reads the file's bytes and takes one
    SHA-256 per line (issue 22's yardstick: no parse, no rules),
  - CLI start-up: ``inspectorate --version`` and ``inspectorate check --help``.
Our package is byte-compiled first (``compileall``, as ``pip install`` leaves a wheel:
without it, under PYTHONDONTWRITEBYTECODE, every run compiles ~35 modules from source,
~0.05 CPU s that no installed copy pays); ``--source-only`` skips that. The reference's
one module (900 lines, ~0.01 s to compile of its ~12 s) is left as it is: its directory
is shared and not ours to write.
It prints one JSON line per round (wall seconds; CPU seconds of each child, user + system
over all its threads, steadier than wall time on a shared box; the load average before
and after the round) and a summary of medians: records/s, ours / reference and ours / limit, both ratios per round first
(contenders in one round share the machine's load) and then their median. Goals (issue
22): >= 10x the reference, within 2x of the limit, start-up under 0.2 s.

Usage: python bench/jsonl_e2e.py --records 300000 --rounds 5 --workdir /tmp/benchdata
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT = (
    "import hashlib, sys\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "sha = hashlib.sha256\n"
    "n = sum(1 for line in raw.split(b'\\n') if line and sha(line).digest())\n"
    "print(n)\n"
)
REFERENCE = (
    "import json, sys\n"
    "sys.path.insert(0, sys.argv[3])\n"
    "from inspector.consistency_checks import run_deterministic\n"
    "commitment = json.load(open(sys.argv[2]))\n"
    "with open(sys.argv[1]) as handle:\n"
    "    records = [json.loads(line) for line in handle if line.strip()]\n"
    "print(len(run_deterministic(commitment, records)))\n"
)


def prepare(records: int, workdir: Path) -> tuple[Path, Path, Path]:
    """The JSONL file (generated once, cached) and the all-rules commitment as YAML (ours)
    and JSON (the reference reads the same values, typed)."""
    sys.path.insert(0, str(HERE))
    import check_throughput as ct  # the shared generator and all-rules commitment

    for step in ("--gen", "--write-jsonl"):
        subprocess.run(
            [
                sys.executable,
                str(HERE / "check_throughput.py"),
                step,
                str(records),
                "--workdir",
                str(workdir),
            ],
            check=True,
            capture_output=True,
        )
    chips, hours, _ = ct._shape(records, workdir)
    commitment = ct.all_rules_commitment(chips, hours)
    as_json = workdir / f"commitment_{records}.json"
    as_json.write_text(json.dumps(commitment))
    as_yaml = workdir / f"commitment_{records}.yml"
    import yaml

    as_yaml.write_text(yaml.safe_dump(commitment))  # safe_dump spells floats YAML reads back as floats
    return ct._jsonl_path(records, workdir), as_yaml, as_json


def compile_package(src: Path | None) -> str:
    """Byte-compile the inspectorate package imported with ``src`` on the path (None:
    this process's path), as pip does on install; returns its directory."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    where = subprocess.run(
        [sys.executable, "-c", "import inspectorate, os; print(os.path.dirname(inspectorate.__file__))"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], check=True, capture_output=True)
    return where


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child, all its threads)."""
    env = None
    if argv[0].startswith("PYTHONPATH="):  # a contender run from another source tree
        env = {**os.environ, "PYTHONPATH": argv[0].split("=", 1)[1]}
        argv = argv[1:]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode not in ok:
        raise SystemExit(f"{argv[:4]} exited {run.returncode}: {run.stderr.strip()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def contenders(
    path: Path, as_yaml: Path, as_json: Path, reference: Path | None, baseline: Path | None
) -> dict[str, list[str]]:
    py = sys.executable
    out = {
        "ours": [py, "-m", "inspectorate.cli", "check", str(path), "-c", str(as_yaml), "-q"],
        "limit": [py, "-c", LIMIT, str(path)],
        "version": [py, "-m", "inspectorate.cli", "--version"],
        "check_help": [py, "-m", "inspectorate.cli", "check", "--help"],
    }
    if baseline is not None:  # the same command from another checkout (e.g. before a change)
        out["ours_baseline"] = [f"PYTHONPATH={baseline}", *out["ours"]]
    if reference is not None:
        out["reference"] = [py, "-c", REFERENCE, str(path), str(as_json), str(reference)]
    return out


def one_round(k: int, runs: dict[str, list[str]]) -> dict:
    names = list(runs)
    order = names[k % len(names) :] + names[: k % len(names)]  # rotate who goes first
    row: dict = {"round": k, "load_before": round(os.getloadavg()[0], 2)}
    for name in order:
        wall, cpu = timed(runs[name], ok=(0, 1) if name.startswith("ours") else (0,))
        row[name], row[f"{name}_cpu"] = round(wall, 3), round(cpu, 3)
    row["load_after"] = round(os.getloadavg()[0], 2)
    if "reference" in row:
        row["speedup_vs_reference"] = round(row["reference"] / row["ours"], 2)
        row["speedup_vs_reference_cpu"] = round(row["reference_cpu"] / row["ours_cpu"], 2)
    row["ours_over_limit"] = round(row["ours"] / row["limit"], 2)
    row["ours_over_limit_cpu"] = round(row["ours_cpu"] / row["limit_cpu"], 2)
    if "ours_baseline" in row:
        row["speedup_vs_baseline"] = round(row["ours_baseline"] / row["ours"], 2)
        row["speedup_vs_baseline_cpu"] = round(row["ours_baseline_cpu"] / row["ours_cpu"], 2)
    return row


def summary(rows: list[dict], records: int) -> dict:
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "round"}
    out = {
        "records": records,
        "rounds": len(rows),
        "median_load": round(med["load_before"], 2),
        "ours_s": round(med["ours"], 3),
        "ours_rec_per_s": round(records / med["ours"]),
        "limit_s": round(med["limit"], 3),
        "limit_rec_per_s": round(records / med["limit"]),
        "ours_over_limit_median_of_rounds": round(med["ours_over_limit"], 2),
        "ours_cpu_s": round(med["ours_cpu"], 3),
        "limit_cpu_s": round(med["limit_cpu"], 3),
        "ours_over_limit_cpu_median_of_rounds": round(med["ours_over_limit_cpu"], 2),
        "version_s": round(med["version"], 3),
        "version_cpu_s": round(med["version_cpu"], 3),
        "check_help_s": round(med["check_help"], 3),
        "check_help_cpu_s": round(med["check_help_cpu"], 3),
        "load_avg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        "goals": "speedup >= 10, ours/limit <= 2, start-up < 0.2 s (wall; CPU beside it)",
    }
    if "ours_baseline" in med:
        out |= {
            "baseline_s": round(med["ours_baseline"], 3),
            "baseline_cpu_s": round(med["ours_baseline_cpu"], 3),
            "speedup_vs_baseline": med["speedup_vs_baseline"],
            "speedup_vs_baseline_cpu": med["speedup_vs_baseline_cpu"],
        }
    if "reference" in med:
        out |= {
            "reference_s": round(med["reference"], 3),
            "reference_rec_per_s": round(records / med["reference"]),
            "speedup_median_of_rounds": round(med["speedup_vs_reference"], 2),
            "reference_cpu_s": round(med["reference_cpu"], 3),
            "speedup_cpu_median_of_rounds": round(med["speedup_vs_reference_cpu"], 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="keep the generated trace here (reused)")
    found = [p / "shared" / "reference" for p in HERE.parents if (p / "shared" / "reference").is_dir()]
    default_ref = found[0] if found else HERE.parents[1] / "shared" / "reference"
    parser.add_argument("--reference", type=Path, default=default_ref, help="the reference checker's root")
    parser.add_argument(
        "--baseline-src", type=Path, help="also time `check` from this src/ (another checkout)"
    )
    parser.add_argument(
        "--source-only", action="store_true", help="do not byte-compile our package first (see above)"
    )
    args = parser.parse_args()
    if not args.source_only:
        compiled = [compile_package(None)] + (
            [compile_package(args.baseline_src)] if args.baseline_src else []
        )
        print(json.dumps({"note": f"byte-compiled (as pip install does): {compiled}"}))
    reference = args.reference if (args.reference / "inspector" / "consistency_checks.py").exists() else None
    if reference is None:
        print(json.dumps({"note": f"reference checker not found at {args.reference}: not compared"}))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        runs = contenders(*prepare(args.records, workdir), reference, args.baseline_src)
        rows = []
        for k in range(args.rounds):
            rows.append(one_round(k, runs))
            print(json.dumps(rows[-1]), flush=True)
        print(json.dumps(summary(rows, args.records)), flush=True)


if __name__ == "__main__":
    main()
