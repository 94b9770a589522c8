"""Progress bars appear on a terminal only, and never with --quiet."""

from __future__ import annotations

import io
import sys

from inspectorate.report import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(monkeypatch, stream, **kwargs) -> str:
    monkeypatch.setattr(sys, "stderr", stream)
    with progress(3, "red team", **kwargs) as advance:
        for n in range(3):
            advance(f"round {n}")
    return stream.getvalue()


def test_bar_on_a_terminal(monkeypatch):
    assert "red team" in _run(monkeypatch, Tty())


def test_silent_off_a_terminal_and_when_quiet(monkeypatch):
    assert _run(monkeypatch, io.StringIO()) == ""
    assert _run(monkeypatch, Tty(), quiet=True) == ""


def test_verify_reports_each_phase_to_the_progress_callback():
    from pathlib import Path

    from inspectorate.verify import verify_run

    run = Path(__file__).resolve().parents[1] / "data" / "rundirs" / "h100_two_hosts"
    seen: list[str] = []
    verdict = verify_run(run, policy="lenient", on_phase=seen.append)
    assert seen == [p.phase for p in verdict.phases] and seen
