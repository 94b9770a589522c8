"""The report page for a window-record trace and its ``check`` verdict: rule hits,
each linked to the records it flags, over a plot of claimed FLOP with the hits marked."""

from __future__ import annotations

from typing import Any

import polars as pl

from inspectorate.report import _plots
from inspectorate.report._html import Page, Section, esc, table
from inspectorate.report._records import record_section
from inspectorate.trace import Trace

BINS = 400
LINKED = 20  # record links per rule hit


def trace_page(trace: Trace, verdict: dict[str, Any] | None, source: str) -> Page:
    frame = trace.frame
    if verdict is None:
        page = Page(
            source, "open", "NOT JUDGED: no commitment given", ["pass --commitment C.yml to check the trace"]
        )
    else:
        ok = verdict.get("verdict") == 1
        page = Page(
            source,
            "pass" if ok else "fail",
            f"{'COMPLIANT' if ok else 'VIOLATION'}: {verdict.get('commitment_id', '?')}",
            [str(verdict.get("rationale", ""))],
        )
    page.facts = _facts(frame, verdict)
    hits = _hits(frame, verdict)
    page.sections.append(Section("Claimed compute", "", [_plots.window_flops(_binned(frame), hits)]))
    if verdict is not None:
        page.sections.append(violations_section(verdict))
        # the ids the rule table links to come first, so no link points past the shown rows
        linked = [i for v in verdict.get("violations", []) for i in v.get("record_ids", [])[:LINKED]]
        ids = linked + [i for v in verdict.get("violations", []) for i in v.get("record_ids", [])]
        if ids:
            page.sections.append(record_section(frame, ids))
    return page


def violations_section(verdict: dict[str, Any]) -> Section:
    """Each rule hit: rule, kind, message, and links to the records it flags."""
    rows = []
    for v in verdict.get("violations", []):
        ids = list(v.get("record_ids", []))
        count = v.get("record_count", len(ids))
        links = ", ".join(f'<a href="#rec-{esc(i)}">{esc(i)}</a>' for i in ids[:LINKED])
        more = f" (+{count - min(count, LINKED)} more)" if count > LINKED else ""
        rows.append(
            [f"<b>{esc(v.get('rule_id'))}</b>", esc(v.get("kind")), esc(v.get("message")), links + more]
        )
    judged = verdict.get("rules_evaluated") or []
    unjudged = verdict.get("semantic_rules_not_evaluated") or []
    note = (
        f"<p>{len(judged)} rule(s) evaluated"
        + (f"; NOT judged: {esc(', '.join(unjudged))}" if unjudged else "")
        + ".</p>"
    )
    body = table(["rule", "kind", "message", "records"], rows) if rows else "<p>No rule was broken.</p>"
    return Section(f"Commitment {verdict.get('commitment_id', '')}: rule hits", note + body, anchor="rules")


def _facts(frame: pl.DataFrame, verdict: dict[str, Any] | None) -> list[tuple[str, str]]:
    facts = [("records", f"{frame.height:,}")]
    for col in ("chip_id", "job_id"):
        if col in frame.columns:
            facts.append((col.replace("_id", "s"), f"{frame[col].n_unique():,}"))
    if "flops" in frame.columns:
        facts.append(("claimed FLOP", f"{float(frame['flops'].sum()):.3g}"))
    if verdict is not None:
        facts.append(("violations", str(len(verdict.get("violations", [])))))
        facts.append(("rules", str(len(verdict.get("rules_evaluated", [])))))
    return facts


def _binned(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Claimed FLOP summed per (time bin, op_type): at most BINS bins, whatever the trace size."""
    if frame.is_empty() or "ws" not in frame.columns:
        return []
    lo, hi = frame.select(pl.col("ws").min()).item(), frame.select(pl.col("ws").max()).item()
    width = max((hi - lo) / BINS, 1e-9)
    out = (
        frame.with_columns(((pl.col("ws") - lo) / width).floor().alias("_bin"))
        .group_by("_bin", "op_type")
        .agg(pl.col("flops").sum(), pl.col("ws").min().alias("t"))
        .sort("t")
    )
    return [
        {"t": _ms(r["t"]), "op_type": r["op_type"], "flops": float(r["flops"] or 0)}
        for r in out.iter_rows(named=True)
    ]


def _hits(frame: pl.DataFrame, verdict: dict[str, Any] | None) -> list[dict[str, Any]]:
    if verdict is None or "ws" not in frame.columns:
        return []
    pairs = [(v.get("rule_id"), i) for v in verdict.get("violations", []) for i in v.get("record_ids", [])]
    when = dict(
        frame.filter(pl.col("record_id").is_in([i for _, i in pairs])).select("record_id", "ws").iter_rows()
    )
    return [{"rule_id": r, "record_id": i, "t": _ms(when[i])} for r, i in pairs[:2000] if i in when]


def _ms(value: Any) -> float:
    """Window start as epoch milliseconds (Vega's temporal unit), from seconds or a datetime."""
    if hasattr(value, "timestamp"):
        return value.timestamp() * 1000.0
    return float(value) * 1000.0
