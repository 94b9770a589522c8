"""``leaderboard.json`` (schema in docs/bench.md; the ``report`` command renders it) and
``leaderboard.md``; ``compare`` ranks entries of several bench directories."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from inspectorate.bench._score import Scored, cost, with_intervals
from inspectorate.bench._suite import Suite
from inspectorate.errors import InputError

SCHEMA_VERSION = 1
FAMILY_REPS = 200  # per-family figures: fewer bootstrap draws (many small groups)
RANK_METRIC = "auroc"


def _by(rows: list[Scored], key: str) -> dict[str, list[Scored]]:
    out: dict[str, list[Scored]] = {}
    for r in rows:
        out.setdefault(str(getattr(r, key)), []).append(r)
    return out


def entry_dict(name: str, rows: list[Scored], seconds: float, seed: int, reps: int) -> dict[str, Any]:
    tracks: dict[str, Any] = {}
    families: dict[str, Any] = {}
    hosts: dict[str, Any] = {}
    for track, trows in sorted(_by(rows, "track").items()):
        tracks[track] = with_intervals(trows, seed, reps)
        honest = [r for r in trows if not r.positive]
        fam = {}
        for family, frows in sorted(_by([r for r in trows if r.positive], "family").items()):
            fam[family] = with_intervals(
                frows + honest, seed, FAMILY_REPS
            )  # the family's lies vs the track's honest
        families[track] = fam
        by_host = _by([r for r in trows if r.host], "host")
        if len(by_host) > 1:  # leave-one-host-out view: each host's cases on their own
            hosts[track] = {
                h: with_intervals(hrows, seed, FAMILY_REPS) for h, hrows in sorted(by_host.items())
            }
    c = cost(rows)
    return {
        "verifier": name,
        "tracks": tracks,
        "families": families,
        "hosts": hosts,
        "cost": {k: c[k] for k in ("tokens_per_verdict", "dollars_per_verdict", "dollars_total")},
        "latency": {k: c[k] for k in ("seconds_per_verdict", "seconds_p95", "seconds_total")},
        "wall_seconds": round(seconds, 3),
    }


def write_leaderboard(
    out: Path,
    suite: Suite,
    subset: str,
    entries: list[tuple[str, list[Scored], float]],
    ablation: dict[str, dict[str, list[Scored]]],
    timing: dict[str, float],
    seed: int,
    reps: int,
) -> dict[str, Any]:
    board: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "suite": {"name": suite.name, "version": suite.version, "sha256": suite.sha256},
        "subset": subset,
        "bootstrap": {"reps": reps, "family_reps": FAMILY_REPS, "seed": seed, "interval": 0.95},
        "entries": [entry_dict(n, rows, s, seed, reps) for n, rows, s in entries],
    }
    for e in board["entries"]:
        if e["verifier"] in ablation:
            e["ablation"] = {
                stream: {
                    t: _brief(with_intervals(trows, seed, FAMILY_REPS))
                    for t, trows in sorted(_by(rows, "track").items())
                }
                for stream, rows in ablation[e["verifier"]].items()
            }
    case_s = sum(r.seconds for _, rows, _ in entries for r in rows)
    own_s = case_s + timing["fit_seconds"]
    harness_s = timing["prepare_seconds"] + timing["loop_seconds"] - own_s
    board["harness"] = {
        "verdict_seconds": round(case_s, 3),
        "fit_seconds": round(timing["fit_seconds"], 3),
        "harness_seconds": round(harness_s, 3),  # suite load + hash check, views, dispatch, timeouts
        "overhead_pct": round(100.0 * harness_s / own_s, 2) if own_s > 0 else None,
        "scoring_seconds": round(
            time.perf_counter() - timing["started"] - timing["prepare_seconds"] - timing["loop_seconds"], 3
        ),
    }
    (out / "leaderboard.json").write_text(
        json.dumps(board, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "leaderboard.md").write_text(render_md(board), encoding="utf-8")
    return board


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("caught", "honest_fpr", "auroc", "abstained") if k in metrics}


def _fmt(m: dict[str, Any] | None) -> str:
    if not m or m.get("value") is None:
        return "—"
    v, lo, hi = m["value"], m.get("lo"), m.get("hi")
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else f"{v:.2f}"


def render_md(board: dict[str, Any], harness: bool = True) -> str:
    s = board["suite"]
    lines = [
        f"# Leaderboard: {s['name']} v{s['version']} ({board['subset']} evidence)",
        "",
        f"suite sha256 `{s['sha256']}`; 95% bootstrap intervals ({board['bootstrap']['reps']} draws, "
        f"seed {board['bootstrap']['seed']}).",
        "",
    ]
    tracks = sorted({t for e in board["entries"] for t in e["tracks"]})
    for t in tracks:
        lines += [
            f"## {t}",
            "",
            "| # | verifier | n | caught | missed | abstained | honest FPR | AUROC | TPR@1% FPR |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        ranked = rank([e for e in board["entries"] if t in e["tracks"]], t)
        for i, e in enumerate(ranked, 1):
            m = e["tracks"][t]
            lines.append(
                f"| {i} | {e['verifier']} | {int(m['n']['value'])} | {_fmt(m['caught'])} | {_fmt(m['missed'])} | "
                f"{_fmt(m['abstained'])} | {_fmt(m['honest_fpr'])} | {_fmt(m['auroc'])} | {_fmt(m['tpr_at_fpr_0.01'])} |"
            )
        lines.append("")
    lines += [
        "## cost and latency",
        "",
        "| verifier | s/verdict | p95 s | tokens/verdict | $/verdict |",
        "|---|---|---|---|---|",
    ]
    for e in board["entries"]:
        lat, c = e["latency"], e["cost"]
        lines.append(
            f"| {e['verifier']} | {lat['seconds_per_verdict']:.3f} | {lat['seconds_p95']:.3f} | "
            f"{c['tokens_per_verdict']:g} | {c['dollars_per_verdict']:g} |"
        )
    h = board["harness"]
    lines += (
        []
        if not harness
        else [
            "",
            f"harness: {h['verdict_seconds']} s in verdicts, {h['harness_seconds']} s around them "
            f"(overhead {h['overhead_pct']}%); scoring and intervals {h['scoring_seconds']} s",
            "",
        ]
    )
    return "\n".join(lines)


def rank(entries: list[dict[str, Any]], track: str) -> list[dict[str, Any]]:
    """Best first: AUROC, then caught, then lower honest FPR (missing figures last)."""

    def key(e: dict[str, Any]) -> tuple[float, float, float]:
        m = e["tracks"][track]
        val = lambda k, d: m.get(k, {}).get("value") if m.get(k, {}).get("value") is not None else d  # noqa: E731
        return (-val(RANK_METRIC, -1.0), -val("caught", -1.0), val("honest_fpr", 2.0))

    return sorted(entries, key=key)


def compare(dirs: list[Path]) -> str:
    """Markdown: entries of every bench directory ranked per track (same suite required)."""
    boards = []
    for d in dirs:
        p = d / "leaderboard.json"
        if not p.is_file():
            raise InputError("no leaderboard.json (run `inspectorate bench run` first)", d)
        boards.append(json.loads(p.read_text(encoding="utf-8")))
    suites = {(b["suite"]["sha256"], b["subset"]) for b in boards}
    if len({s for s, _ in suites}) > 1:
        raise InputError("the directories scored different suites; compare entries of one suite")
    merged: dict[str, dict[str, Any]] = {}
    for b in boards:
        for e in b["entries"]:
            merged[f"{e['verifier']} ({b['subset']})" if len(suites) > 1 else e["verifier"]] = {**e}
    entries = [{**e, "verifier": k} for k, e in merged.items()]
    board = {**boards[0], "entries": entries}
    return render_md(board, harness=False)
