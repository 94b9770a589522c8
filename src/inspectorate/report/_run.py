"""The report page for a run directory and its ``verify`` verdict.

Reads the verdict in its JSON form (``RunVerdict.to_dict`` or a saved ``verify --format
json``), so a report can be drawn later from a stored verdict without judging again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.report import _plots
from inspectorate.report._html import Page, Section, esc, table
from inspectorate.report._records import record_section
from inspectorate.report._series import BUCKETS, Panel, panels
from inspectorate.trace import Phase, RunDir

MARK = {"consistent": "✓", "unverifiable": "?", "inconsistent": "✗"}


def run_page(run: RunDir, verdict: dict[str, Any]) -> Page:
    """Verdict header, phase timeline, telemetry panels, findings, flagged records."""
    phases = run.phases()
    sensor = _sensor_frame(run)
    origin = _origin(run, phases, sensor)
    by_phase = {p.get("phase"): p for p in verdict.get("phases", [])}
    bands = _bands(phases, by_phase, origin, _end(run, sensor, origin))
    labels = sorted({b["claimed"] for b in bands})
    signals = panels(run, origin, sensor)
    page = Page(
        title=str(run.path),
        status=_status(verdict),
        headline=_headline(verdict),
        reasons=[str(r) for r in verdict.get("reasons", [])][:12],
        facts=_facts(run, verdict, phases, signals),
    )
    domain = [0.0, max([b["t1"] for b in bands] + [_end(run, sensor, origin)])]
    plots = [_plots.phase_timeline(bands, labels, domain)] if bands else []
    page.sections.append(Section("Phases", "", plots))
    page.sections.append(_telemetry(signals, bands, labels, verdict, domain))
    page.sections.append(Section("Findings per phase", _phase_table(verdict), anchor="findings"))
    commitment = verdict.get("commitment")
    flagged = _flagged_ids(verdict)
    if commitment:
        from inspectorate.report._trace import violations_section

        page.sections.append(violations_section(commitment))
        flagged += [i for v in commitment.get("violations", []) for i in v.get("record_ids", [])]
    if flagged and run.windows is not None:
        page.sections.append(record_section(run.windows.frame, flagged))
    return page


def _status(verdict: dict[str, Any]) -> str:
    if verdict.get("verdict") == 1:
        return "pass"
    return "open" if verdict.get("outcome") == "unverifiable" else "fail"


def _headline(verdict: dict[str, Any]) -> str:
    head = "CERTIFIED" if verdict.get("verdict") == 1 else "NOT CERTIFIED"
    outcome, policy = verdict.get("outcome"), verdict.get("policy")
    return f"{head}: {outcome}" + (f" under policy {policy}" if policy else "") if outcome else head


def _facts(
    run: RunDir, verdict: dict[str, Any], phases: list[Phase], signals: list[Panel]
) -> list[tuple[str, str]]:
    counts: dict[str, int] = {}
    for p in verdict.get("phases", []):
        counts[p.get("outcome", "?")] = counts.get(p.get("outcome", "?"), 0) + 1
    facts = [
        ("confidence", f"{float(verdict.get('confidence', 0.0)):.2f}"),
        ("phases", str(len(phases))),
        *[(k, str(v)) for k, v in sorted(counts.items())],
        ("hosts", ", ".join(run.hosts) or "1"),
        ("layout", run.layout),
        ("plotted samples", f"{sum(s.raw_points for s in signals):,}"),
    ]
    missing = verdict.get("missing_streams") or []
    if missing:
        facts.append(("missing streams", ", ".join(missing)))
    return facts


def _sensor_frame(run: RunDir) -> pl.DataFrame | None:
    path = Path(run.path) / "sensor.jsonl"
    if not path.is_file():
        return None
    from inspectorate.trace.streams import read_sensor

    try:
        return read_sensor(path).frame
    except InputError:
        return None  # the verdict already says what is wrong with it; the plots use other streams


def _origin(run: RunDir, phases: list[Phase], sensor: pl.DataFrame | None) -> float:
    starts = [p.t0 for p in phases]
    for frame in (sensor, run.cpu, run.netdev, run.nvsmi):
        if frame is not None and "t" in frame.columns and frame["t"].null_count() < frame.height:
            starts.append(float(frame["t"].min()))  # type: ignore[arg-type]
    return min(starts) if starts else 0.0


def _end(run: RunDir, sensor: pl.DataFrame | None, origin: float) -> float:
    ends = [0.0]
    for frame in (sensor, run.cpu, run.netdev, run.nvsmi):
        if frame is not None and "t" in frame.columns and frame["t"].null_count() < frame.height:
            ends.append(float(frame["t"].max()) - origin)  # type: ignore[arg-type]
    return max(ends)


def _bands(
    phases: list[Phase], by_phase: dict[Any, dict[str, Any]], origin: float, end: float
) -> list[dict[str, Any]]:
    bands = []
    for p in phases:
        judged = by_phase.get(p.name, {})
        outcome = judged.get("outcome", "not judged")
        flagged = [f["property"] for f in judged.get("findings", []) if f.get("decision") == "inconsistent"]
        t1 = (p.t1 if p.t1 is not None else origin + end) - origin
        bands.append(
            {
                "phase": p.name,
                "claimed": str(p.claimed),
                "outcome": outcome,
                "flagged_by": ", ".join(flagged),
                "t0": round(p.t0 - origin, 3),
                "t1": round(max(t1, p.t0 - origin), 3),
                "mark": MARK.get(outcome, "") + (" " + ", ".join(flagged) if flagged else ""),
            }
        )
    return bands


def _telemetry(
    signals: list[Panel],
    bands: list[dict[str, Any]],
    labels: list[str],
    verdict: dict[str, Any],
    domain: list[float],
) -> Section:
    """One panel per signal; a flagged phase is outlined on the panels whose stream its
    inconsistent findings name as basis (the signal that decided it)."""
    deciding: dict[str, dict[str, list[str]]] = {}  # panel key -> phase -> properties
    for p in verdict.get("phases", []):
        for f in p.get("findings", []):
            if f.get("decision") == "inconsistent":
                for key in deciding_panels(f, signals):
                    deciding.setdefault(key, {}).setdefault(p.get("phase"), []).append(f.get("property"))
    where = {b["phase"]: b for b in bands}
    plots = []
    for panel in signals:
        flags = [
            {"phase": ph, "t0": where[ph]["t0"], "t1": where[ph]["t1"], "label": "✗ " + ", ".join(props)}
            for ph, props in deciding.get(panel.key, {}).items()
            if ph in where
        ]
        plots.append(_plots.telemetry(panel.title, panel.unit, panel.rows(), bands, labels, flags, domain))
    if not signals:
        return Section("Telemetry", "<p>No telemetry stream with timestamps in this run.</p>")
    note = (
        "<p>Claimed phases are shaded by label. A red dashed box marks a phase judged "
        "<b>inconsistent</b> on the panel whose stream decided it (the finding's basis). "
        f"Series are min/max-decimated to at most {2 * BUCKETS} points each; "
        + ", ".join(
            f"{esc(s.title)}: {s.raw_points:,} samples from <code>{esc(s.stream)}</code>" for s in signals
        )
        + ".</p>"
    )
    return Section("Telemetry", note, plots, anchor="telemetry")


# Which plotted signal an evidence key speaks of (``observed_cpu_s`` -> CPU cores, ...)
_SIGNAL_WORDS = {
    "cpu_cores": ("cpu", "cores"),
    "memory": ("mem", "rss", "pss", "footprint", "bytes_per_param"),
    "nic": ("net", "nic", "sync", "rx_", "tx_", "collective"),
    "gpu_power": ("power", "energy", "joule"),
    "gpu_util": ("util", "sm_active", "activity"),
    "gpu_memory": ("mem", "footprint"),
}


def deciding_panels(finding: dict[str, Any], signals: list[Panel]) -> list[str]:
    """The panels that show the signal an inconsistent finding rests on: those drawn from
    a stream in its ``basis`` whose signal its evidence names; every panel of those
    streams when the evidence names none of them (the finding still used the stream)."""
    basis = set(finding.get("basis") or [])
    candidates = [s for s in signals if s.stream in basis]
    keys = " ".join(str(k).lower() for k in (finding.get("evidence") or {}))
    named = [s.key for s in candidates if any(w in keys for w in _SIGNAL_WORDS.get(s.key, ()))]
    return named or [s.key for s in candidates]


def _phase_table(verdict: dict[str, Any]) -> str:
    """One row per phase: inconsistent findings open with their evidence; the rest as
    compact tags (hover for the evidence)."""
    rows = []
    for p in verdict.get("phases", []):
        outcome = str(p.get("outcome", "?"))
        findings = p.get("findings", [])
        loud = [_finding_detail(f) for f in findings if f.get("decision") == "inconsistent"]
        quiet = [_finding_tag(f) for f in findings if f.get("decision") != "inconsistent"]
        rows.append(
            [
                f"<b>{esc(p.get('phase'))}</b>",
                esc(p.get("claimed")),
                f'<span class="tag {esc(outcome)}">{esc(outcome)}</span>',
                f"{float(p.get('confidence', 0.0)):.2f}",
                "".join(loud) + '<div class="tags">' + " ".join(quiet) + "</div>",
            ]
        )
    return table(["phase", "claimed", "outcome", "confidence", "findings"], rows)


def _evidence_text(f: dict[str, Any]) -> str:
    evidence = {k: v for k, v in (f.get("evidence") or {}).items() if k != "flagged_record_ids"}
    return ", ".join(f"{k}={_short(v)}" for k, v in list(evidence.items())[:10])


def _finding_tag(f: dict[str, Any]) -> str:
    decision = str(f.get("decision", "?"))
    basis = ", ".join(f.get("basis") or []) or "no basis"
    title = esc(f"{decision}; basis: {basis}; {_evidence_text(f)}")
    return f'<span class="ftag {esc(decision)}" title="{title}">{MARK.get(decision, "")} {esc(f.get("property"))}</span>'


def _finding_detail(f: dict[str, Any]) -> str:
    ids = (f.get("evidence") or {}).get("flagged_record_ids") or []
    links = " ".join(f'<a href="#rec-{esc(i)}">{esc(i)}</a>' for i in ids[:10])
    basis = ", ".join(f.get("basis") or []) or "-"
    return (
        f'<div class="finding"><span class="tag inconsistent">inconsistent</span> <b>{esc(f.get("property"))}</b>'
        f' (deciding signal: {esc(basis)})<div class="mono">{esc(_evidence_text(f))}</div>{links}</div>'
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _flagged_ids(verdict: dict[str, Any]) -> list[str]:
    return [
        str(i)
        for p in verdict.get("phases", [])
        for f in p.get("findings", [])
        for i in (f.get("evidence") or {}).get("flagged_record_ids") or []
    ]
