"""The property catalogue (docs/properties.md): each compute-usage property, the signals it
needs, the bench track/families that measure it, and its measured status from a bench run.

Status rule (stated, not tuned): **detected** when the entry catches at least 90% of the
property's lies with an honest false-positive rate of at most 5%; **partial** when it
catches at least 30% (or 90% at a higher false-positive rate); **not yet** below that, or
when no suite case measures the property (then the row says "no cases").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError

DETECTED_CAUGHT, DETECTED_FPR, PARTIAL_CAUGHT = 0.9, 0.05, 0.3


@dataclass(frozen=True)
class Property:
    name: str
    source: str  # "write-up" or "ours"
    signals: str
    track: str | None
    families: tuple[str, ...] = ()  # empty: the whole track
    subset: str = "full"
    note: str = ""


PROPERTIES = (
    Property(
        "FLOP cap (training compute under the declared cap)",
        "write-up",
        "window-record FLOPs vs 6·N·D from step records; power × time × FLOP/J; the cap rule",
        "compliance",
        ("violate_scale", "violate_extend"),
    ),
    Property(
        "FLOP cap under evasion (splitting, relabelling, ghost chips, time smearing...)",
        "write-up",
        "per-job aggregation across ids, FLOP/token floors, chip registries, window grid",
        "compliance",
    ),
    Property(
        "Training vs inference vs idle",
        "write-up",
        "gradient-sync bytes on the NIC, utilisation/CPU-seconds, memory slope, collective log",
        "op_type",
    ),
    Property(
        "Model size",
        "write-up",
        "memory footprint vs parameters, gradient all-reduce bytes per step",
        "model_size",
    ),
    Property(
        "Undeclared fine-tune (fine-tune labelled as pre-training)",
        "write-up",
        "lr level and schedule, frozen groups, loss level, replayed checkpoints",
        "finetune",
    ),
    Property(
        "Undeclared post-training under a serving/idle claim",
        "write-up",
        "process-tree CPU-seconds vs the claimed work (spot-check), busy processes, NIC bytes",
        "undeclared_work",
        note="RL-style sampling that is post-training (the write-up's hard case) is not in the suite yet",
    ),
    Property(
        "Served-model identity",
        "write-up",
        "per-token divergence from the reference model (DiFR)",
        "served_identity",
    ),
    Property(
        "Model identity compliance (the trained model is the declared run)",
        "write-up",
        "replay of claimed training segments from committed checkpoints",
        None,
        note="replay exists (`inspectorate replay`, `verify --recomputed`); no bench track scores it yet",
    ),
    Property(
        "Realistic-subset verifier (rack I/O only: NIC, nvidia-smi style, host counters)",
        "write-up",
        "the same questions from NIC counters and host/GPU dashboards only",
        "op_type",
        subset="realistic",
    ),
    Property(
        "Work hidden under an idle claim",
        "ours",
        "process-tree CPU-seconds during idle, busy processes",
        "undeclared_work",
        ("adv_work_as_idle", "adv_work_as_idle+competent"),
    ),
    Property(
        "A second, undeclared job beside declared serving",
        "ours",
        "CPU-seconds beyond the claimed serving's spot-check, NIC bytes",
        "undeclared_work",
        ("adv_undeclared_job", "adv_undeclared_job+competent"),
    ),
    Property(
        "Tampered or truncated evidence (hash chains)",
        "ours",
        "record hash chain, published heads",
        "compliance",
        ("gen_tampered",),
    ),
)


def status(metrics: dict[str, Any] | None) -> tuple[str, str]:
    """(status, figures) from ``{metric: {"value", "lo", "hi"}}``."""
    if not metrics or not metrics.get("n_positive", {}).get("value"):
        return "not yet", "no cases"
    caught = metrics["caught"]["value"] or 0.0
    fpr = (metrics.get("honest_fpr") or {}).get("value")
    fpr_v = 0.0 if fpr is None else fpr
    fig = f"caught {caught:.2f}, honest FPR {'—' if fpr is None else f'{fpr:.2f}'}, n={int(metrics['n']['value'])}"
    if caught >= DETECTED_CAUGHT and fpr_v <= DETECTED_FPR:
        return "detected", fig
    if caught >= PARTIAL_CAUGHT:
        return "partial", fig
    return "not yet", fig


def _merge(fams: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    """Per-family figures pooled (caught weighted by positives; FPR: the track's honest)."""
    picked = [fams[n] for n in names if n in fams]
    if not picked:
        return None
    npos = sum(p["n_positive"]["value"] for p in picked)
    caught = sum(p["caught"]["value"] * p["n_positive"]["value"] for p in picked) / max(npos, 1)
    return {
        "n_positive": {"value": npos},
        "n": {"value": npos + picked[0]["n_honest"]["value"]},
        "caught": {"value": caught},
        "honest_fpr": picked[0]["honest_fpr"],
    }


def render(boards: list[dict[str, Any]], verifier: str) -> str:
    by_subset = {b["subset"]: b for b in boards}
    lines = [
        "# Compute-usage properties: what inspectorate can and cannot verify yet",
        "",
        "Generated by `inspectorate bench catalogue` from the latest bench run(s); do not edit by hand.",
        f"Status of entry `{verifier}`: **detected** = catches ≥{DETECTED_CAUGHT:.0%} of the property's lies at "
        f"≤{DETECTED_FPR:.0%} honest false positives; **partial** = catches ≥{PARTIAL_CAUGHT:.0%}; "
        "**not yet** = less, or no suite case measures it. Figures are point values on the suite named below "
        "(intervals in its leaderboard.json); a suite this small proves little either way.",
        "",
    ]
    for b in boards:
        s = b["suite"]
        lines.append(f"- `{b['subset']}` evidence: suite {s['name']} v{s['version']} (`{s['sha256'][:16]}`)")
    lines += [
        "",
        "| property | from | signals it needs | bench track | status | measured |",
        "|---|---|---|---|---|---|",
    ]
    for p in PROPERTIES:
        board = by_subset.get(p.subset)
        entry = next((e for e in board["entries"] if e["verifier"] == verifier), None) if board else None
        metrics = None
        if entry is not None and p.track is not None:
            metrics = (
                _merge(entry["families"].get(p.track, {}), p.families)
                if p.families
                else entry["tracks"].get(p.track)
            )
        st, fig = status(metrics)
        if board is None:
            fig = f"no `{p.subset}` bench run given"
        where = (
            "—" if p.track is None else f"`{p.track}`" + (f" ({', '.join(p.families)})" if p.families else "")
        )
        where += "" if p.subset == "full" else f" on `{p.subset}` evidence"
        lines.append(
            f"| {p.name} | {p.source} | {p.signals} | {where} | **{st}** | {fig}{'; ' + p.note if p.note else ''} |"
        )
    return "\n".join(lines) + "\n"


def write_catalogue(out: Path, results: list[Path] | Path | None, verifier: str = "ours") -> str:
    dirs = [results] if isinstance(results, Path) else list(results or [])
    boards = []
    for d in dirs:
        p = d / "leaderboard.json" if d.is_dir() else d
        if not p.is_file():
            raise InputError("no leaderboard.json (run `inspectorate bench run` first)", d)
        boards.append(json.loads(p.read_text(encoding="utf-8")))
    text = render(boards, verifier)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
