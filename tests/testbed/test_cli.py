"""The thin CLI: help lists both commands; user errors exit 2 with one line, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspectorate.cli import invoke

FIXTURE_CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


@pytest.fixture()
def cli(capsys):
    """Run ``inspectorate testbed ARGS`` through the CLI's one error handler."""

    def run(*args: object) -> tuple[int, str, str]:
        code = invoke(["testbed", *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_help_lists_run_and_sweep(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0 and "run" in out and "sweep" in out


def test_non_empty_out_dir_is_refused(cli, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    code, _, err = cli("run", "--profile", "test", "--corpus", FIXTURE_CORPUS, "--out", tmp_path)
    assert code == 2 and "not an empty directory" in err and err.count("\n") == 1


def test_bad_host_id_and_unknown_phase_exit_2(cli, tmp_path: Path) -> None:
    code, _, err = cli(
        "run", "--profile", "test", "--corpus", FIXTURE_CORPUS, "--host-id", "a b", "--out", tmp_path / "r1"
    )
    assert code == 2 and "host id" in err and err.count("\n") == 1
    code, _, err = cli(
        "run", "--profile", "test", "--corpus", FIXTURE_CORPUS, "--phases", "nap", "--out", tmp_path / "r2"
    )
    assert code == 2 and "unknown phase" in err and err.count("\n") == 1
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_unknown_profile_is_a_usage_error(cli, tmp_path: Path) -> None:
    code, _, err = cli("run", "--profile", "cluster", "--corpus", FIXTURE_CORPUS, "--out", tmp_path / "r")
    assert code == 2 and "cluster" in err and "Traceback" not in err


def test_missing_corpus_is_a_one_line_error(cli, tmp_path: Path) -> None:
    code, _, err = cli("run", "--profile", "test", "--out", tmp_path / "r")
    assert code == 2 and "--corpus" in err
    code, _, err = cli("run", "--profile", "test", "--corpus", tmp_path / "nope.txt", "--out", tmp_path / "r")
    assert code == 2 and "cannot read corpus" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_corpus_with_too_many_characters_is_refused(cli, tmp_path: Path) -> None:
    corpus = tmp_path / "wide.txt"
    corpus.write_text("".join(chr(0x4E00 + i) for i in range(200)) * 10, encoding="utf-8")
    code, _, err = cli("run", "--profile", "test", "--corpus", corpus, "--out", tmp_path / "r")
    assert code == 2 and "distinct characters" in err and err.count("\n") == 1
