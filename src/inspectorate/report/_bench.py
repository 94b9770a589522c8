"""The report page for a bench output directory (``inspectorate bench run --out DIR``):
the leaderboard with 95% intervals per track and metric, per-family bars, and the cases.

The reader is tolerant on purpose: it reads ``leaderboard.json`` (``entries[].tracks
.{track}.{metric}.{value,lo,hi}``, ``families``, ``cost``, ``latency``) and
``results.jsonl`` (one case per line), skips what it does not know, and says so on the
page instead of failing, because the bench writer evolves separately.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.report import _plots
from inspectorate.report._html import Page, Section, esc, table

PREFERRED_FAMILY_METRICS = ("caught", "caught_rate", "accuracy", "tpr")


def _plotted(metric: str) -> bool:
    """Rates and scores are plotted; counts (``n``, ``n_positive``, ...) only tabled."""
    return metric != "n" and not metric.startswith("n_")


def is_bench_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "leaderboard.json").is_file() or (path / "results.jsonl").is_file())


def bench_page(path: Path) -> Page:
    board = _read_board(path / "leaderboard.json")
    cases = _read_cases(path / "results.jsonl")
    suite = board.get("suite") or {}
    entries = [e for e in board.get("entries", []) if isinstance(e, dict)]
    page = Page(
        title=str(path),
        status="open",
        headline=f"Verifier Challenge: {suite.get('name', 'suite')} {suite.get('version', '')}".strip(),
        reasons=[_ranking(entries)] if entries else ["no leaderboard.json: only the cases are shown"],
        facts=[
            ("entries", str(len(entries))),
            ("cases", str(len(cases))),
            ("suite sha256", str(suite.get("sha256", "?"))[:16]),
            ("schema", str(board.get("schema_version", "?"))),
            ("evidence subset", str(board.get("subset", "full"))),
        ],
    )
    harness = board.get("harness") or {}
    if harness.get("overhead_pct") is not None:
        page.facts.append(("harness overhead", f"{harness['overhead_pct']}%"))
    metric_rows = _metric_rows(entries)
    for track in dict.fromkeys(r["track"] for r in metric_rows):
        rows = [r for r in metric_rows if r["track"] == track]
        page.sections.append(
            Section(
                f"Leaderboard: {track}",
                _board_table(rows),
                [_plots.leaderboard([r for r in rows if _plotted(r["metric"])], track)],
                plots_first=True,
            )
        )
    family_rows = _family_rows(entries)
    for track in dict.fromkeys(r["track"] for r in family_rows):
        rows = [r for r in family_rows if r["track"] == track]
        metric = _family_metric(rows)
        chosen = [r for r in rows if r["metric"] == metric]
        title = "Per attack family" + (f": {track}" if track else "")
        page.sections.append(Section(title, "", [_plots.family_bars(chosen, metric)]))
    page.sections.append(_cost_section(entries))
    if cases:
        page.sections.append(_case_section(cases))
    return page


def _read_board(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the leaderboard ({exc})", path) from None
    if not isinstance(board, dict):
        raise InputError("expected a JSON object with 'entries'", path)
    return board


def _read_cases(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    cases = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError:
            if number == len(lines):
                break  # a torn last line from a harness still writing: show the rest
            raise InputError("not a JSON object", path, number) from None
        if isinstance(case, dict):
            cases.append(case)
    return cases


def _interval(value: Any) -> tuple[float | None, float | None, float | None]:
    if isinstance(value, dict):
        return _num(value.get("value")), _num(value.get("lo")), _num(value.get("hi"))
    return _num(value), None, None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value == value else None


def _metric_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for entry in entries:
        for track, metrics in (entry.get("tracks") or {}).items():
            for metric, raw in (metrics or {}).items():
                value, lo, hi = _interval(raw)
                if value is not None:
                    rows.append(
                        {
                            "verifier": str(entry.get("verifier", "?")),
                            "track": str(track),
                            "metric": str(metric),
                            "value": value,
                            "lo": lo,
                            "hi": hi,
                        }
                    )
    return rows


def _family_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of ``families``: ``{track: {family: {metric: ...}}}`` (the bench's shape) or
    ``{family: {metric: ...}}`` / ``{family: value}`` (track left empty)."""
    rows = []
    for entry in entries:
        for key, inner in (entry.get("families") or {}).items():
            nested = isinstance(inner, dict) and any(_is_family(v) for v in inner.values())
            for track, family, metrics in (
                [(str(key), f, m) for f, m in inner.items()] if nested else [("", str(key), inner)]
            ):
                items = metrics.items() if isinstance(metrics, dict) else [("value", metrics)]
                for metric, raw in items:
                    value, lo, hi = _interval(raw)
                    if value is not None and _plotted(str(metric)):
                        rows.append(
                            {
                                "verifier": str(entry.get("verifier", "?")),
                                "track": track,
                                "family": str(family),
                                "metric": str(metric),
                                "value": value,
                                "lo": lo,
                                "hi": hi,
                            }
                        )
    return rows


def _is_family(value: Any) -> bool:
    """A family's metrics: a dict whose values are numbers or ``{value, lo, hi}``."""
    return isinstance(value, dict) and any(isinstance(v, dict) and "value" in v for v in value.values())


def _family_metric(rows: list[dict[str, Any]]) -> str:
    present = [r["metric"] for r in rows]
    return next((m for m in PREFERRED_FAMILY_METRICS if m in present), present[0])


def _ranking(entries: list[dict[str, Any]]) -> str:
    names = [str(e.get("verifier", "?")) for e in entries]
    return "entries in leaderboard order: " + ", ".join(names)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if float(value).is_integer() and abs(value) > 1 else f"{value:.3f}"


def _board_table(rows: list[dict[str, Any]]) -> str:
    cells = [
        [
            esc(r["verifier"]),
            esc(r["metric"]),
            f'<span class="mono">{_fmt(r["value"])}</span>',
            f'<span class="mono">[{_fmt(r["lo"])}, {_fmt(r["hi"])}]</span>' if r["lo"] is not None else "",
        ]
        for r in rows
    ]
    return table(["verifier", "metric", "value", "95% interval"], cells)


def _cost_section(entries: list[dict[str, Any]]) -> Section:
    rows = [
        [esc(e.get("verifier", "?")), esc(_plain(e.get("cost"))), esc(_plain(e.get("latency")))]
        for e in entries
    ]
    return Section("Cost and latency per verdict", table(["verifier", "cost", "latency"], rows))


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _case_section(cases: list[dict[str, Any]]) -> Section:
    keys = ["id", "track", "family", "verdict", "score", "seconds", "cost"]
    rows = [[esc(_plain(c.get(k))) for k in keys] for c in cases[:500]]
    more = f"<p>{len(cases) - 500} more case(s) in results.jsonl.</p>" if len(cases) > 500 else ""
    return Section(
        f"Cases ({len(cases)})",
        f"<details><summary>show the per-case results</summary>{table(keys, rows)}{more}</details>",
    )
