"""`check` out of core (issue 22 items 1 and 5): records/s, peak RSS and per-part cost,
against the in-memory engine measured in the same run, and on a Dask LocalCluster.

For each size the trace is generated once (cached in --workdir, shared with
check_throughput.py; not timed), then each measurement runs in a fresh process whose
peak RSS (itself plus any worker processes, sampled every 20 ms) is reported:

  - ``inmemory``: read_trace + check (the baseline; skipped with --no-baseline, e.g. at
    10^8 where it needs ~17 GB);
  - ``outcore``: check_out_of_core on the Parquet file, one part at a time in this process;
  - ``dask``: the same plan on a LocalCluster of --workers worker processes (1 thread
    each), every worker reading its own parts: the per-worker rate a cluster projection
    assumes (docs/scaling.md).

``--layout``: the out-of-core engines read the partitioned layout of the same generated
trace (``bench/scale.py``'s ``layout_<N>`` in --workdir, generated once if absent) instead
of the single file; the in-memory baseline still reads the single file. Each run reports
its map tasks' costs (records, wall and CPU seconds per part) and which processes ran
them: on Dask every part must be read by a worker process, never by the client.

``--bounded`` leaves the rule kinds declared ``global`` out of the commitment: out of
core they need every record at once, the rest are bounded by a part and a bucket.
Every line carries the 1-minute load average before and after (the development box
has 2 cores shared by several engineers: figures from a loaded box are slow).
Usage: python bench/check_outcore.py --sizes 1000000 10000000 --workdir /tmp/benchdata [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_throughput import _shape, all_rules_commitment, generate


class Peak:
    """Highest RSS of this process and its children (Dask worker processes), in MB."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = self.own = self.worker = 0  # all processes; this one; the largest child
        self.timeline: list[tuple[float, int]] = []  # (perf_counter, total RSS) every ~0.5 s
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            own = self.me.memory_info().rss
            kids = []
            for child in self.me.children(recursive=True):
                try:
                    kids.append(child.memory_info().rss)
                except Exception:  # a worker that just exited
                    pass
            self.peak = max(self.peak, own + sum(kids))
            self.own = max(self.own, own)
            self.worker = max([self.worker, *kids])
            now, total = time.perf_counter(), own + sum(kids)
            if not self.timeline or now - self.timeline[-1][0] >= 0.5:
                self.timeline.append((now, total))
            elif total > self.timeline[-1][1]:
                self.timeline[-1] = (self.timeline[-1][0], total)
            time.sleep(0.02)

    def quarters(self, start: float, seconds: float) -> list[int]:
        """Peak total RSS (MB) in each quarter of [start, start + seconds]: flat memory
        is the same peak in the last quarter of the map (most parts read) as in the first."""
        out = []
        for q in range(4):
            lo, hi = start + seconds * q / 4, start + seconds * (q + 1) / 4
            out.append(max((m for t, m in self.timeline if lo <= t < hi), default=0) >> 20)
        return out


def _commitment(chips: int, hours: float, bounded: bool):
    """Every rule kind; ``bounded``: without the kinds whose partition is global (they
    need every record at once, so out of core they are not bounded by a part)."""
    from inspectorate.commitment import load_commitment
    from inspectorate.commitment._registry import RULES, load_plugins

    body = all_rules_commitment(chips, hours)
    if bounded:
        load_plugins()
        body["deterministic_rules"] = [
            r
            for r in body["deterministic_rules"]
            if RULES[r["kind"]].partition_for({k: v for k, v in r.items() if k not in ("kind", "id")}).how
            != "global"
        ]
    return load_commitment(body)


def _one(
    engine: str,
    records: int,
    workdir: Path,
    workers: int,
    part_rows: int,
    spill_rows: int,
    bounded: bool,
    layout: bool = False,
) -> dict:
    """One measurement (run in a child process)."""
    peak = Peak()
    from inspectorate.commitment import check

    chips, hours, path = _shape(records, workdir)
    source = _layout_dir(records, workdir) if layout and engine != "inmemory" else path
    head = None  # a single file: its head sidecar
    if source != path:
        # the head the generator published (out of band) with the layout; the same
        # chain's head as the single file's sidecar
        head = json.loads((source / "manifest.json").read_text())["single_chain_head"]
    commitment = _commitment(chips, hours, bounded)
    started = time.perf_counter()
    out: dict = {}
    if engine == "inmemory":
        from inspectorate.trace import read_trace

        verdict = check(read_trace(path), commitment)
    elif engine == "outcore":
        from inspectorate.scale._outcore import check_out_of_core

        verdict, meta = check_out_of_core(
            source, commitment, head=head, part_rows=part_rows, spill_rows=spill_rows, spill_dir=workdir
        )
        out = _engine_facts(meta, part_rows, spill_rows)
    else:
        from distributed import Client, LocalCluster

        from inspectorate.scale._outcore import check_out_of_core

        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                started = time.perf_counter()  # the cluster's start-up is not the check's
                verdict, meta = check_out_of_core(
                    source,
                    commitment,
                    head=head,
                    client=client,
                    part_rows=part_rows,
                    spill_rows=spill_rows,
                    spill_dir=workdir,
                )
        out = _engine_facts(meta, part_rows, spill_rows)
    if engine != "inmemory":
        out["map_tasks"] = _costs(meta.part_costs)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds()
    out.update(
        engine=engine,
        source="layout" if source != path else "file",
        records=records,
        commitment="no global kinds" if bounded else "every kind",
        rules=len(verdict.rules_evaluated),
        verdict=verdict.verdict,
        violations=[(v.rule_id, v.count) for v in verdict.violations],
        seconds=round(seconds, 2),
        rec_per_s=round(records / seconds),
        # CPU seconds of this process and its reaped children (Dask workers, after the
        # cluster closed): records per CPU-second is the per-core rate, and it moves far
        # less with the box's load than the wall-clock rate does
        cpu_s=round(cpu, 1),
        rec_per_cpu_s=round(records / cpu),
        peak_rss_mb=peak.peak >> 20,
        peak_rss_driver_mb=peak.own >> 20,
        peak_rss_largest_worker_mb=peak.worker >> 20,
    )
    if "phases_s" in out:
        map_s = out["phases_s"]["map"]
        out["map_peak_rss_mb_by_quarter"] = peak.quarters(started, map_s)
        out["map_rec_per_s"] = round(records / map_s)
        if engine == "dask":
            out["map_rec_per_s_per_worker"] = round(records / map_s / workers)
    return out


