"""Token, dollar and latency accounting per call, against a versioned price table.

Prices are USD per million tokens. The built-in table is dated (``PRICE_TABLE_VERSION``):
list prices change, so a user overrides or extends it with a YAML/JSON file
(``--prices`` or ``INSPECTORATE_AGENT_PRICES``) of the form
``{version: ..., models: {name: {input, output, cache_write, cache_write_1h, cache_read}}}``.
A model is priced by its exact name or, for a dated snapshot, its alias
(``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``); a model the table does not
know is unpriced (its cost is reported as unknown and a dollar budget refuses it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from inspectorate.errors import InputError

PRICE_TABLE_VERSION = "2026-11-01"
PRICES_ENV = "INSPECTORATE_AGENT_PRICES"


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache writes of the 5-minute and 1-hour kind differ."""

    input: float
    output: float
    cache_write: float = 0.0
    cache_write_1h: float = 0.0
    cache_read: float = 0.0


# Approximate public list prices at PRICE_TABLE_VERSION (Anthropic: writes 1.25x / 2x
# input, reads 0.1x; OpenAI: cached input at its discount, no write surcharge). Only
# models whose price we know are listed; anything else is unpriced until a file says.
def _anthropic(inp: float, out: float) -> Price:
    return Price(inp, out, inp * 1.25, inp * 2.0, inp * 0.1)


BUILTIN_PRICES: dict[str, Price] = {
    "claude-sonnet-4-6": _anthropic(3.0, 15.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "gpt-5": Price(1.25, 10.0, 0.0, 0.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.0, 0.0, 0.025),
    "gpt-4.1": Price(2.0, 8.0, 0.0, 0.0, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.0, 0.0, 0.10),
    "gpt-4o": Price(2.50, 10.0, 0.0, 0.0, 1.25),
}
# A dated snapshot (claude-sonnet-4-5-20250929, gpt-4.1-2025-04-14) costs what its alias costs.
_SNAPSHOT = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class PriceTable:
    version: str
    models: dict[str, Price]

    def price(self, model: str) -> Price | None:
        alias = _SNAPSHOT.sub("", model)
        return self.models.get(model) or self.models.get(alias)


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The built-in table, overridden by ``path`` (or $INSPECTORATE_AGENT_PRICES) if given."""
    table = PriceTable(PRICE_TABLE_VERSION, dict(BUILTIN_PRICES))
    path = path or os.environ.get(PRICES_ENV)
    if not path:
        return table
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read price table ({exc})", path) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise InputError("price table must be a mapping with a 'models' mapping", path)
    models = dict(table.models)
    names = {f.name for f in fields(Price)}
    for name, entry in data["models"].items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry) or set(entry) - names:
            raise InputError(f"price of {name!r} needs input and output (accepted: {sorted(names)})", path)
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in entry.values()
        ):
            raise InputError(f"price of {name!r} must be non-negative numbers", path)
        models[str(name)] = Price(**{k: float(v) for k, v in entry.items()})
    return PriceTable(str(data.get("version", f"{PRICE_TABLE_VERSION}+user")), models)


@dataclass
class CallRecord:
    """One model call: tokens by kind, dollars (None when the model has no price), seconds."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    from_cache: bool = False
    cost_usd: float | None = 0.0

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )

    def priced(self, price: Price | None) -> CallRecord:
        if self.from_cache:
            self.cost_usd = 0.0
        elif price is None:
            self.cost_usd = None
        else:
            self.cost_usd = (
                self.input_tokens * price.input
                + self.output_tokens * price.output
                + self.cache_write_tokens * price.cache_write
                + self.cache_write_1h_tokens * price.cache_write_1h
                + self.cache_read_tokens * price.cache_read
            ) / 1e6
        return self


@dataclass
class Ledger:
    """Every call of one inspection, with totals and the budget still left."""

    prices: PriceTable
    budget_usd: float | None = None
    max_tokens: int | None = None
    calls: list[CallRecord] = field(default_factory=list)

    def add(self, call: CallRecord) -> CallRecord:
        self.calls.append(call.priced(self.prices.price(call.model)))
        return call

    @property
    def cost_usd(self) -> float | None:
        costs = [c.cost_usd for c in self.calls]
        return None if any(c is None for c in costs) else float(sum(c for c in costs if c is not None))

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.calls)

    def estimate(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        price = self.prices.price(model)
        if price is None:
            return None
        return (input_tokens * price.input + output_tokens * price.output) / 1e6

    def refusal(self, model: str, input_tokens: int, output_tokens: int) -> str | None:
        """Why the next call may not be made (budget), or None."""
        if self.max_tokens is not None and self.tokens + input_tokens + output_tokens > self.max_tokens:
            return f"token budget exhausted ({self.tokens} used of {self.max_tokens})"
        if self.budget_usd is None:
            return None
        spent, next_call = self.cost_usd, self.estimate(model, input_tokens, output_tokens)
        if spent is None or next_call is None:
            return f"no price for model {model!r} (price table {self.prices.version}), so a dollar budget cannot hold"
        if spent + next_call > self.budget_usd:
            return f"dollar budget exhausted (${spent:.4f} spent, next call up to ${next_call:.4f}, cap ${self.budget_usd:.4f})"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "price_table": self.prices.version,
            "calls": [asdict(c) for c in self.calls],
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "latency_s": round(sum(c.latency_s for c in self.calls), 3),
            "cached_calls": sum(c.from_cache for c in self.calls),
            "budget_usd": self.budget_usd,
        }
