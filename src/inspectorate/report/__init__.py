"""Rendering verdicts and reports for people: text for terminals, one HTML page with
plots for everyone else (``write_report``; needs the ``[report]`` extra).

Names are imported on first use (PEP 562): ``check`` prints its verdict without
importing the run verifier or the HTML writer."""

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names below, for type checkers and editors
    from inspectorate.report._progress import progress as progress
    from inspectorate.report._run_text import render_run_text as render_run_text
    from inspectorate.report._text import verdict_text as verdict_text
    from inspectorate.report._write import report_check as report_check
    from inspectorate.report._write import report_path as report_path
    from inspectorate.report._write import report_run as report_run
    from inspectorate.report._write import write_report as write_report

_EXPORTS = {
    "progress": "_progress",
    "render_run_text": "_run_text",
    "verdict_text": "_text",
    "report_check": "_write",
    "report_path": "_write",
    "report_run": "_write",
    "write_report": "_write",
}

__all__ = [
    "progress",
    "render_run_text",
    "report_check",
    "report_path",
    "report_run",
    "verdict_text",
    "write_report",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
