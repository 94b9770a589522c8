"""Rendering verdicts and reports for people."""

from inspectorate.report._text import verdict_text

__all__ = ["verdict_text"]