def _costs(costs: list) -> dict:
    """The map tasks' cost: per part (CPU and wall seconds), per process that ran them,
    and whether any ran in this (the client's) process."""
    rows = sum(c.rows for c in costs)
    cpu = sum(c.cpu_s for c in costs)
    by_pid: dict[int, list] = {}
    for c in costs:
        by_pid.setdefault(c.pid, []).append(c)
    return {
        "parts": len(costs),
        "cpu_s_per_part": round(cpu / len(costs), 2),
        "wall_s_per_part": round(sum(c.wall_s for c in costs) / len(costs), 2),
        "rec_per_task_cpu_s": round(rows / cpu),
        "processes": len(by_pid),
        "parts_read_by_client": sum(len(v) for pid, v in by_pid.items() if pid == os.getpid()),
        "per_process": [
            {
                "parts": len(v),
                "records": sum(c.rows for c in v),
                "rec_per_task_cpu_s": round(sum(c.rows for c in v) / sum(c.cpu_s for c in v)),
                "rec_per_task_wall_s": round(sum(c.rows for c in v) / sum(c.wall_s for c in v)),
            }
            for v in by_pid.values()
        ],
    }


def _layout_dir(records: int, workdir: Path) -> Path:
    from scale import _layout_dir as layout_dir

    return layout_dir(records, workdir)


def _engine_facts(meta, part_rows: int, spill_rows: int) -> dict:
    """Parts, phases, and how each keyed or global rule was judged (partial or buckets)."""
    paths: dict[str, int] = {}
    for how in meta.paths.values():
        paths[how] = paths.get(how, 0) + 1
    return {
        "parts": meta.parts,
        "part_rows": part_rows,
        "spill_rows": spill_rows,
        "phases_s": {k: round(v, 2) for k, v in meta.phases.items()},
        "rule_paths": paths,
        "not_cleared": {r: how for r, how in meta.paths.items() if how != "partial: cleared"},
    }


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _child(engine: str, records: int, args: argparse.Namespace) -> dict:
    load = os.getloadavg()[0]
    cmd = [
        sys.executable,
        __file__,
        "--one",
        engine,
        "--sizes",
        str(records),
        "--workdir",
        str(args.workdir),
        "--workers",
        str(args.workers),
        "--part-rows",
        str(args.part_rows),
        "--spill-rows",
        str(args.spill_rows),
        *(["--bounded"] if args.bounded else []),
        *(["--layout"] if args.layout else []),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        return {"engine": engine, "records": records, "error": done.stderr.strip().splitlines()[-1:]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load_before"], out["load_after"] = round(load, 1), round(os.getloadavg()[0], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/benchdata"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--part-rows", type=int, default=1_000_000)
    parser.add_argument("--engines", nargs="+", default=["inmemory", "outcore", "dask"])
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-memory engine")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--spill-rows", type=int, default=2_000_000, help="records per spill bucket")
    parser.add_argument("--bounded", action="store_true", help="leave out the global rule kinds")
    parser.add_argument("--layout", action="store_true", help="out of core over the partitioned layout")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(
            json.dumps(
                _one(
                    args.one,
                    args.sizes[0],
                    args.workdir,
                    args.workers,
                    args.part_rows,
                    args.spill_rows,
                    args.bounded,
                    args.layout,
                )
            )
        )
        return
    engines = [e for e in args.engines if not (args.no_baseline and e == "inmemory")]
    for records in args.sizes:
        if not args.layout or "inmemory" in engines:
            generate(records, args.workdir)
        if args.layout:
            from scale import generate_layout

            generate_layout(records, args.workdir)
        rows = {engine: _child(engine, records, args) for engine in engines}
        base = rows.get("inmemory", {})
        for engine, row in rows.items():
            if base.get("seconds") and row.get("seconds") and engine != "inmemory":
                row["time_vs_inmemory"] = round(row["seconds"] / base["seconds"], 2)
                row["peak_vs_inmemory"] = round(row["peak_rss_mb"] / base["peak_rss_mb"], 2)
                row["same_verdict"] = (row["verdict"], row["violations"]) == (
                    base["verdict"],
                    base["violations"],
                )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
