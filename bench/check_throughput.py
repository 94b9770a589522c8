"""Throughput of `check` on generated traces: chain verification and the full rule set.

For each size (records) a child process generates a Parquet trace (not timed), then
measures, in the same run:
  - raw hashlib SHA-256 over the records' canonical bytes (the ceiling for any chain check),
  - chain verification (canonical bytes built column-wise + SHA-256 + comparison), as
    `check` runs it (worker processes above 500k records) and in one process,
  - the full rule set (every registered kind, implicit ones included),
  - read time and the check's peak RSS (before the baselines, which hold extra copies).
Goals (issue 3): rules >= 1M records/s, chain >= 50% of the raw SHA-256 rate,
memory <= 2 GB at 10^7 records. Usage: python bench/check_throughput.py --sizes 100000 1000000

With ``--baseline REF`` (a git commit, e.g. ``main``; issue 22) each size is measured
twice in the same run, first with REF's ``src`` (extracted by ``git archive`` into a
temporary directory, this tree's compiled extensions copied in), then with this tree,
each in a fresh process on the same file; the row gives both rule-set rates, their
ratio and the load average before and after. The box is shared: the ratio measured in
one run is the figure to trust, not the absolute rates. ``--rules-only`` skips the
chain's one-process and raw SHA-256 baselines (minutes at 10^7 on a loaded box).

With ``--jsonl-sizes N ...`` (issue 14) it also writes each generated trace as the
reference writes JSONL (``json.dumps`` per line) and times, in the same run and each in
its own process, `check` end to end (read + chain + every rule) against the reference
checker (``json.loads`` per line + ``run_deterministic``) on the same file and
commitment. The reference is imported from ``--reference`` (default: ../shared/reference
next to this repository); without it the comparison is skipped with a note.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def all_rules_commitment(chips: int, hours: float) -> dict:
    """A commitment listing every non-implicit rule kind (the implicit ones run on every
    check), fitted so the honest generated trace passes."""
    end_h = int(hours * 3600)
    return {
        "id": "bench-all-rules",
        "deterministic_rules": [
            {"kind": "aggregate_flop_cap", "op_type": "training", "threshold": 1e30},
            {"kind": "lineage_flop_cap", "op_type": "training", "threshold": 1e30},
            {"kind": "aggregate_flop_cap", "op_type": "*", "scope": "global", "threshold": 1e30},
            {"kind": "idle_must_be_zero"},
            {"kind": "op_type_flop_ratio"},
            {"kind": "max_flop_per_token", "ceiling": 8e10},
            {"kind": "min_flop_per_token", "floor": 3e10},
            {"kind": "batch_token_consistency"},
            {"kind": "forbidden_data_source_tags", "tags": ["corpus:cbrn-*"]},
            {"kind": "forbidden_operators", "operators": ["shadow-*"]},
            {"kind": "require_upstream_refs"},
            {"kind": "upstream_refs_dag_validity"},
            {"kind": "allowed_dataset_fingerprints", "allowed": [_h("pretrain-data"), _h("user-requests")]},
            {"kind": "allowed_op_types", "allowed": ["training", "inference", "eval", "idle"]},
            {"kind": "cross_job_fingerprint_consistency"},
            {"kind": "code_commit_per_job_stable"},
            {"kind": "chip_job_stability"},
            {"kind": "operator_op_type_uniqueness"},
            {"kind": "training_unique_per_model"},
            {"kind": "audit_window_uniqueness"},
            {"kind": "model_uniqueness_per_job"},
            {"kind": "operator_uniqueness_per_job"},
            {"kind": "model_hash_consistency"},
            {"kind": "training_base_models", "allowed": [_h("train-model")]},
            {"kind": "no_splitting", "threshold": 1e30},
            {"kind": "op_type_honesty"},
            {"kind": "dataset_provenance"},
            {"kind": "batch_token_sanity"},
            {
                "kind": "window_completeness",
                "expected_window_start": "2026-04-24T09:00:00Z",
                "expected_window_end": _iso(end_h),
                "expected_chips": [f"gpu-gen-{c:05d}" for c in range(chips)],
            },
            {"kind": "idle_record_honesty"},
            {"kind": "job_fragmentation", "max_jobs_per_chip": 1},
            {"kind": "require_head"},
            {"kind": "window_slots_to_end", "audit_window_end": _iso(end_h)},
        ],
    }


def _h(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _iso(seconds: int) -> str:
    from inspectorate.trace import format_time, parse_time

    return format_time(parse_time("2026-04-24T09:00:00Z") + seconds)


def _shape(records: int, workdir: Path) -> tuple[int, float, Path]:
    chips = 1000 if records >= 1_000_000 else 100
    return chips, records / chips / 60, workdir / f"bench_{records}.parquet"


def generate(records: int, workdir: Path) -> float:
    """Write the trace once (cached in workdir); generation is not part of the measurement."""
    from inspectorate.trace import GenSpec, write_generated

    chips, hours, path = _shape(records, workdir)
    if path.exists():
        return 0.0
    t = time.perf_counter()
    partial = path.with_name(path.name + ".partial.parquet")
    write_generated(GenSpec(chips=chips, hours=hours, scenario="training"), partial)
    partial.with_name(partial.name + ".head.json").rename(path.with_name(path.name + ".head.json"))
    partial.rename(path)  # only complete traces are reused
    return time.perf_counter() - t


def measure(records: int, workdir: Path, rules_only: bool = False) -> dict:
    from inspectorate.commitment import check, known_kinds, load_commitment
    from inspectorate.trace import read_trace
    from inspectorate.trace._fastchain import canonical_lines, chunk_chain_breaks
    from inspectorate.trace._io import iter_parquet_chunks

    chips, hours, path = _shape(records, workdir)
    t = time.perf_counter()
    trace = read_trace(path)
    read_s = time.perf_counter() - t
    n = len(trace)
    t = time.perf_counter()
    breaks = trace.chain_breaks()
    chain_s = time.perf_counter() - t
    commitment = load_commitment(all_rules_commitment(chips, hours))
    marks = [("", _cpu())]  # CPU seconds (all threads) as each rule finishes
    t = time.perf_counter()
    verdict = check(trace, commitment, on_rule=lambda rule_id: marks.append((rule_id, _cpu())))
    check_s, check_cpu = time.perf_counter() - t, _cpu() - marks[0][1]
    rules_s = check_s - verdict.timings.get("hash_chain_intact", 0.0)
    chain_cpu = sum(b[1] - a[1] for a, b in zip(marks, marks[1:]) if b[0] == "hash_chain_intact")
    slowest = sorted(verdict.timings.items(), key=lambda kv: -kv[1])[:3]
    # CPU seconds per rule (every thread), the chain left out: the profile to trust on a
    # loaded box, where a rule's wall seconds mostly measure its wait for a core
    rule_cpu = {b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:]) if b[0] != "hash_chain_intact"}
    slowest_cpu = sorted(rule_cpu.items(), key=lambda kv: -kv[1])[:5]
    check_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the baselines below
    row = {
        "records": n,
        "kinds_available": len(known_kinds()),
        "rules_evaluated": len(verdict.rules_evaluated),
        "verdict": verdict.verdict,
        "violations": [v.rule_id for v in verdict.violations][:5],
        "chain_breaks": len(breaks),
        "read_s": round(read_s, 2),
        "chain_rec_per_s": round(n / chain_s),
        "rules_s": round(rules_s, 2),
        "rules_rec_per_s": round(n / rules_s),
        "check_total_rec_per_s": round(n / check_s),
        # CPU seconds of every thread: less sensitive than wall seconds to the box's load
        "rules_cpu_s": round(check_cpu - chain_cpu, 2),
        # records per CPU-second of the rule set: what one core would sustain alone
        "rules_rec_per_cpu_s": round(n / max(check_cpu - chain_cpu, 1e-9)),
        "slowest_rules": [(k, round(v, 3)) for k, v in slowest],
        "slowest_rules_cpu": [(k, round(v, 3)) for k, v in slowest_cpu],
        "lean_frame": trace.lean,
        "check_peak_rss_mb": round(check_peak_mb),
    }
    if rules_only:
        return row
    t = time.perf_counter()
    chunk_chain_breaks(iter_parquet_chunks(path))
    seq_s = time.perf_counter() - t
    # the raw ceiling: hash the same canonical bytes, prepared beforehand, one chunk at a time
    raw_s = 0.0
    for chunk in iter_parquet_chunks(path):
        lines = [line.encode() for line in canonical_lines(chunk)]
        t = time.perf_counter()
        for b in lines:
            hashlib.sha256(b).hexdigest()
        raw_s += time.perf_counter() - t
    return {
        **row,
        "raw_sha256_rec_per_s": round(n / raw_s),
        "chain_vs_raw": round(raw_s / chain_s, 3),
        "chain_1proc_rec_per_s": round(n / seq_s),
        "chain_1proc_vs_raw": round(raw_s / seq_s, 3),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _jsonl_path(records: int, workdir: Path) -> Path:
    return workdir / f"bench_{records}.ref.jsonl"


def write_reference_jsonl(records: int, workdir: Path) -> None:
    """The generated trace as the reference's writer spells it (json.dumps, file order)."""
    import pyarrow.parquet as pq

    from inspectorate.trace._frame import records_from_frame
    from inspectorate.trace._io import _typed, stored_columns

    path = _jsonl_path(records, workdir)
    if path.exists():
        return
    parquet = _shape(records, workdir)[2]
    handle = pq.ParquetFile(parquet)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as out:
        for batch in handle.iter_batches(batch_size=100_000, columns=stored_columns(handle)):
            frame = _typed(batch, parquet, stored_columns(handle))
            out.writelines(json.dumps(r) + "\n" for r in records_from_frame(frame))
    partial.rename(path)


