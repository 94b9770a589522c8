"""Flagged window records as a table whose rows are link targets (``#rec-<id>``), so a
rule hit or a finding on the page links to the very records it flags."""

from __future__ import annotations

import polars as pl

from inspectorate.report._html import Section, esc

OPEN_ROWS = 25
MAX_ROWS = 300  # a page of flagged records is for reading; the rest are counted, not shown
COLUMNS = (
    "record_id",
    "chip_id",
    "job_id",
    "window_start",
    "op_type",
    "flops",
    "tokens_processed",
    "model_hash_prefix",
    "dataset_fingerprint",
)


def record_section(frame: pl.DataFrame, ids: list[str]) -> Section:
    wanted = list(dict.fromkeys(ids))
    shown = (
        frame.filter(pl.col("record_id").is_in(wanted[:MAX_ROWS]))
        if "record_id" in frame.columns
        else frame.clear()
    )
    cols = [c for c in COLUMNS if c in shown.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join(
        f'<tr id="rec-{esc(rec["record_id"])}">'
        + "".join(f"<td>{_cell(rec[c])}</td>" for c in cols)
        + "</tr>"
        for rec in shown.select(cols).iter_rows(named=True)
    )
    missing = len(wanted) - shown.height
    note = (
        f"<p>{len(wanted)} flagged record(s)"
        + (f"; {missing} not shown (over {MAX_ROWS} or not in this file)." if missing > 0 else ".")
        + "</p>"
    )
    rows = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if shown.height > OPEN_ROWS:  # a long list stays folded; following a link to a row unfolds it
        rows = f"<details><summary>show {shown.height} records</summary>{rows}</details>"
    return Section("Flagged records", note + rows, anchor="records")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<span class="mono">{value:.4g}</span>'
    return esc("" if value is None else value)
