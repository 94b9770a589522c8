"""``inspectorate ledger`` and ``check --head-log`` end to end through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.data import commitment_path

pytest.importorskip("cryptography")

FRONTIER = str(commitment_path("frontier-training-cap"))


def cli(*args: object) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", *map(str, args)], capture_output=True, text=True
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_keys_log_witness_and_check_head_log(tmp_path: Path) -> None:
    t = tmp_path
    for key_id, role in (("host-a", "host"), ("log-a", "log"), ("w1", "witness")):
        assert cli("ledger", "keygen", "--id", key_id, "--role", role, "--out", t / f"{key_id}.key")[0] == 0
        assert cli("ledger", "enrol", "--keyring", t / "ring.json", "--key", t / f"{key_id}.key")[0] == 0
    code, _, err = cli("ledger", "keygen", "--id", "host-a", "--out", t / "host-a.key")
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    assert cli("ledger", "init", t / "log", "--id", "log-a")[0] == 0
    trace = t / "t.jsonl"
    assert cli("trace", "generate", "--out", trace, "--chips", 2, "--hours", 0.1)[0] == 0
    signing = ("--key", t / "host-a.key", "--log", t / "log", "--log-key", t / "log-a.key")
    assert cli("ledger", "sign-stream", trace, *signing)[0] == 0
    assert (
        cli(
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
    code, out, _ = cli("check", trace, "--commitment", FRONTIER, *signed)
    assert code == 0, out
    # the prover drops the last record: the chain is intact, the signed head is not reached
    lines = trace.read_text().splitlines(keepends=True)
    trace.write_text("".join(lines[:-1]))
    code, out, _ = cli("check", trace, "--commitment", FRONTIER, *signed)
    assert code == 1 and "truncation" in out
    code, out, _ = cli("ledger", "verify-log", t / "log", "--keyring", t / "ring.json", "--stream", trace)
    assert code == 1 and "inconsistent" in out
    code, _, err = cli("check", trace, "--commitment", FRONTIER, "--head-log", t / "log")
    assert code == 2 and "--keyring" in err
