"""``redteam``: the seed's adversarial loop, with an honest scoreboard.

Per round an attacker proposes an attack (a library spec or sandboxed code), the loop
applies it to the violating baseline (``violate(clean)``), the commitment judges the
result, and the round is appended to a JSONL file. Only ``not caught and
intent_preserved`` is an evasion; a mutation that passes because it deleted the
violation is reported apart ("evasions that no longer carry the violation"), which is
the distinction the seed's tail-drop round blurred.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from inspectorate.attacks._facts import Facts
from inspectorate.attacks._intent import conserves_work, violate
from inspectorate.attacks._offline import OfflineAttacker, Proposal
from inspectorate.attacks._registry import Step, compose
from inspectorate.attacks._sandbox import Limits, SandboxError, run_mutation
from inspectorate.attacks._sandbox_isolation import SandboxUnavailable, require_isolation
from inspectorate.commitment import Commitment, check
from inspectorate.errors import InputError

Records = list[dict[str, Any]]
log = logging.getLogger("inspectorate.attacks")


class Attacker(Protocol):
    name: str

    def prepare(self, commitment: Commitment, baseline: Sequence[dict[str, Any]]) -> None: ...

    def propose(self, history: Sequence[dict[str, Any]]) -> Proposal: ...


@dataclass
class RedteamReport:
    """All rounds, the scoreboard, and (with ``defend``) the proposed commitment patch."""

    rounds: list[dict[str, Any]]
    out_path: Path | None = None
    defense: dict[str, Any] | None = None
    mutated: dict[int, Records] = field(default_factory=dict, repr=False)

    @property
    def evasions(self) -> list[dict[str, Any]]:
        return [r for r in self.rounds if r["evasion"]]

    @property
    def hollow_evasions(self) -> list[dict[str, Any]]:
        """Passed the verifier only because the violation was removed, not hidden."""
        return [r for r in self.rounds if not r["caught"] and not r["intent_preserved"] and not r["error"]]

    @property
    def caught(self) -> list[dict[str, Any]]:
        return [r for r in self.rounds if r["caught"]]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.rounds if r["error"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": len(self.rounds),
            "caught": len(self.caught),
            "evasions": len(self.evasions),
            "evasion_names": [r["evasion_name"] for r in self.evasions],
            "evasion_classes": sorted({r["evasion_name"] for r in self.evasions}),
            "hollow_evasions": len(self.hollow_evasions),
            "errors": len(self.errors),
            "cost_usd": round(sum(r["cost"] for r in self.rounds), 6),
            "out": None if self.out_path is None else str(self.out_path),
            "defense": self.defense,
        }

    def summary(self) -> str:
        d = self.to_dict()
        text = (
            f"{d['rounds']} rounds: {d['caught']} caught, {d['evasions']} evasions, {d['hollow_evasions']} "
            f"passed without the violation, {d['errors']} errors, ${d['cost_usd']:.4f}"
        )
        if self.defense:
            text += (
                f"\ndefend: +{len(self.defense['added_rules'])} rule(s) catch "
                f"{self.defense['evasions_caught_after']}/{self.defense['evasions_before']} evasions; "
                f"false positives on honest traces: {self.defense['false_positives'] or 'none'}"
            )
            llm = self.defense.get("llm")
            if llm:
                text += (
                    f"\ndefender llm: {len(llm['proposed'])} valid proposal(s), {len(llm['rejected'])} "
                    f"rejected, {len(llm['admissible'])} admissible"
                    + (f"; {llm['skipped']}" if llm.get("skipped") else "")
                )
        return text


def make_attacker(attacker: str | Attacker, seed: int = 0, strategy: str = "greedy") -> Attacker:
    """``offline`` | ``anthropic`` | ``openai`` | an object with ``propose``; ``strategy``
    is the offline attacker's strategy (``greedy`` or ``beam``: combinations)."""
    if not isinstance(attacker, str):
        return attacker
    if attacker == "offline":
        return OfflineAttacker(seed=seed, strategy=strategy)
    if attacker in ("anthropic", "openai"):
        from inspectorate.attacks._llm import LLMAttacker

        return LLMAttacker(provider=attacker)
    raise InputError(f"unknown attacker {attacker!r}; accepted: offline, anthropic, openai")


