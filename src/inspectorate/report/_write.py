"""Entry points: ``write_report`` (the ``report`` command) and the two the ``check`` and
``verify`` commands call with the verdict they already have (``--report PATH``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.report import _vega
from inspectorate.report._html import Page, render

MARKER = "<!-- written by inspectorate report -->"


def write_report(
    source: Path,
    out: Path,
    *,
    commitment: Path | None = None,
    verdict: Path | None = None,
    force: bool = False,
) -> Path:
    """Render SOURCE (a run directory, a trace, or a bench output directory) to OUT.

    A run directory is judged by ``verify`` unless ``verdict`` names a saved ``verify
    --format json``; a trace is checked against ``commitment`` (or its saved ``check
    --format json`` verdict); without either a trace is drawn unjudged.
    """
    _vega.vl_convert()  # the missing extra is one line, before any slow work
    source = Path(source)
    if not source.exists():
        raise InputError("no such file or directory", source)
    _check_out(out, force, source)
    from inspectorate.report._bench import bench_page, is_bench_dir

    if is_bench_dir(source):
        return _write(bench_page(source), out)
    saved = _read_verdict(verdict) if verdict is not None else None
    if _is_run_dir(source):
        from inspectorate.trace import load_run

        run = load_run(source)
        if saved is None:
            saved = _judge_run(run, commitment)
        return _write(_run_page(run, saved), out)
    from inspectorate.trace import read_trace

    trace = read_trace(source)
    if saved is None and commitment is not None:
        from inspectorate.commitment import check, load_commitment

        saved = check(trace, load_commitment(commitment)).to_dict()
    from inspectorate.report._trace import trace_page

    return _write(trace_page(trace, saved, str(source)), out)


def report_run(run: Any, verdict: Any, out: Path, force: bool = False) -> Path:
    """``verify --report``: the page for a loaded RunDir and the RunVerdict just computed."""
    _vega.vl_convert()
    _check_out(out, force, Path(run.path))
    return _write(_run_page(run, run_verdict_dict(verdict)), out)


def report_check(trace: Any, verdict: Any, out: Path, source: str = "", force: bool = False) -> Path:
    """``check --report``: the page for a Trace and the commitment Verdict just computed."""
    from inspectorate.report._trace import trace_page

    _vega.vl_convert()
    _check_out(out, force, Path(source) if source else None)
    return _write(trace_page(trace, verdict.to_dict(), source or str(trace.source)), out)


def report_path(out: Path, source: Path | None = None, force: bool = False) -> Path:
    """Fail now (InputError) if ``out`` cannot take a report or the extra is missing."""
    _vega.vl_convert()
    _check_out(Path(out), force, None if source is None else Path(source))
    return Path(out)


def run_verdict_dict(verdict: Any) -> dict[str, Any]:
    """``RunVerdict.to_dict`` plus the commitment verdict it carries (rule hits)."""
    out = dict(verdict.to_dict())
    if getattr(verdict, "commitment", None) is not None:
        out["commitment"] = verdict.commitment.to_dict()
    return out


def _run_page(run: Any, verdict: dict[str, Any]) -> Page:
    from inspectorate.report._run import run_page

    return run_page(run, verdict)


def _judge_run(run: Any, commitment: Path | None) -> dict[str, Any]:
    from inspectorate.commitment import load_commitment
    from inspectorate.verify import verify_run

    promised = load_commitment(commitment) if commitment is not None else None
    return run_verdict_dict(verify_run(run, promised))


def _is_run_dir(path: Path) -> bool:
    if not path.is_dir() or (path / "manifest.json").is_file():  # a partitioned trace
        return False
    return any(
        (path / name).exists() for name in ("workload_labels.jsonl", "phases", "sensor.jsonl", "cpu.csv")
    ) or any(
        (child / "workload_labels.jsonl").exists() or (child / "phases").is_dir()
        for child in path.iterdir()
        if child.is_dir()
    )


def _read_verdict(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the saved verdict ({exc})", path) from None
    if not isinstance(data, dict) or "verdict" not in data:
        raise InputError("not a verdict: expected the JSON of `check` or `verify --format json`", path)
    return data


def _check_out(out: Path, force: bool, source: Path | None) -> None:
    """Refuse to clobber anything this command did not write (evidence above all)."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError("the report is one HTML file: name it *.html", out)
    if out.is_dir():
        raise InputError("is a directory; name the HTML file to write", out)
    if not out.parent.is_dir():
        raise InputError("the folder to write into does not exist", out.parent)
    if source is not None and source.exists() and out.resolve() == source.resolve():
        raise InputError("the report would overwrite its own input", out)
    if out.exists() and not force and MARKER not in _head(out):
        raise InputError("exists and is not a report this tool wrote; pass --force to overwrite", out)


def _head(path: Path) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return fh.read(4096)
    except OSError:
        return ""


def _write(page: Page, out: Path) -> Path:
    from inspectorate import __version__

    text = render(page, f"inspectorate {__version__}")
    text = text.replace("<!DOCTYPE html>", f"<!DOCTYPE html>\n{MARKER}", 1)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
