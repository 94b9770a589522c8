"""The harness: score entries on a suite, write results.jsonl and the leaderboard.

Every case is run under a timeout; an entry that raises, hangs or answers outside its
track's decisions gets ``error`` on that case (a scored failure) and the harness goes on.
Learning entries are trained leave-one-host-out: for each host, on the other hosts' cases
with their answers, then scored on the held-out host's cases. Evidence subsets are real
folders holding only the subset's files, so an external command sees exactly what an
in-process entrant sees.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.bench._case import ERROR, Answer, get_track
from inspectorate.bench._leaderboard import write_leaderboard
from inspectorate.bench._score import Scored
from inspectorate.bench._suite import Suite, load_suite
from inspectorate.bench._verifier import BenchVerdict, CaseView, Trainable, Verifier, make_verifier
from inspectorate.errors import InputError

# Which run-directory files each evidence subset keeps (labels: the claim, always kept).
LABELS = ("workload_labels.jsonl",)
SENSOR_FILES = ("sensor.jsonl", "netdev.log", "cpu.csv", "nvsmi.csv", "dcgm.csv")
SUBSET_FILES: dict[str, tuple[str, ...] | None] = {
    "full": None,
    "sensor": SENSOR_FILES + LABELS,
    # what an inspector outside the rack sees: NIC counters, nvidia-smi style counters,
    # host-level CPU/memory; no process sensor, no application logs
    "realistic": ("netdev.log", "cpu.csv", "nvsmi.csv") + LABELS,
}
# Streams an ablation removes one at a time (a glob each).
STREAMS = {
    "sensor": "sensor.jsonl",
    "netdev": "netdev.log",
    "cpu": "cpu.csv",
    "nvsmi": "nvsmi.csv",
    "dcgm": "dcgm.csv",
    "collectives": "collectives*.jsonl",
    "steps": "steps*.jsonl",
    "windows": "windows.jsonl",
    "nccl": "nccl_*.log",
    "provenance": "provenance.json",
    "claims": "claims",
}
BASELINES = ("threshold", "forest")


@dataclass
class Entry:
    name: str
    verifier: Verifier
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    fit_seconds: float = 0.0  # training a learning entry: its own time, not the harness's


def _keep(src: Path, dst: Path, keep: Callable[[str], bool]) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if keep(f.name):
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, dst / f.name)


def views_for(suite: Suite, work: Path, subset: str = "full", drop: str | None = None) -> list[CaseView]:
    """A view of every case under ``subset`` (minus stream ``drop``), materialised in ``work``.
    Trace cases (track a) are scored on ``full`` only: window records are application logs."""
    if subset not in SUBSET_FILES:
        raise InputError(f"unknown evidence subset {subset!r}; known: {', '.join(SUBSET_FILES)}")
    import fnmatch

    allowed = SUBSET_FILES[subset]
    made: dict[str, Path] = {}
    out = []
    for case in suite.cases:
        src = suite.root / case.evidence
        if get_track(case.track).evidence != "run_dir" or (allowed is None and drop is None):
            if subset != "full" and get_track(case.track).evidence == "trace":
                continue
            commitment = suite.root / case.commitment if case.commitment else None
            out.append(CaseView(case, src, commitment, subset))
            continue
        if case.evidence not in made:
            dst = work / f"{subset}{'-no-' + drop if drop else ''}" / case.evidence

            def keep(name: str) -> bool:
                if allowed is not None and name not in allowed:
                    return False
                return drop is None or not fnmatch.fnmatch(name, STREAMS[drop])

            if dst.exists():
                shutil.rmtree(dst)
            _keep(src, dst, keep)
            made[case.evidence] = dst
        out.append(CaseView(case, made[case.evidence], None, subset))
    return out


def _call(v: Verifier, view: CaseView, timeout: float) -> tuple[BenchVerdict | None, str | None, float]:
    """Run one verdict in a worker thread; (verdict, error, seconds). A hung entry is
    abandoned after ``timeout`` (its thread keeps running, daemonised)."""
    box: dict[str, Any] = {}

    def work() -> None:
        t0 = time.perf_counter()
        try:
            box["v"] = v.verify(view).validate(view.track)
        except BaseException as e:
            box["e"] = f"{type(e).__name__}: {e}"[:500]
        box["s"] = time.perf_counter() - t0

    t = threading.Thread(target=work, daemon=True)
    t0 = time.perf_counter()
    t.start()
    t.join(timeout)
    if t.is_alive():
        return None, f"hung: no verdict after {timeout:g} s", time.perf_counter() - t0
    return box.get("v"), box.get("e"), float(box.get("s", time.perf_counter() - t0))


def _row(
    view: CaseView, name: str, verdict: BenchVerdict | None, err: str | None, secs: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"id": view.case.id, "track": view.track, "verifier": name, "subset": view.subset}
    if verdict is None:
        row.update(decision=ERROR, score=0.5, error=err, evidence={})
    else:
        row.update(
            decision=verdict.decision,
            score=round(float(verdict.score), 6),
            evidence=_jsonable(verdict.evidence),
        )
        row["cost"] = {"tokens": verdict.tokens, "dollars": verdict.dollars}
    row["seconds"] = round(secs, 6)
    row.setdefault("cost", {"tokens": 0, "dollars": 0.0})
    return row


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def score_entry(
    v: Verifier,
    views: list[CaseView],
    answers: dict[str, Answer] | None,
    timeout: float,
    advance: Callable[[str], None],
) -> Entry:
    """Every case of ``v``'s tracks (others: not entered, no row); trainable entries LOHO."""
    entry = Entry(v.name, v)
    mine = [w for w in views if w.track in v.tracks]
    folds: list[tuple[list[CaseView], list[CaseView]]] = [([], mine)]
    if isinstance(v, Trainable):
        hosts = sorted({w.case.host for w in mine if w.case.host})
        folds = [
            ([w for w in mine if w.case.host and w.case.host != h], [w for w in mine if w.case.host == h])
            for h in hosts
        ]
        folds.append(([], [w for w in mine if not w.case.host]))
    t0 = time.perf_counter()
    for train, test in folds:
        if isinstance(v, Trainable):
            if answers is None:
                raise InputError(f"{v.name} learns from answers: give --answers (or a suite that ships them)")
            t_fit = time.perf_counter()
            try:
                v.fit(train, [answers[w.case.id] for w in train])
                entry.fit_seconds += time.perf_counter() - t_fit
            except Exception as e:
                for w in test:
                    entry.rows.append(_row(w, v.name, None, f"fit failed: {type(e).__name__}: {e}", 0.0))
                    advance(w.case.id)
                continue
        for w in test:
            verdict, err, secs = _call(v, w, timeout)
            entry.rows.append(_row(w, v.name, verdict, err, secs))
            advance(f"{v.name} {w.case.id}")
    entry.seconds = time.perf_counter() - t0
    return entry


