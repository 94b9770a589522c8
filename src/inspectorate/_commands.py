"""The library function behind each top-level judging command: load the inputs, pick
the engine, judge. ``cli.py`` parses arguments and calls exactly one of these, so the
same path is callable (and tested) without the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspectorate.errors import InputError

if TYPE_CHECKING:
    from inspectorate.commitment import Verdict
    from inspectorate.trace import Trace
    from inspectorate.verify import RunVerdict

LARGE_TRACE = 200_000  # records; below this a check takes about a second and needs no progress bar

Advance = Callable[[str], None]
# (total steps, whether the work is large enough to show) -> a context yielding ``advance``
Progress = Callable[[int, bool], AbstractContextManager[Advance]]


def _no_progress(total: int, large: bool) -> AbstractContextManager[Advance]:
    return nullcontext(lambda _step: None)


def check_files(
    trace: Path,
    commitment: Path,
    *,
    head: str | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    agent: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress = _no_progress,
    records: Trace | None = None,
) -> Verdict:
    """``inspectorate check``: read the trace (pinned to ``head``), load the commitment
    and judge it with the local engine, the Dask engine (``engine="dask"``, at
    ``scheduler`` or on a local cluster) or the local engine plus the LLM tier
    (``agent``, settings from the environment)."""
    from inspectorate.commitment import check, load_commitment
    from inspectorate.trace import read_trace

    if engine not in ("local", "dask"):
        raise InputError(f"unknown engine {engine!r}; known: local, dask")
    if agent and engine == "dask":
        raise InputError("--agent runs with the local engine only (drop --engine dask)")
    promise = load_commitment(commitment)
    records = records if records is not None else read_trace(trace, head=head)
    with progress(len(promise.effective_rules()), len(records) >= LARGE_TRACE) as advance:
        if engine == "dask":
            from inspectorate.scale import check_distributed

            return check_distributed(records, promise, scheduler=scheduler, on_rule=advance)
        if agent:
            from inspectorate.agent import check_with_agent

            return check_with_agent(records, promise, notify=notify, on_rule=advance)
        return check(records, promise, on_rule=advance)


def _check_out_of_core(
    trace: Path,
    commitment: Path,
    *,
    head: str | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Progress = _no_progress,
    **_: Any,
) -> tuple[Verdict, Trace]:
    """A partitioned layout or a large Parquet file: every rule over its on-disk parts
    (``scale._outcore``), here or on Dask workers that read their own parts."""
    from inspectorate.commitment import load_commitment
    from inspectorate.scale._outcore import check_on_cluster, check_out_of_core

    if engine not in ("local", "dask"):
        raise InputError(f"unknown engine {engine!r}; known: local, dask")
    promise = load_commitment(commitment)
    with progress(len(promise.effective_rules()), True) as advance:
        if engine == "dask":
            return check_on_cluster(trace, promise, head=head, scheduler=scheduler, on_rule=advance)
        return check_out_of_core(trace, promise, head=head, on_rule=advance)


@dataclass
class Checked:
    """``inspectorate check``'s answer: the commitment verdict and, with ``--head-log``,
    the signed-evidence audit (a failed audit makes the exit code 1 whatever the rules say)."""

    verdict: Verdict
    signed: Any = None
    records: Any = None  # the Trace judged (its head or chain tip goes into the JSON)

    @property
    def exit_code(self) -> int:
        bad = self.signed is not None and self.signed.decision != "consistent"
        return max(self.verdict.exit_code, 1) if bad else self.verdict.exit_code

    def to_dict(self) -> dict[str, Any]:
        out = self.verdict.to_dict()
        return out | ({"signed": self.signed.to_dict()} if self.signed is not None else {})

    def to_json(self, trace: Path, commitment: Path) -> str:
        """The archivable ``check --format json`` document (``report._archive``)."""
        from inspectorate.report._archive import check_document

        return check_document(self.to_dict(), self.records, trace, commitment)


def check_command(
    trace: Path,
    commitment: Path,
    *,
    head: str | None = None,
    head_log: Path | None = None,
    keyring: Path | None = None,
    report: Path | None = None,
    **options: Any,
) -> Checked:
    """``check_files`` plus what the command adds around it: the signed heads of
    ``head_log`` (checked against ``keyring``; the last signed head pins the tail unless
    ``head`` is given) and, with ``report``, the HTML page of the verdict."""
    signed = None
    if (head_log is None) != (keyring is None):
        raise InputError("--head-log and --keyring go together")
    if report is not None:
        from inspectorate.report import report_path

        report_path(report, trace)  # a bad --report path fails before the work, not after
    if head_log is not None and keyring is not None:
        from inspectorate.ledger import verify_signed_trace

        signed = verify_signed_trace(trace, head_log, keyring)
        head = head if head is not None else signed.final_head
    if options.pop("out_of_core", False):
        # opt-in: at 10^6 records the engine holds more than the in-memory path (815 vs
        # 567 MB), at 10^7 less (1.29 vs 2.15 GB; docs/scaling.md); 10^8 is not measured,
        # so nothing is sent there by size alone yet
        if report is not None or options.get("agent"):
            raise InputError("--out-of-core cannot be combined with --report or --agent")
        verdict, records = _check_out_of_core(trace, commitment, head=head, **options)
        return Checked(verdict, signed, records)
    from inspectorate.trace import read_trace

    records = read_trace(trace, head=head)
    verdict = check_files(trace, commitment, head=head, records=records, **options)
    if report is not None:
        from inspectorate.report import report_check

        report_check(records, verdict, report, str(trace))
    return Checked(verdict, signed, records)


@dataclass(frozen=True)
class SignedOptions:
    """``verify --head-log``: the sensor's signed heads and what the verifier checks them with."""

    head_log: Path | None = None
    keyring: Path | None = None
    challenge: str | None = None
    state: Path | None = None
    peers: Iterable[Path] = ()


