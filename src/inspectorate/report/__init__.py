"""Rendering verdicts and reports for people."""

from inspectorate.report._progress import progress
from inspectorate.report._text import verdict_text

__all__ = ["progress", "verdict_text"]