def redteam(
    rounds: int,
    attacker: str | Attacker,
    commitment: Commitment,
    baseline_records: Sequence[dict[str, Any]],
    out_path: str | Path | None,
    *,
    seed: int = 0,
    defend: bool = False,
    honest_traces: dict[str, Records] | None = None,
    limits: Limits | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    unsandboxed: bool = False,
    defender: str = "search",
    defender_settings: Any = None,
    strategy: str = "greedy",
) -> RedteamReport:
    """Run ``rounds`` rounds of ``attacker`` against ``commitment``, hiding ``violate(baseline)``.

    ``baseline_records`` is the clean, compliant trace; ``out_path`` gets one JSON line
    per round (appended as it goes). With ``defend`` the smallest rule change that
    catches the evasions is searched and all rounds are re-scored with it; ``defender``
    says who proposes the rules: ``search`` (offline candidates) or ``llm`` (the agent's
    LLM defender, configured by ``defender_settings`` or the environment; its model is
    resolved before the first round, so a missing key fails fast). ``strategy`` picks the
    offline attacker's strategy: ``beam`` searches pairs and triples of families.

    An attacker that writes code (anything but the built-in offline search) is refused
    up front (``SandboxUnavailable``) when the OS sandbox cannot be set up, unless
    ``unsandboxed`` is set; then every round logs a warning.
    """
    if rounds < 1:
        raise InputError(f"rounds must be >= 1, got {rounds}")
    run_defend = _defender(defender, defend, defender_settings)
    clean = [dict(r) for r in baseline_records]
    baseline = _violating_baseline(clean, commitment)
    bot = make_attacker(attacker, seed, strategy)
    if unsandboxed or (limits is not None and limits.unsandboxed):
        limits = replace(limits or Limits(), unsandboxed=True)
    elif not isinstance(bot, OfflineAttacker):  # it only ever proposes library attacks
        require_isolation()
    bot.prepare(commitment, clean)
    out = Path(out_path) if out_path is not None else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("", encoding="utf-8")
    report = RedteamReport([], out)
    for n in range(1, rounds + 1):
        if limits is not None and limits.unsandboxed:
            log.warning("warning: round %d runs attacker code WITHOUT the OS sandbox (--unsandboxed)", n)
        row, mutated = play_round(n, bot, commitment, baseline, report.rounds, seed, limits)
        report.rounds.append(row)
        if mutated is not None:
            report.mutated[n] = mutated
        if out is not None:
            with out.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
        if on_round is not None:
            on_round(row)
    if defend:
        report.defense = run_defend(report, commitment, clean, baseline, honest_traces)
    return report


DEFENDERS = ("search", "llm")


def _defender(name: str, defend: bool, settings: Any) -> Callable[..., dict[str, Any]]:
    """The function that proposes the patch: the offline search, or the LLM defender
    alone (``attacks.llm_defend`` without the offline candidates, so the two can be compared).
    A missing key is bad input here, before any round is played."""
    if name not in DEFENDERS:
        raise InputError(f"unknown defender {name!r}; accepted: {', '.join(DEFENDERS)}")
    if name == "search":
        from inspectorate.attacks._defend import defend as search

        return search
    if not defend:
        raise InputError("--defender llm needs --defend")
    from inspectorate.agent import AgentSettings, make_backend
    from inspectorate.attacks._llm_defender import llm_defend

    settings = settings or AgentSettings.from_env()
    backend = make_backend(settings)
    if isinstance(backend, str):
        raise InputError("--defender llm needs a model: " + backend.removeprefix("agent tier skipped: "))

    def ask_the_model(
        report: Any, commitment: Commitment, clean: Records, baseline: Records, honest: Any
    ) -> dict[str, Any]:
        return llm_defend(
            report, commitment, clean, baseline, honest, settings, backend, include_offline=False
        )

    return ask_the_model


