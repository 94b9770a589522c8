"""``inspectorate ledger`` and ``check --head-log`` end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.data import commitment_path

pytest.importorskip("cryptography")

FRONTIER = str(commitment_path("frontier-training-cap"))


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """In process (the CLI's one error handler included): each subprocess costs seconds here."""
    from inspectorate.cli import invoke

    code = invoke([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli(*args: object) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", *map(str, args)], capture_output=True, text=True
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_keys_log_witness_and_check_head_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = tmp_path
    for key_id, role in (("host-a", "host"), ("log-a", "log"), ("w1", "witness")):
        assert (
            run(capsys, "ledger", "keygen", "--id", key_id, "--role", role, "--out", t / f"{key_id}.key")[0]
            == 0
        )
        assert (
            run(capsys, "ledger", "enrol", "--keyring", t / "ring.json", "--key", t / f"{key_id}.key")[0] == 0
        )
    code, _, err = cli("ledger", "keygen", "--id", "host-a", "--out", t / "host-a.key")  # a real process
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    assert run(capsys, "ledger", "init", t / "log", "--id", "log-a")[0] == 0
    trace = t / "t.jsonl"
    assert run(capsys, "trace", "generate", "--out", trace, "--chips", 2, "--hours", 0.1)[0] == 0
    signing = ("--key", t / "host-a.key", "--log", t / "log", "--log-key", t / "log-a.key")
    assert run(capsys, "ledger", "sign-stream", trace, *signing)[0] == 0
    assert (
        run(
            capsys,
            "ledger",
            "cosign",
            t / "log",
            "--key",
            t / "w1.key",
            "--keyring",
            t / "ring.json",
            "--state",
            t / "w.json",
        )[0]
        == 0
    )
    signed = ("--head-log", t / "log", "--keyring", t / "ring.json")
    code, out, _ = run(capsys, "check", trace, "--commitment", FRONTIER, *signed)
    assert code == 0, out
    # the prover drops the last record: the chain is intact, the signed head is not reached
    lines = trace.read_text().splitlines(keepends=True)
    trace.write_text("".join(lines[:-1]))
    code, out, _ = run(capsys, "check", trace, "--commitment", FRONTIER, *signed)
    assert code == 1 and "truncation" in out
    code, out, _ = run(
        capsys, "ledger", "verify-log", t / "log", "--keyring", t / "ring.json", "--stream", trace
    )
    assert code == 1 and "inconsistent" in out
    code, _, err = run(capsys, "check", trace, "--commitment", FRONTIER, "--head-log", t / "log")
    assert code == 2 and "--keyring" in err


def test_sensor_signing_options_go_together(tmp_path: Path) -> None:
    import os

    code, _, err = cli("sensor", "--pid", os.getpid(), "--out", tmp_path, "--key", tmp_path / "k.key")
    assert code == 2 and err.count("\n") == 1 and "--log-key go together" in err


def test_bad_keyring_and_missing_log_are_exit_2(tmp_path: Path) -> None:
    (tmp_path / "ring.json").write_text("{}")
    code, _, err = cli("ledger", "verify-log", tmp_path, "--keyring", tmp_path / "ring.json")
    assert code == 2 and "not a keyring" in err and err.count("\n") == 1
