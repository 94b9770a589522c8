"""`check` at scale: records/s and peak RSS, local engine vs Dask LocalCluster (issue 14).

For each size a child process generates a Parquet trace (cached in --workdir, not timed,
shared with check_throughput.py), then, each in a fresh process, measures:
  - local: read + check (chain + every rule kind), wall time, records/s, peak RSS;
  - dask: the same through ``check_distributed`` on a LocalCluster (2 workers, threads,
    in-process), with the per-partition cost of the chain map (what a projection to N
    workers scales) and the bytes the keyed shuffles move;
  - raw SHA-256 and chain rates over the same bytes, for the chain-vs-raw ratio.
Usage: python bench/scale.py --sizes 1000000 --workdir /tmp/benchdata [--no-dask]

With ``--partitioned-sizes N ...`` it measures the partitioned layout instead: a child
process generates each trace straight into the layout (``generate_partitioned``, timed,
with its peak RSS; kept in --workdir as ``layout_<N>``), then a fresh process times
``verify_partitioned`` (records/s, peak RSS) and, after it, the raw SHA-256 rate over the
same canonical bytes (one file at a time, the text built before the clock starts; over
the first 2M records, which are alike the rest).
Usage: python bench/scale.py --partitioned-sizes 1000000 10000000 --workdir /tmp/benchdata
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_throughput import _shape, all_rules_commitment, generate


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def measure_local(records: int, workdir: Path) -> dict:
    from inspectorate.commitment import check, load_commitment
    from inspectorate.trace import read_trace

    chips, hours, path = _shape(records, workdir)
    commitment = load_commitment(all_rules_commitment(chips, hours))
    t = time.perf_counter()
    trace = read_trace(path)
    verdict = check(trace, commitment)
    total = time.perf_counter() - t
    rules = verdict.seconds - verdict.timings.get("hash_chain_intact", 0.0)
    return {
        "engine": "local",
        "records": len(trace),
        "verdict": verdict.verdict,
        "seconds": round(total, 2),
        "rec_per_s": round(len(trace) / total),
        "rules_rec_per_s": round(len(trace) / rules),
        "chain_s": round(verdict.timings.get("hash_chain_intact", 0.0), 2),
        "peak_rss_mb": _rss_mb(),
    }


def measure_dask(records: int, workdir: Path, partitions: int) -> dict:
    from distributed import Client, LocalCluster

    from inspectorate.commitment import load_commitment
    from inspectorate.scale import check_distributed
    from inspectorate.scale._dask import _chain_part, _ranges
    from inspectorate.trace import read_trace

    chips, hours, path = _shape(records, workdir)
    commitment = load_commitment(all_rules_commitment(chips, hours))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            t = time.perf_counter()
            trace = read_trace(path)
            verdict = check_distributed(trace, commitment, client=client, partitions=partitions)
            total = time.perf_counter() - t
    peak = _rss_mb()  # before the per-partition measurement below, which re-reads every column
    frame = trace.full_frame()
    part = _ranges(frame, partitions)[0]
    t = time.perf_counter()
    _chain_part(part)
    chain_part_s = time.perf_counter() - t
    return {
        "engine": "dask LocalCluster (2 workers, threads)",
        "records": len(trace),
        "verdict": verdict.verdict,
        "seconds": round(total, 2),
        "rec_per_s": round(len(trace) / total),
        "partitions": partitions,
        "chain_per_partition_s": round(chain_part_s, 3),
        "chain_rec_per_s_per_core": round(part.height / chain_part_s),
        "frame_bytes": frame.estimated_size(),
        "peak_rss_mb": peak,
    }


RAW_SAMPLE = 2_000_000  # records hashed for the raw SHA-256 rate
LAYOUT_WINDOW_SECONDS = 6 * 3600  # 360k records per window at 1000 chips, ~22k per file


def _layout_dir(records: int, workdir: Path) -> Path:
    return workdir / f"layout_{records}"


def generate_layout(records: int, workdir: Path) -> dict:
    """Generate straight into the layout (streaming); reuses a complete earlier one."""
    from inspectorate.scale import generate_partitioned
    from inspectorate.trace import GenSpec

    chips, hours, _ = _shape(records, workdir)
    out = _layout_dir(records, workdir)
    if (out / "manifest.json").exists():
        return {"records": records, "generate_s": None, "note": "reused"}
    partial = out.with_name(out.name + ".partial")
    if partial.exists():  # an interrupted earlier run
        shutil.rmtree(partial)
    t = time.perf_counter()
    manifest = generate_partitioned(
        GenSpec(chips=chips, hours=hours, scenario="training"), partial, window_seconds=LAYOUT_WINDOW_SECONDS
    )
    seconds = time.perf_counter() - t
    partial.rename(out)
    files = [f for w in manifest["windows"].values() for f in w["files"]]
    return {
        "records": manifest["records"],
        "generate_s": round(seconds, 1),
        "generate_rec_per_s": round(manifest["records"] / seconds),
        "generate_peak_rss_mb": _rss_mb(),
        "windows": len(manifest["windows"]),
        "files": len(files),
        "bytes": sum((out / f).stat().st_size for f in files),
    }


def verify_layout(records: int, workdir: Path) -> dict:
    import hashlib

    import pyarrow.parquet as pq

    from inspectorate.scale import verify_partitioned
    from inspectorate.scale._layout import _read_file, read_manifest
    from inspectorate.trace._fastchain import canonical_lines

    out = _layout_dir(records, workdir)
    t = time.perf_counter()
    problems = verify_partitioned(out)
    seconds = time.perf_counter() - t
    peak = _rss_mb()  # before the baseline below
    manifest = read_manifest(out)
    n = sum(
        pq.ParquetFile(out / f).metadata.num_rows for w in manifest["windows"].values() for f in w["files"]
    )
    raw_s, hashed = 0.0, 0
    names = [f for w in manifest["windows"].values() for f in w["files"]]
    for name in names:  # the records are alike: the rate over the first RAW_SAMPLE stands for all
        lines = [line.encode() for line in canonical_lines(_read_file(out, name))]
        t = time.perf_counter()
        for b in lines:
            hashlib.sha256(b).hexdigest()
        raw_s += time.perf_counter() - t
        hashed += len(lines)
        if hashed >= RAW_SAMPLE:
            break
    raw_rate = hashed / raw_s
    return {
        "records": n,
        "problems": len(problems),
        "verify_s": round(seconds, 1),
        "verify_rec_per_s": round(n / seconds),
        "raw_sha256_rec_per_s": round(raw_rate),
        "raw_sample_records": hashed,
        "verify_vs_raw": round(n / seconds / raw_rate, 3),
        "verify_peak_rss_mb": peak,
    }


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_layout(sizes: list[int], workdir: Path) -> None:
    for size in sizes:
        for step in ("--pgen", "--pverify"):
            row = {"step": step[2:], "started": _uptime()}
            row |= _child(step, str(size), "--workdir", str(workdir))
            row["finished"] = _uptime()
            print(json.dumps(row), flush=True)


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--workdir", type=Path, required=True, help="generated traces are kept here")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--dask-max", type=int, default=2_000_000, help="largest size run on Dask")
    parser.add_argument("--partitioned-sizes", type=int, nargs="+", help="measure the partitioned layout")
    parser.add_argument("--local", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pgen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pverify", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dask", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--gen", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.partitioned_sizes:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run_layout(args.partitioned_sizes, args.workdir)
    elif args.pgen:
        print(json.dumps(generate_layout(args.pgen, args.workdir)))
    elif args.pverify:
        print(json.dumps(verify_layout(args.pverify, args.workdir)))
    elif args.gen:
        print(json.dumps({"generate_s": round(generate(args.gen, args.workdir), 2)}))
    elif args.local:
        print(json.dumps(measure_local(args.local, args.workdir)))
    elif args.dask:
        print(json.dumps(measure_dask(args.dask, args.workdir, args.partitions)))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            _child("--gen", str(size), "--workdir", str(args.workdir))
            print(json.dumps(_child("--local", str(size), "--workdir", str(args.workdir))), flush=True)
            if not args.no_dask and size <= args.dask_max:
                row = _child(
                    "--dask", str(size), "--workdir", str(args.workdir), "--partitions", str(args.partitions)
                )
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
