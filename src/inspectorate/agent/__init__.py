"""The LLM inspector: judges semantic rules no deterministic check covers.

>>> from inspectorate.agent import check_with_agent, AgentSettings
>>> verdict = check_with_agent(read_trace("t.jsonl"), load_commitment("c.yml"), AgentSettings(backend="anthropic"))

Backends: Anthropic (prompt caching) and any OpenAI-compatible endpoint, from the
``[agent]`` extra. With no key or endpoint the tier is skipped with one line and the
rules stay listed as not evaluated. ``verify_with_agent`` does the same for a run
directory (``verify --agent``), with the telemetry findings in the digest. ``build_digest`` is the bounded evidence summary the
model reads; ``compile_commitment`` turns judgements into deterministic rules.

Names load on first use (PEP 562), so mounting ``inspectorate agent`` in the CLI costs
nothing until an agent command runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from inspectorate.agent._backends import AgentSettings as AgentSettings
    from inspectorate.agent._backends import BackendError as BackendError
    from inspectorate.agent._backends import make_backend as make_backend
    from inspectorate.agent._compile import CompileOutcome as CompileOutcome
    from inspectorate.agent._compile import compile_commitment as compile_commitment
    from inspectorate.agent._cost import PRICE_TABLE_VERSION as PRICE_TABLE_VERSION
    from inspectorate.agent._cost import CallRecord as CallRecord
    from inspectorate.agent._cost import Ledger as Ledger
    from inspectorate.agent._cost import Price as Price
    from inspectorate.agent._cost import PriceTable as PriceTable
    from inspectorate.agent._cost import load_prices as load_prices
    from inspectorate.agent._defender import DefenderProposal as DefenderProposal
    from inspectorate.agent._defender import llm_defend as llm_defend
    from inspectorate.agent._defender import propose_rules as propose_rules
    from inspectorate.agent._digest import build_digest as build_digest
    from inspectorate.agent._inspector import AgentReport as AgentReport
    from inspectorate.agent._inspector import check_with_agent as check_with_agent
    from inspectorate.agent._verdict import RuleJudgement as RuleJudgement
    from inspectorate.agent._verify import verify_with_agent as verify_with_agent


_EXPORTS = {
    "AgentSettings": "_backends",
    "BackendError": "_backends",
    "make_backend": "_backends",
    "CompileOutcome": "_compile",
    "compile_commitment": "_compile",
    "PRICE_TABLE_VERSION": "_cost",
    "CallRecord": "_cost",
    "Ledger": "_cost",
    "Price": "_cost",
    "PriceTable": "_cost",
    "load_prices": "_cost",
    "build_digest": "_digest",
    "AgentReport": "_inspector",
    "check_with_agent": "_inspector",
    "RuleJudgement": "_verdict",
    "verify_with_agent": "_verify",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
