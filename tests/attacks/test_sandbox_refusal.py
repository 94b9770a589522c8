"""Fail closed: without bwrap, user namespaces or seccomp, untrusted code is refused.

Each missing piece is faked (the probe sees no bwrap binary, or the namespace or seccomp
probe fails as it does on such hosts); nothing is skipped.
"""

from __future__ import annotations

import logging
import subprocess

import pytest
from attack_data import small_trace

from inspectorate.attacks import Limits, Proposal, SandboxUnavailable, redteam, run_sandboxed
from inspectorate.attacks import _sandbox_isolation as isolation
from inspectorate.attacks import _sandbox_seccomp as seccomp
from inspectorate.errors import InputError

CODE = "def mutate(records):\n    for r in records:\n        r['op_type'] = 'eval'\n    return records\n"


@pytest.fixture(autouse=True)
def fresh_probe():
    isolation.isolation_problem.cache_clear()
    yield
    isolation.isolation_problem.cache_clear()


def no_bwrap(monkeypatch):
    real = isolation.shutil.which
    monkeypatch.setattr(
        isolation.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real(name, *a, **k)
    )


def no_userns(monkeypatch):
    message = "bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces."
    monkeypatch.setattr(isolation.shutil, "which", lambda name, *a, **k: "/usr/bin/bwrap")
    monkeypatch.setattr(
        isolation, "_run_probe", lambda code: subprocess.CompletedProcess(["bwrap"], 1, "", message + "\n")
    )


def no_seccomp(monkeypatch):
    def probe(code):
        if "install" in code:  # the seccomp probe; the namespace probe succeeds
            return subprocess.CompletedProcess(
                ["bwrap"], 1, "", "OSError: [Errno 22] prctl(PR_SET_SECCOMP) failed\n"
            )
        return subprocess.CompletedProcess(["bwrap"], 0, "ok\n", "")

    monkeypatch.setattr(isolation.shutil, "which", lambda name, *a, **k: "/usr/bin/bwrap")
    monkeypatch.setattr(isolation, "_run_probe", probe)


def unknown_arch(monkeypatch):
    monkeypatch.setattr(seccomp, "machine", lambda: "s390x")


MISSING = {
    "bwrap": (no_bwrap, "apt-get install bubblewrap"),
    "userns": (no_userns, "unprivileged user namespaces"),
    "seccomp": (no_seccomp, "seccomp filtering is unavailable"),
    "arch": (unknown_arch, "architecture 's390x'"),
}


class Coder:
    """An attacker that writes code (as an LLM does)."""

    name = "coder"

    def __init__(self):
        self.proposed = 0

    def prepare(self, commitment, baseline):
        pass

    def propose(self, history):
        self.proposed += 1
        return Proposal("relabel-eval", "training as eval", "test", code=CODE)


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_run_sandboxed_refuses_naming_the_missing_piece(missing, monkeypatch):
    fake, fix = MISSING[missing]
    fake(monkeypatch)
    with pytest.raises(SandboxUnavailable) as info:
        run_sandboxed(CODE, small_trace())
    assert isinstance(info.value, InputError)
    assert fix in str(info.value) and "--unsandboxed" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_redteam_refuses_a_code_attacker_before_any_round(missing, monkeypatch, small_commitment, tmp_path):
    MISSING[missing][0](monkeypatch)
    bot = Coder()
    with pytest.raises(SandboxUnavailable):
        redteam(3, bot, small_commitment, small_trace(), tmp_path / "r.jsonl")
    assert bot.proposed == 0 and not (tmp_path / "r.jsonl").exists()


def test_offline_attacker_runs_no_code_and_needs_no_sandbox(monkeypatch, small_commitment):
    no_bwrap(monkeypatch)
    report = redteam(3, "offline", small_commitment, small_trace(), None, seed=1)
    assert len(report.rounds) == 3 and all(r["mutate_code"] is None for r in report.rounds)


