"""``capture --user``: the workload runs unprivileged, adds its own evidence to the run
directory and can touch none of the verifier's (root only: dropping to a user needs it)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from inspectorate.capture import _capture
from inspectorate.capture._isolate import missing_rights
from inspectorate.capture._user import resolve_user
from inspectorate.errors import InputError

ISOLATION = missing_rights()
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # a venv under /root is not theirs to run


def _nobody() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


# Everything a root workload could do to the evidence, tried as the workload.
ATTEMPTS = r"""
import json, os, signal, sys
run = os.environ["INSPECTORATE_RUN_DIR"]
tried = {"uid": os.getuid()}
def attempt(name, fn):
    try:
        fn()
        tried[name] = "done"
    except OSError as exc:
        tried[name] = type(exc).__name__
def kill_sensors():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"inspectorate" in cmd and b"sensor" in cmd and int(pid) != os.getpid():
            os.kill(int(pid), signal.SIGKILL)
            return
    raise ProcessLookupError("no sensor found")
def leave_cgroup():
    for line in open("/proc/self/cgroup"):
        rel = line.strip().split(":", 2)[2]
        ctrl = line.split(":")[1].split(",")[0] or ""
        base = "/sys/fs/cgroup/" + (ctrl if ctrl else "")
        parent = os.path.dirname(base.rstrip("/") + rel)
        if os.path.exists(parent + "/cgroup.procs"):
            with open(parent + "/cgroup.procs", "w") as fh:
                fh.write(str(os.getpid()))
            return
    raise FileNotFoundError("no cgroup.procs")
attempt("kill_sensor", kill_sensors)
attempt("leave_cgroup", leave_cgroup)
attempt("append_sensor", lambda: open(os.path.join(run, "sensor.jsonl"), "a").write("{}\n"))
attempt("remove_sensor", lambda: os.unlink(os.path.join(run, "sensor.jsonl")))
attempt("rename_windows", lambda: os.rename(os.path.join(run, "windows.jsonl"), os.path.join(run, "w2")))
attempt("write_steps", lambda: open(os.path.join(run, "steps.jsonl"), "a").write(""))
os.makedirs(os.path.join(run, "claims", "p"), exist_ok=True)
with open(os.path.join(run, "claims", "p", "tried.json"), "w") as fh:
    json.dump(tried, fh)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a workload as another user")
@pytest.mark.skipif(bool(ISOLATION), reason=f"cgroups/namespaces unavailable: {'; '.join(ISOLATION)}")
@pytest.mark.skipif(_nobody() is None or SYSTEM_PYTHON is None, reason="no 'nobody' user or system python3")
def test_an_unprivileged_workload_adds_evidence_and_touches_none_of_the_verifiers():
    nobody = _nobody()
    assert nobody is not None and SYSTEM_PYTHON is not None
    base = Path(tempfile.mkdtemp(prefix="insp-user-"))
    try:
        os.chmod(base, 0o755)  # the workload must reach its run directory
        claims = base / "claims.json"
        claims.write_text(json.dumps({"phases": [{"name": "p", "op": "idle", "start": 0, "end": 30}]}))
        out = base / "run"
        result = _capture.capture([SYSTEM_PYTHON, "-c", ATTEMPTS], claims, out, user="nobody")
        assert result.exit_code == 0, (out / "capture.log").read_text(errors="replace")[-2000:]
        tried = json.loads((out / "claims" / "p" / "tried.json").read_text())
        assert tried["uid"] == nobody.pw_uid
        assert tried["write_steps"] == "done"  # its own evidence
        for name in ("kill_sensor", "leave_cgroup", "append_sensor", "remove_sensor", "rename_windows"):
            assert tried[name] == "PermissionError", tried
        prov = json.loads((out / "provenance.json").read_text())
        assert prov["workload_user"]["name"] == "nobody"
        lines = (out / "sensor.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["kind"] == "stop"  # the sensor lived to the end
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_user_resolution():
    assert resolve_user(None, {}) is None  # no --user, no sudo: the caller's identity
    with pytest.raises(InputError, match="no such user"):
        resolve_user("no-such-user-xyz", {})
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert resolve_user(me, {}) is None  # already that user
    assert resolve_user(None, {"SUDO_UID": "0"}) is None  # sudo alone changes nothing
    assert resolve_user("sudo", {"SUDO_UID": str(os.geteuid())}) is None
    with pytest.raises(InputError, match="SUDO_UID"):
        resolve_user("sudo", {})