def _violating_baseline(clean: Records, commitment: Commitment) -> Records:
    try:
        verdict = check(clean, commitment)
    except InputError:
        raise
    if not verdict.compliant:
        raise InputError(
            f"the baseline must comply with the commitment before it is inflated; it breaks "
            f"{sorted({v.rule_id for v in verdict.violations})}"
        )
    baseline = violate(clean, commitment)
    if check(baseline, commitment).compliant:
        raise InputError(
            "violate(baseline) is still compliant: the commitment has no per-job FLOP cap to cross"
        )
    return baseline


def play_round(
    n: int,
    bot: Attacker,
    commitment: Commitment,
    baseline: Records,
    history: Sequence[dict[str, Any]],
    seed: int,
    limits: Limits | None = None,
) -> tuple[dict[str, Any], Records | None]:
    """One round: propose, apply (library or sandbox), judge, score."""
    started = time.perf_counter()
    proposal = bot.propose(history)
    row: dict[str, Any] = {
        "round": n,
        "attacker": getattr(bot, "name", type(bot).__name__),
        "evasion_name": proposal.name,
        "attack_intent": proposal.intent,
        "rationale": proposal.rationale,
        "attack_spec": proposal.spec,
        "mutate_code": proposal.code,
        "round_seed": seed * 100003 + n,
        "cost": proposal.cost_usd,
        "caught": False,
        "triggered_rule_id": None,
        "fired_rules": [],
        "fired_kinds": [],
        "flagged_records": 0,
        "intent_preserved": False,
        "evasion": False,
        "mutated_record_count": 0,
        "error": None,
    }
    mutated = None
    try:
        mutated, intent = apply_proposal(proposal, baseline, row["round_seed"], limits, Facts(commitment))
        verdict = check(mutated, commitment)
        row.update(
            caught=not verdict.compliant,
            triggered_rule_id=verdict.triggered_rule_id,
            fired_rules=sorted({v.rule_id for v in verdict.violations}),
            fired_kinds=sorted({v.kind for v in verdict.violations}),
            flagged_records=len({i for v in verdict.violations for i in v.record_ids}),
            intent_preserved=intent,
            mutated_record_count=len(mutated),
        )
        row["evasion"] = bool(intent and not row["caught"])
    except SandboxUnavailable:
        raise  # the host, not the round, is at fault: stop instead of scoring an error
    except (InputError, SandboxError) as exc:
        row["error"] = str(exc)[:500]
        mutated = None
    row["seconds"] = round(time.perf_counter() - started, 4)
    return row, mutated


def apply_proposal(
    proposal: Proposal,
    baseline: Records,
    round_seed: int,
    limits: Limits | None = None,
    facts: Facts | None = None,
) -> tuple[Records, bool]:
    """The mutated records and whether the violation is still in them (``facts``: the
    commitment under attack, for parameters sized from it)."""
    if proposal.spec is not None:
        attack = compose([Step.from_dict(s) for s in proposal.spec["compose"]])
        mutated = attack(baseline, random.Random(round_seed), facts)
        return mutated, attack.intent_preserved(baseline, mutated)
    if proposal.code is not None:
        mutated = run_mutation(proposal.code, baseline, limits)
        return mutated, conserves_work(baseline, mutated)
    raise InputError("attacker proposed neither an attack spec nor mutation code")


def replay(
    row: dict[str, Any], baseline: Records, limits: Limits | None = None, commitment: Commitment | None = None
) -> Records:
    """Re-create a round's mutated trace from its JSONL row (spec rounds are deterministic;
    ``commitment`` sizes any parameter the row left at a commitment-derived default)."""
    proposal = Proposal(
        row["evasion_name"],
        row["attack_intent"],
        row["rationale"],
        row.get("attack_spec"),
        row.get("mutate_code"),
    )
    return apply_proposal(proposal, baseline, int(row["round_seed"]), limits, Facts(commitment))[0]