def test_unsandboxed_runs_and_warns_every_round(monkeypatch, small_commitment, caplog):
    no_bwrap(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="inspectorate.attacks"):
        report = redteam(3, Coder(), small_commitment, small_trace(), None, unsandboxed=True)
    warnings = [r.getMessage() for r in caplog.records if "WITHOUT the OS sandbox" in r.getMessage()]
    assert [w.split()[2] for w in warnings] == ["1", "2", "3"]
    assert all(r["error"] is None and r["intent_preserved"] for r in report.rounds)
    result = run_sandboxed(CODE, small_trace(), Limits(unsandboxed=True))
    assert result.ok and {r["op_type"] for r in result.records} == {"eval"}


def test_unsandboxed_timeout_kills_the_process_group():
    code = "def mutate(records):\n    while True:\n        pass\n"
    result = run_sandboxed(code, small_trace()[:2], Limits(unsandboxed=True, timeout_s=0.5, cpu_s=30))
    assert result.kind == "timeout" and result.returncode == -9


def test_old_bwrap_is_named(monkeypatch):
    monkeypatch.setattr(isolation.shutil, "which", lambda name, *a, **k: "/usr/bin/bwrap")
    monkeypatch.setattr(
        isolation,
        "_run_probe",
        lambda code: subprocess.CompletedProcess(["bwrap"], 1, "", "bwrap: Unknown option --size\n"),
    )
    with pytest.raises(SandboxUnavailable, match="too old"):
        run_sandboxed(CODE, small_trace())


def cli(monkeypatch, capsys, *args):
    from inspectorate import cli as cli_module
    from inspectorate.attacks import _llm

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-never-used")
    monkeypatch.setattr(_llm, "_client", lambda provider: object())  # no SDK, no network
    # invoke(), not main(): main ends the process with os._exit once it has answered
    code = cli_module.invoke(["redteam", *args])
    return code, capsys.readouterr()


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_cli_exit_2_with_one_line(missing, monkeypatch, capsys, tmp_path, small_commitment):
    MISSING[missing][0](monkeypatch)
    commitment, baseline = _files(tmp_path, small_commitment)
    code, captured = cli(
        monkeypatch, capsys, "--attacker", "anthropic", "--commitment", commitment, "--baseline", baseline,
        "--out", str(tmp_path / "r.jsonl"), "--rounds", "2",
    )  # fmt: skip
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and MISSING[missing][1] in lines[0]
    assert lines[0].startswith("error:") and "refusing to run untrusted code" in lines[0]


def test_cli_unsandboxed_flag_warns_each_round(monkeypatch, capsys, caplog, tmp_path, small_commitment):
    no_bwrap(monkeypatch)
    commitment, baseline = _files(tmp_path, small_commitment)
    with caplog.at_level(logging.WARNING, logger="inspectorate.attacks"):
        code, captured = cli(
            monkeypatch, capsys, "--attacker", "offline", "--commitment", commitment, "--baseline", baseline,
            "--out", str(tmp_path / "r.jsonl"), "--rounds", "2", "--unsandboxed",
        )  # fmt: skip
    assert code == 0 and "2 rounds" in captured.out
    assert sum("WITHOUT the OS sandbox" in r.getMessage() for r in caplog.records) == 2


def _files(tmp_path, commitment):
    import yaml

    from inspectorate.trace import write_trace

    (tmp_path / "c.yml").write_text(yaml.safe_dump(commitment.to_dict()))
    write_trace(small_trace(), tmp_path / "t.jsonl")
    return str(tmp_path / "c.yml"), str(tmp_path / "t.jsonl")


def test_a_child_that_cannot_start_is_a_result_not_an_exception(monkeypatch):
    monkeypatch.setattr(isolation, "interpreter", lambda: "/nonexistent/python3")
    result = run_sandboxed(CODE, small_trace(), Limits(unsandboxed=True))
    assert not result.ok and result.kind == "isolation" and "could not start" in result.error
