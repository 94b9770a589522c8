"""The LLM inspector: judges semantic rules no deterministic check covers.

>>> from inspectorate.agent import check_with_agent, AgentSettings
>>> verdict = check_with_agent(read_trace("t.jsonl"), load_commitment("c.yml"), AgentSettings(backend="anthropic"))

Backends: Anthropic (prompt caching) and any OpenAI-compatible endpoint, from the
``[agent]`` extra. With no key or endpoint the tier is skipped with one line and the
rules stay listed as not evaluated. ``build_digest`` is the bounded evidence summary the
model reads; ``compile_commitment`` turns judgements into deterministic rules.
"""

from inspectorate.agent._backends import AgentSettings, BackendError, make_backend
from inspectorate.agent._cache import ReplyCache, default_cache_dir
from inspectorate.agent._compile import CompileOutcome, compile_commitment
from inspectorate.agent._cost import PRICE_TABLE_VERSION, CallRecord, Ledger, Price, PriceTable, load_prices
from inspectorate.agent._defender import DefenderProposal, llm_defend, propose_rules
from inspectorate.agent._digest import build_digest, evidence_hash
from inspectorate.agent._inspector import AgentReport, check_with_agent, inspect_semantic, merge_agent
from inspectorate.agent._verdict import VERDICT_SCHEMA, RuleJudgement, validate_reply

__all__ = [
    "PRICE_TABLE_VERSION",
    "VERDICT_SCHEMA",
    "AgentReport",
    "AgentSettings",
    "BackendError",
    "CallRecord",
    "CompileOutcome",
    "DefenderProposal",
    "Ledger",
    "Price",
    "PriceTable",
    "ReplyCache",
    "RuleJudgement",
    "build_digest",
    "check_with_agent",
    "compile_commitment",
    "default_cache_dir",
    "evidence_hash",
    "inspect_semantic",
    "llm_defend",
    "load_prices",
    "make_backend",
    "merge_agent",
    "propose_rules",
    "validate_reply",
]