def measure_ours_jsonl(records: int, workdir: Path) -> dict:
    from inspectorate.commitment import check, load_commitment
    from inspectorate.trace import read_trace
    from inspectorate.trace._ccols import compiled

    chips, hours, _ = _shape(records, workdir)
    commitment = load_commitment(all_rules_commitment(chips, hours))
    t = time.perf_counter()
    trace = read_trace(_jsonl_path(records, workdir))
    read_s = time.perf_counter() - t
    verdict = check(trace, commitment)
    total = time.perf_counter() - t
    return {
        "ours_s": round(total, 2),
        "ours_read_s": round(read_s, 2),
        "ours_chain_s": round(verdict.timings.get("hash_chain_intact", 0.0), 2),
        "ours_verdict": verdict.verdict,
        "compiled": compiled(),
        "ours_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def measure_reference_jsonl(records: int, workdir: Path, reference: Path) -> dict:
    sys.path.insert(0, str(reference))
    from inspector.consistency_checks import run_deterministic  # the oracle, imported, never copied

    chips, hours, _ = _shape(records, workdir)
    commitment = all_rules_commitment(chips, hours)
    t = time.perf_counter()
    with open(_jsonl_path(records, workdir)) as handle:
        recs = [json.loads(line) for line in handle if line.strip()]
    violations = run_deterministic(commitment, recs)
    return {
        "reference_s": round(time.perf_counter() - t, 2),
        "reference_violations": len(violations),
        "reference_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def baseline_src(ref: str, into: Path) -> Path:
    """REF's ``src`` tree, extracted into ``into`` (with this tree's compiled extensions,
    which ``git archive`` does not hold)."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    for ext in (root / "src" / "inspectorate" / "trace").glob("*.so"):
        shutil.copy2(ext, into / "src" / "inspectorate" / "trace" / ext.name)
    return into / "src"


def measure_pair(size: int, workdir: Path, base: Path | None, rules_only: bool) -> dict:
    """One size: the baseline's child (when given), then ours, on the same file."""
    flags = ["--child", str(size), "--workdir", str(workdir)] + (["--rules-only"] if rules_only else [])
    load_before = round(os.getloadavg()[0], 2)
    theirs, err = (None, "")
    if base is not None:
        env = {**os.environ, "PYTHONPATH": str(base)}
        theirs, err = _child(*flags, env=env)
    ours, err_ours = _child(*flags)
    if ours is None:
        return {"records": size, "error": err_ours}
    row = {**ours, "load_before": load_before, "load_after": round(os.getloadavg()[0], 2)}
    if base is not None:
        if theirs is None:
            return {**row, "baseline_error": err}
        row["baseline_rules_rec_per_s"] = theirs["rules_rec_per_s"]
        row["baseline_slowest_rules"] = theirs["slowest_rules"]
        row["baseline_check_peak_rss_mb"] = theirs["check_peak_rss_mb"]
        row["baseline_rules_cpu_s"] = theirs["rules_cpu_s"]
        row["baseline_slowest_rules_cpu"] = theirs.get("slowest_rules_cpu")  # an older REF lacks it
        row["rules_cpu_ratio_vs_baseline"] = round(theirs["rules_cpu_s"] / max(ours["rules_cpu_s"], 1e-9), 2)
        row["rules_speedup_vs_baseline"] = round(theirs["rules_s"] / ours["rules_s"], 2)
        row["same_verdict_as_baseline"] = (theirs["verdict"], theirs["violations"]) == (
            ours["verdict"],
            ours["violations"],
        )
    return row


def _child(*args: str, env: dict | None = None) -> tuple[dict | None, str]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if out.returncode:
        return None, (out.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(out.stdout.strip().splitlines()[-1]), ""


def compare_jsonl(size: int, workdir: Path, reference: Path | None) -> dict:
    """Ours vs the reference on the same JSONL file, each in a fresh process, one after the other."""
    _child("--gen", str(size), "--workdir", str(workdir))
    _child("--write-jsonl", str(size), "--workdir", str(workdir))
    ours, err = _child("--child-jsonl", str(size), "--workdir", str(workdir))
    row: dict = {"records": size, "format": "jsonl (reference layout)", **(ours or {"error": err})}
    if reference is None or not (reference / "inspector" / "consistency_checks.py").exists():
        row["note"] = f"reference checker not found at {reference}: comparison skipped"
        return row
    ref, err = _child("--child-ref", str(size), "--workdir", str(workdir), "--reference", str(reference))
    row.update(ref or {"reference_error": err})
    if ours and ref:
        row["speedup_vs_reference"] = round(ref["reference_s"] / ours["ours_s"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, help="keep generated traces here (reused across runs)")
    parser.add_argument(
        "--jsonl-sizes", type=int, nargs="*", default=[], help="also compare with the reference"
    )
    default_ref = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    parser.add_argument("--reference", type=Path, default=default_ref, help="the reference checker's root")
    parser.add_argument("--baseline", help="a git commit: measure its rule set in the same run (issue 22)")
    parser.add_argument("--rules-only", action="store_true", help="skip the chain's baselines")
    for hidden in ("--child", "--gen", "--write-jsonl", "--child-jsonl", "--child-ref"):
        parser.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gen:
        print(json.dumps({"generate_s": round(generate(args.gen, args.workdir), 2)}))
        return
    if args.child:
        print(json.dumps(measure(args.child, args.workdir, args.rules_only)))
        return
    if args.write_jsonl:
        write_reference_jsonl(args.write_jsonl, args.workdir)
        print("{}")
        return
    if args.child_jsonl:
        print(json.dumps(measure_ours_jsonl(args.child_jsonl, args.workdir)))
        return
    if args.child_ref:
        print(json.dumps(measure_reference_jsonl(args.child_ref, args.workdir, args.reference)))
        return
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as src_tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        base = baseline_src(args.baseline, Path(src_tmp)) if args.baseline else None
        for size in args.jsonl_sizes:
            print(json.dumps(compare_jsonl(size, workdir, args.reference)), flush=True)
        for size in args.sizes:  # generation, then measurement, each in its own process
            gen, err = _child("--gen", str(size), "--workdir", str(workdir))
            if gen is None:
                print(json.dumps({"records": size, "error": err}))
                continue
            print(json.dumps({**measure_pair(size, workdir, base, args.rules_only), **gen}), flush=True)


if __name__ == "__main__":
    main()