def verify_files(
    run_dir: Path,
    commitment: Path | None = None,
    *,
    policy: str = "strict",
    recomputed: Iterable[str] = (),
    agent: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress = _no_progress,
    replay: tuple[Path, int, int | None] | None = None,
    signed: SignedOptions | None = None,
    report: Path | None = None,
) -> RunVerdict:
    """``inspectorate verify``: judge every phase of ``run_dir`` from its telemetry, with
    the commitment over its window records, ``recomputed`` findings (``PHASE=FILE``:
    a ``difr verify`` or ``replay`` finding), the verifier's own replay of every
    handed-over training claim (``replay``: corpus, random draws, seed), the signed
    heads (``signed``) and, with ``agent``, the LLM tier; ``report`` writes the HTML page."""
    from inspectorate.commitment import load_commitment
    from inspectorate.trace import load_run
    from inspectorate.verify._inspector import verify_run
    from inspectorate.verify._recomputed import read_recomputed
    from inspectorate.verify._registry import Finding
    from inspectorate.verify._replay_run import ReplayPlan

    signed = signed or SignedOptions()
    if (signed.head_log is None) != (signed.keyring is None):
        raise InputError("--head-log and --keyring go together")
    if report is not None:
        from inspectorate.report import report_path

        report_path(report, run_dir)  # a bad --report path fails before the work, not after
    promised = load_commitment(commitment) if commitment is not None else None
    extra: dict[str, list[Finding]] = {}
    for phase, found in map(read_recomputed, recomputed):
        extra.setdefault(phase, []).append(found)
    plan = None if replay is None else ReplayPlan(replay[0], draws=replay[1], seed=replay[2])
    run = load_run(run_dir)
    with progress(len(run.phases()), True) as advance:
        if agent:
            from inspectorate.agent import verify_with_agent

            verdict = verify_with_agent(
                run, promised, policy=policy, notify=notify, on_phase=advance, recomputed=extra, replay=plan
            )
        else:
            verdict = verify_run(
                run, promised, policy=policy, on_phase=advance, recomputed=extra, replay=plan
            )
    if signed.head_log is not None and signed.keyring is not None:
        from inspectorate.verify._signed import attach_signed

        attach_signed(
            verdict,
            signed.head_log,
            signed.keyring,
            challenge=signed.challenge,
            state=signed.state,
            peers=list(signed.peers),
        )
    if report is not None:
        from inspectorate.report import report_run

        report_run(run, verdict, report)
    return verdict


def verify_json(verdict: RunVerdict, run_dir: Path, commitment: Path | None) -> str:
    """The archivable ``verify --format json`` document: the run's window-record head or
    chain tip and the commitment's SHA-256 beside the verdict (``report._archive``)."""
    from inspectorate.report._archive import verify_document
    from inspectorate.trace import load_run

    return verify_document(verdict.to_dict(timed=True), load_run(run_dir), commitment)


def generate_file(
    spec: Any, out: Path, *, force: bool = False, partitioned: tuple[int, int] | None = None
) -> int:
    """``trace generate``: write the synthetic trace ``spec`` to ``out`` (refusing to
    overwrite evidence without ``force``) or, with ``partitioned`` = (seconds per window
    file, chip groups), straight into a new partitioned layout; the records written."""
    from inspectorate._paths import output_dir, output_file

    if partitioned is not None:
        from inspectorate.scale import generate_partitioned

        output_dir(out, "--out", forceable=False)  # a layout owns its directory
        return int(generate_partitioned(spec, out, *partitioned)["records"])
    from inspectorate.trace import write_generated

    output_file(out, "--out", force, companions=[out.with_name(out.name + ".head.json")])
    return int(write_generated(spec, out))


def verify_chain_file(trace: Path, head: str | None, root: str | None) -> tuple[list[str], bool]:
    """``trace verify-chain``: (lines to show, intact?) for a single chained file pinned to
    ``head``, or a partitioned directory checked per chip against ``root``."""
    if (trace / "manifest.json").exists():
        from inspectorate.scale import verify_partitioned

        problems = verify_partitioned(trace, expected_root=root)
        summary = "chains and roots intact" if not problems else f"{len(problems)} problem(s)"
        return [*problems[:20], summary], not problems
    from inspectorate.trace import read_trace

    breaks = read_trace(trace, head=head).chain_breaks()
    lines = [f"break at record {b.index} ({b.record_id}): {b.reason}" for b in breaks[:20]]
    return [*lines, "chain intact" if not breaks else f"{len(breaks)} break(s)"], not breaks
