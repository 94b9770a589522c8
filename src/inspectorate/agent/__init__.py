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

from inspectorate._lazy import lazy_exports

_EXPORTS = {
    "AgentSettings": "_backends",
    "BackendError": "_backends",
    "make_backend": "_backends",
    "ReplyCache": "_cache",
    "default_cache_dir": "_cache",
    "CompileOutcome": "_compile",
    "compile_commitment": "_compile",
    "PRICE_TABLE_VERSION": "_cost",
    "CallRecord": "_cost",
    "Ledger": "_cost",
    "Price": "_cost",
    "PriceTable": "_cost",
    "load_prices": "_cost",
    "build_digest": "_digest",
    "evidence_hash": "_digest",
    "AgentReport": "_inspector",
    "check_with_agent": "_inspector",
    "inspect_semantic": "_inspector",
    "merge_agent": "_inspector",
    "VERDICT_SCHEMA": "_verdict",
    "RuleJudgement": "_verdict",
    "validate_reply": "_verdict",
    "fold_agent": "_verify",
    "verify_with_agent": "_verify",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
