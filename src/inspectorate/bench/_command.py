"""An external entrant: any program that follows the ``check`` / ``verify`` CLI contract.

``--cmd "PROG ARGS"`` is run as

    PROG ARGS check TRACE --commitment C.yml --format json     (track a)
    PROG ARGS verify RUN_DIR --format json                      (tracks b-e)

with a timeout; exit 0/1 are verdicts, anything else (2 = bad input, a crash, a timeout)
is a scored failure of the entrant, never of the harness. ``check`` prints the seed's
verdict object (``verdict`` 1 = compliant / 0 = violation, ``confidence``); ``verify``
prints ``{"phases": [{"phase", "verdict", "confidence", "outcome"?, "findings"?}]}``.
Findings named after our properties are read per track as our own adapter reads them;
otherwise the phase's ``outcome`` (or its verdict bit) answers every track. A run's
``verify`` output is reused for all of its phases. stdout and stderr of every call are
kept under ``OUT/logs/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from inspectorate.bench._case import COMPLIANT, CONSISTENT, INCONSISTENT, UNVERIFIABLE, VIOLATION
from inspectorate.bench._ours import TRACK_PROPERTIES, track_decision
from inspectorate.bench._verifier import BenchVerdict, CaseView
from inspectorate.errors import EntrantError, InputError


class Command:
    tracks: tuple[str, ...] = ("compliance", "op_type", "undeclared_work", "model_size", "finetune")

    def __init__(
        self,
        cmd: str,
        timeout: float = 120.0,
        logs: Path | None = None,
        name: str | None = None,
        tracks: tuple[str, ...] | None = None,
    ):
        self.argv = shlex.split(cmd)
        if tracks is not None:
            self.tracks = tracks
        if not self.argv:
            raise InputError("--cmd is empty")
        self.name = name or f"cmd:{cmd}"
        self.timeout = timeout
        self.logs = logs
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def _call(self, args: list[str]) -> dict[str, Any]:
        key = tuple(args)
        if key in self._cache:
            return self._cache[key]
        argv = self.argv + args
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env={**os.environ, "NO_COLOR": "1"},
            )
        except subprocess.TimeoutExpired as e:
            self._log(argv, _text(e.stdout), _text(e.stderr), None)
            raise EntrantError(f"timed out after {self.timeout:g} s") from None
        except OSError as e:
            raise EntrantError(f"could not start {argv[0]!r}: {e}") from None
        log = self._log(argv, proc.stdout, proc.stderr, proc.returncode)
        if proc.returncode not in (0, 1):
            last = (proc.stderr.strip().splitlines() or [""])[-1][:300]
            raise EntrantError(f"exit {proc.returncode}: {last}")
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            raise EntrantError("stdout is not one JSON object") from None
        if not isinstance(out, dict):
            raise EntrantError("stdout is not a JSON object")
        result = {"out": out, "seconds": time.perf_counter() - t0, "log": log}
        self._cache[key] = result
        return result

    def _log(self, argv: list[str], stdout: str, stderr: str, rc: int | None) -> str | None:
        if self.logs is None:
            return None
        self.logs.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:12]
        (self.logs / f"{tag}.stdout").write_text(stdout or "")
        (self.logs / f"{tag}.stderr").write_text(stderr or "")
        (self.logs / f"{tag}.json").write_text(json.dumps({"argv": argv, "returncode": rc}))
        return f"logs/{tag}"

    def verify(self, view: CaseView) -> BenchVerdict:
        if not view.evidence.exists():
            raise InputError("evidence not found", view.evidence)
        if view.track == "compliance":
            if view.commitment is None:
                raise InputError("compliance case without a commitment", view.evidence)
            res = self._call(
                ["check", str(view.evidence), "--commitment", str(view.commitment), "--format", "json"]
            )
            out = res["out"]
            bit = out.get("verdict")
            if bit not in (0, 1):
                raise EntrantError("check output has no verdict 0|1")
            conf = _conf(out)
            decision, score = (COMPLIANT, 1.0 - conf) if bit == 1 else (VIOLATION, conf)
            return BenchVerdict(decision, score, {"log": res["log"]})
        res = self._call(["verify", str(view.evidence), "--format", "json"])
        phases = {p.get("phase"): p for p in res["out"].get("phases", []) if isinstance(p, dict)}
        phase = phases.get(view.case.phase)
        if phase is None:
            raise EntrantError(f"verify output has no phase {view.case.phase!r}")
        findings = [f for f in phase.get("findings", []) if isinstance(f, dict) and "property" in f]
        for f in findings:
            f.setdefault("score", f.get("evidence", {}).get("score", 0.5))
        props = TRACK_PROPERTIES.get(view.track, ())
        if any(f["property"] in props for f in findings):
            verdict = track_decision(findings, props)
            verdict.evidence["log"] = res["log"]
            return verdict
        outcome = phase.get("outcome")
        conf = _conf(phase)
        if outcome not in (CONSISTENT, INCONSISTENT, UNVERIFIABLE):
            outcome = CONSISTENT if phase.get("verdict") == 1 else INCONSISTENT
        score = conf if outcome == INCONSISTENT else 1.0 - conf if outcome == CONSISTENT else 0.5
        return BenchVerdict(outcome, score, {"log": res["log"]})


def _conf(obj: dict[str, Any]) -> float:
    c = obj.get("confidence", 1.0)
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise EntrantError("confidence is not a number") from None
    if not 0.0 <= c <= 1.0:
        raise EntrantError(f"confidence {c} not in [0, 1]")
    return c


def _text(b: Any) -> str:
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else str(b)


def reference_entrant(path: Path, timeout: float = 120.0, logs: Path | None = None) -> Command:
    """The write-up's reference checker at ``path`` (track a only), run as a program."""
    import sys

    if not (path / "inspector" / "consistency_checks.py").is_file():
        raise InputError("not the reference checker (inspector/consistency_checks.py missing)", path)
    cmd = shlex.join([sys.executable, "-m", "inspectorate.bench._reference_cli", str(path)])
    return Command(cmd, timeout, logs, name="reference", tracks=("compliance",))