def scored(rows: list[dict[str, Any]], answers: dict[str, Answer], suite: Suite) -> list[Scored]:
    hosts = {c.id: c.host for c in suite.cases}
    out = []
    for r in rows:
        a = answers.get(r["id"])
        if a is None:
            raise InputError(f"answers have no entry for case {r['id']}")
        cost = r.get("cost", {})
        out.append(
            Scored(
                r["id"],
                r["track"],
                a.family,
                hosts.get(r["id"]),
                a.adversarial,
                r["decision"],
                float(r["score"]),
                float(r["seconds"]),
                int(cost.get("tokens", 0)),
                float(cost.get("dollars", 0.0)),
            )
        )
    return out


def run_bench(
    suite_path: Path,
    out: Path,
    verifiers: list[Verifier | str],
    *,
    subset: str = "full",
    answers_path: Path | None = None,
    baselines: bool = True,
    ablate: bool = False,
    timeout: float = 120.0,
    seed: int = 0,
    reps: int = 1000,
    select: list[str] | None = None,
    quiet: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Score ``verifiers`` (+ the baselines) on the suite; write results and leaderboard.
    ``select``: case-id globs (``op_type/*``, ``*/r01/*``); a case is kept if any matches."""
    from inspectorate.report._progress import progress

    t_start = time.perf_counter()
    suite = load_suite(suite_path)
    if select:
        import fnmatch

        kept = [c for c in suite.cases if any(fnmatch.fnmatch(c.id, g) for g in select)]
        if not kept:
            raise InputError(f"--select {' '.join(select)} matches no case of the suite", suite.root)
        suite = Suite(suite.root, suite.manifest, kept)
    answers = suite.answers(answers_path)
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError("output folder exists and is not empty (use --force to replace it)", out)
    if out.exists() and force:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "views"
    entrants = [make_verifier(v) if isinstance(v, str) else v for v in verifiers]
    names = {e.name for e in entrants}
    if baselines:
        entrants += [make_verifier(b) for b in BASELINES if b not in names]
    views = views_for(suite, work, subset)
    t_prep = time.perf_counter() - t_start
    total = sum(1 for e in entrants for w in views if w.track in e.tracks)
    entries: list[Entry] = []
    with progress(total, "bench", quiet=quiet) as advance:
        for v in entrants:
            entries.append(score_entry(v, views, answers, timeout, advance))
    ablation: dict[str, dict[str, list[Scored]]] = {}
    if ablate and answers is not None:
        for stream in STREAMS:
            dropped = views_for(suite, work, subset, drop=stream)
            for v in entrants[:1]:
                rows = score_entry(v, dropped, answers, timeout, lambda _: None).rows
                ablation.setdefault(v.name, {})[stream] = scored(rows, answers, suite)
    t_loop = sum(e.seconds for e in entries)
    rows = [r for e in entries for r in e.rows]
    _write_results(out / "results.jsonl", rows, answers if answers_path is not None else None)
    shutil.rmtree(work, ignore_errors=True)  # the evidence views were copies
    if answers is None:
        return {"results": str(out / "results.jsonl"), "leaderboard": None}
    timing = {
        "prepare_seconds": t_prep,
        "loop_seconds": t_loop,
        "fit_seconds": sum(e.fit_seconds for e in entries),
        "started": t_start,
    }
    board = write_leaderboard(
        out,
        suite,
        subset,
        [(e.name, scored(e.rows, answers, suite), e.seconds) for e in entries],
        ablation,
        timing,
        seed,
        reps,
    )
    return board


def _write_results(path: Path, rows: list[dict[str, Any]], answers: dict[str, Answer] | None) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            rec = {k: r[k] for k in ("id", "track", "verifier", "subset", "score", "seconds", "cost")}
            rec["verdict"] = r["decision"]
            if "error" in r:
                rec["error"] = r["error"]
            rec["evidence"] = r.get("evidence", {})
            if answers is not None:  # the truth only when the caller handed the answers in
                a = answers[r["id"]]
                rec.update(truth=a.truth, family=a.family, variant=a.variant)
            f.write(json.dumps(rec, sort_keys=True) + "\n")
