"""The thin CLI: help lists both commands; user errors exit 2 with one line, before any work."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from inspectorate.testbed._cli import app

runner = CliRunner()


def test_help_lists_run_and_sweep() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "run" in result.output and "sweep" in result.output


def test_non_empty_out_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    result = runner.invoke(app, ["run", "--profile", "test", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in result.output and "Traceback" not in result.output


def test_bad_host_id_and_unknown_phase_exit_2(tmp_path: Path) -> None:
    bad_host = runner.invoke(
        app, ["run", "--profile", "test", "--host-id", "a b", "--out", str(tmp_path / "r1")]
    )
    assert bad_host.exit_code == 2 and "host id" in bad_host.output
    bad_phase = runner.invoke(
        app, ["run", "--profile", "test", "--phases", "nap", "--out", str(tmp_path / "r2")]
    )
    assert bad_phase.exit_code == 2 and "unknown phase" in bad_phase.output
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--profile", "cluster", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2


def test_corpus_with_too_many_characters_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "wide.txt"
    corpus.write_text("".join(chr(0x4E00 + i) for i in range(200)) * 10, encoding="utf-8")
    result = runner.invoke(
        app, ["run", "--profile", "test", "--corpus", str(corpus), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "distinct characters" in result.output
