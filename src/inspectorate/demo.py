"""``inspectorate demo``: the verifier end to end on the embedded data.

1. The six honest reference traces: chain verification, then `check` against the
   project's commitments and the seed's own reference commitment.
2. A generated 8-chip training trace, honest, then with injected violations (a
   training-FLOP cap crossed, training relabelled as inference, a tampered record):
   each verdict under the demo's commitment (a shipped file, demo-training-cap,
   written next to the traces so the printed hint reproduces it) with the rule that fired.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from inspectorate.commitment import check, load_commitment
from inspectorate.data import SEED_TRACES, commitment_path, seed_path
from inspectorate.trace import GenSpec, read_trace, write_generated

COMMITMENTS = ("frontier-training-cap", "inference-only", "fine-tune-only", "reference-no-frontier-training")
INJECTED = ("training", "over_cap", "relabel_training", "idle_work", "fragmented_jobs", "tampered")


def run_demo(out: Path, console: Console | None = None) -> int:
    console = console or Console(width=max(Console().width, 150))
    commitments = {name: load_commitment(commitment_path(name)) for name in COMMITMENTS}
    table = Table(title="Honest reference traces (seed 000 data, CC-BY-4.0)")
    table.add_column("trace")
    table.add_column("records", justify="right")
    table.add_column("chain")
    for name in COMMITMENTS:
        table.add_column(name)
    for name in SEED_TRACES:
        trace = read_trace(seed_path(name))
        chain = "intact" if not trace.chain_breaks() else "BROKEN"
        cells = [_cell(check(trace, c)) for c in commitments.values()]
        table.add_row(name, str(len(trace)), chain, *cells)
    console.print(table)
    console.print(
        "[dim]The reference commitment's registries (window range, chips, datasets) were written for "
        "legit_finetune only; bloom_real aggregates 384 GPUs under one chip_id (see commitments/README.md).[/dim]\n"
    )
    _generated(out, console)
    return 0


def _cell(verdict) -> str:
    if verdict.compliant:
        return "[green]compliant[/green]"
    rules = list(dict.fromkeys(v.rule_id for v in verdict.violations))
    return f"[red]violation[/red] {', '.join(rules[:2])}{' …' if len(rules) > 2 else ''}"


DEMO_COMMITMENT = "demo-training-cap"


def _generated(out: Path, console: Console) -> None:
    # The demo's commitment is a shipped file (frontier-training-cap at the generated
    # run's scale), copied next to the traces so the hint below reproduces the table.
    promise = out / f"{DEMO_COMMITMENT}.yml"
    out.mkdir(parents=True, exist_ok=True)
    promise.write_bytes(commitment_path(DEMO_COMMITMENT).read_bytes())
    demo_commitment = load_commitment(promise)
    table = Table(title=f"Generated 8-chip × 2 h traces vs {demo_commitment.id} ({promise.name})")
    for col in ("scenario", "records", "verdict", "triggered rule", "flagged", "why"):
        table.add_column(col)
    for scenario in INJECTED:
        path = out / f"generated_{scenario}.jsonl"
        write_generated(GenSpec(chips=8, hours=2, scenario=scenario, seed=1), path)
        verdict = check(read_trace(path), demo_commitment)
        trigger = verdict.trigger
        table.add_row(
            scenario,
            str(verdict.records),
            "compliant" if verdict.compliant else "[red]violation[/red]",
            verdict.triggered_rule_id or "-",
            str(trigger.count if trigger else 0),
            (trigger.message if trigger else "all rules hold"),
        )
    console.print(table)
    console.print(
        f"[dim]Files in {out}; try: inspectorate check {out}/generated_over_cap.jsonl -c {promise} --format json[/dim]"
    )
