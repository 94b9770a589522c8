"""What a run did, per phase: durations, step rates, collectives, loopback bytes, windows.

For the operator of the testbed (and its tests), not for verifiers: it reads the truth
labels. The netdev parser here is deliberately minimal (the ``trace`` package owns the
real stream parsers); it only needs one interface's byte counters.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def netdev_bytes(path: Path, iface: str = "lo") -> list[tuple[float, int]]:
    """(epoch, rx_bytes + tx_bytes) of ``iface`` for every snapshot in a netdev.log."""
    out: list[tuple[float, int]] = []
    t: float | None = None
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("--- ") and line.endswith(" ---"):
            t = float(line[4:-4])
        elif t is not None and line.strip().startswith(f"{iface}:"):
            fields = line.split(":", 1)[1].split()
            out.append((t, int(fields[0]) + int(fields[8])))
    return out


def workload_net_bytes(path: Path) -> list[tuple[float, int]]:
    """(t, rx + tx bytes) of the workload's own network namespace, from the sensor's
    samples (``wl_net`` when ``net_scope`` is ``netns``): where the ranks run isolated,
    their traffic no longer crosses the host's loopback that netdev.log reads."""
    out: list[tuple[float, int]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a torn last line
        own = r.get("wl_net") if r.get("kind") == "sample" and r.get("net_scope") == "netns" else None
        if isinstance(own, dict):
            out.append((float(r["t"]), int(sum(v[0] + v[1] for v in own.values()))))
    return out


def _bytes_between(samples: list[tuple[float, int]], lo: float, hi: float) -> int | None:
    inside = [b for t, b in samples if lo <= t <= hi]
    return inside[-1] - inside[0] if len(inside) >= 2 else None


def phase_spans(run: Path) -> list[dict[str, Any]]:
    """One dict per phase from the labels: name, claimed, truth, start, end."""
    spans: dict[str, dict[str, Any]] = {}
    for event in _jsonl(run / "workload_labels.jsonl"):
        span = spans.setdefault(
            event["phase"],
            {
                "phase": event["phase"],
                "claimed": event["claimed"],
                "truth": event["truth"],
                "model": event.get("model"),
            },
        )
        span[event["event"]] = event["t"]
    return list(spans.values())


def _step_counts(run: Path) -> dict[str, dict[str, Any]]:
    """Per phase: record kinds counted per rank, tokens from each rank's phase_done."""
    counts: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for path in sorted(run.glob("steps*.jsonl")):
        for rec in _jsonl(path):
            c = counts[rec["phase"]]
            c[f"{rec['kind']}_r{rec['rank']}"] += 1
            if rec["kind"] == "phase_done":
                c["tokens"] += rec.get("tokens", 0)
    return counts


def summarize_run(run: Path | str) -> list[dict[str, Any]]:
    """Per-phase numbers for a finished (or partial) run directory."""
    run = Path(run)
    counts = _step_counts(run)
    coll: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in _jsonl(run / "collectives.jsonl"):
        coll[entry.get("phase") or "?"][0] += 1
        coll[entry.get("phase") or "?"][1] += entry.get("bytes", 0)
    # the ranks' traffic: their own namespace's counters when they ran isolated, else the host loopback
    loopback = workload_net_bytes(run / "sensor.jsonl") or netdev_bytes(run / "netdev.log")
    rows = []
    for span in phase_spans(run):
        name, start, end = span["phase"], span.get("start"), span.get("end")
        seconds = (end - start) if start is not None and end is not None else None
        c = counts.get(name, {})
        train = c.get("train_step_r0", 0)
        rows.append(
            {
                **span,
                "seconds": seconds,
                "train_steps_r0": train,
                "infer_tokens_r0": c.get("infer_token_r0", 0),
                "eval_steps_r0": c.get("eval_step_r0", 0),
                "tokens_all_ranks": c.get("tokens", 0),
                "train_steps_per_s": train / seconds if seconds else None,
                "collectives": coll[name][0],
                "collective_bytes": coll[name][1],
                "loopback_bytes": _bytes_between(loopback, start, end)
                if start is not None and end is not None and seconds
                else None,
            }
        )
    _add_windows(run, rows)
    return rows


def _add_windows(run: Path, rows: list[dict[str, Any]]) -> None:
    """Window count and claimed FLOPs per phase (windows are matched to phases by time)."""

    def epoch(text: str) -> float:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()

    for row in rows:
        row["windows"], row["claimed_flops"] = 0, 0.0
    for rec in _jsonl(run / "windows.jsonl"):
        t = epoch(rec["window_start"])
        for row in rows:
            if row.get("start") is not None and row["start"] - 1e-3 <= t <= (row.get("end") or t):
                row["windows"] += 1
                row["claimed_flops"] += rec["flops"]
                break


def format_summary(rows: list[dict[str, Any]]) -> str:
    """A plain-text table (one line per phase)."""
    head = (
        f"{'phase':30} {'claimed':16} {'truth':16} {'sec':>6} {'steps':>6} {'st/s':>6} {'tok/r0':>7} "
        f"{'coll':>6} {'coll MB':>8} {'lo MB':>8} {'win':>4}"
    )
    lines = [head]
    for r in rows:
        rate = f"{r['train_steps_per_s']:.2f}" if r["train_steps_per_s"] else "-"
        lo = f"{r['loopback_bytes'] / 1e6:.1f}" if r["loopback_bytes"] is not None else "-"
        sec = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        lines.append(
            f"{r['phase']:30} {r['claimed']:16} {r['truth']:16} {sec:>6} {r['train_steps_r0']:>6} "
            f"{rate:>6} {r['infer_tokens_r0']:>7} {r['collectives']:>6} "
            f"{r['collective_bytes'] / 1e6:>8.1f} {lo:>8} {r['windows']:>4}"
        )
    return "\n".join(lines)
