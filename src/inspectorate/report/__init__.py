"""Rendering verdicts and reports for people."""

from inspectorate.report._progress import progress
from inspectorate.report._run_text import render_run_text
from inspectorate.report._text import verdict_text

__all__ = ["progress", "render_run_text", "verdict_text"]
