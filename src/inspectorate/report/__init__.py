"""Rendering verdicts and reports for people: text for terminals, one HTML page with
plots for everyone else (``write_report``; needs the ``[report]`` extra)."""

from inspectorate.report._progress import progress
from inspectorate.report._run_text import render_run_text
from inspectorate.report._text import verdict_text
from inspectorate.report._write import report_check, report_path, report_run, write_report

__all__ = [
    "progress",
    "render_run_text",
    "report_check",
    "report_path",
    "report_run",
    "verdict_text",
    "write_report",
]
