"""The commitment file: what the prover promised, validated on load.

Format (the seed's): ``id``, ``version``, ``title``, ``rationale``,
``deterministic_rules`` (a list of ``{kind: ..., <params>}``, optional ``id``) and
``semantic_rules`` (``{id, description}``: judged by an inspector, not by ``check``).
Implicit rule kinds run even when not listed; listing one sets its parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inspectorate.commitment._registry import RULES, ParamError, coerce, known_kinds, load_plugins
from inspectorate.errors import InputError

TOP_KEYS = {"id", "version", "title", "rationale", "deterministic_rules", "semantic_rules"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e19`` and ``1.0e19`` as floats (YAML 1.2 style)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+|[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$"
        r"|^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+)$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class RuleSpec:
    """One configured rule: its id (unique in the commitment), kind and parameters."""

    id: str
    kind: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.id != self.kind:
            out["id"] = self.id
        out.update(self.params)
        return out


@dataclass(frozen=True)
class Commitment:
    id: str
    version: Any
    title: str
    rationale: str
    rules: tuple[RuleSpec, ...]
    semantic_rules: tuple[dict[str, Any], ...] = ()
    source: str = "<memory>"
    extra: dict[str, Any] = field(default_factory=dict)

    def effective_rules(self) -> list[RuleSpec]:
        """Implicit kinds not configured explicitly (defaults), then the listed rules."""
        listed = {spec.kind for spec in self.rules}
        implicit = [
            RuleSpec(name, name, {})
            for name, kind in sorted(RULES.items())
            if kind.implicit and name not in listed
        ]
        order = {"hash_chain_intact": 0, "timestamp_monotonic": 1, "flop_physically_possible": 2}
        implicit.sort(key=lambda spec: order.get(spec.kind, 9))
        return implicit + list(self.rules)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "rationale": self.rationale,
            "deterministic_rules": [spec.to_dict() for spec in self.rules],
            "semantic_rules": [dict(rule) for rule in self.semantic_rules],
            **self.extra,
        }


def load_commitment(source: str | Path | dict[str, Any]) -> Commitment:
    """Load and validate a commitment from a YAML path or an already-parsed mapping."""
    load_plugins()
    if isinstance(source, dict):
        return _build(source, "<memory>")
    path = Path(source)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as exc:
        raise InputError(f"cannot read commitment ({exc.strerror or exc})", path) from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise InputError(f"unreadable YAML: {reason}", path, None if line is None else line + 1) from None
    return _build(data, str(path))


def _build(data: Any, where: str) -> Commitment:
    if not isinstance(data, dict):
        raise InputError("commitment must be a YAML mapping", where)
    for key in ("id", "deterministic_rules"):
        if key not in data:
            raise InputError(f"commitment lacks required key {key!r}", where)
    rules_raw = data["deterministic_rules"] or []
    if not isinstance(rules_raw, list):
        raise InputError("deterministic_rules must be a list", where)
    specs = _specs(rules_raw, where)
    semantic = data.get("semantic_rules") or []
    if not isinstance(semantic, list) or not all(isinstance(r, dict) and "id" in r for r in semantic):
        raise InputError("semantic_rules must be a list of mappings with an 'id'", where)
    extra = {k: v for k, v in data.items() if k not in TOP_KEYS}
    return Commitment(
        str(data["id"]),
        data.get("version"),
        str(data.get("title", "")),
        str(data.get("rationale", "")).strip(),
        tuple(specs),
        tuple(semantic),
        where,
        extra,
    )


def _specs(rules_raw: list[Any], where: str) -> list[RuleSpec]:
    specs: list[RuleSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(rules_raw):
        if not isinstance(raw, dict) or "kind" not in raw:
            raise InputError(f"deterministic_rules[{index}] must be a mapping with a 'kind'", where)
        kind = raw["kind"]
        if kind not in RULES:
            raise InputError(
                f"deterministic_rules[{index}]: unknown rule kind {kind!r}; known kinds: "
                f"{', '.join(known_kinds())}",
                where,
            )
        seen[kind] = seen.get(kind, 0) + 1
        rule_id = str(raw.get("id") or (kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"))
        params = {k: v for k, v in raw.items() if k not in ("kind", "id")}
        specs.append(RuleSpec(rule_id, kind, validate_params(kind, params, f"{where}: rule {rule_id}")))
    ids = [spec.id for spec in specs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"duplicate rule id(s): {', '.join(duplicates)}", where)
    return specs


def validate_params(kind: str, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Parameters checked against the kind's signature; InputError names what is wrong."""
    load_plugins()
    if kind not in RULES:
        raise InputError(f"unknown rule kind {kind!r}; known kinds: {', '.join(known_kinds())}", where)
    spec = RULES[kind]
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        accepted = ", ".join(spec.params) or "none"
        raise InputError(f"{kind}: unknown parameter(s) {', '.join(unknown)}; accepted: {accepted}", where)
    missing = [name for name in spec.required() if name not in params]
    if missing:
        raise InputError(f"{kind}: missing required parameter(s) {', '.join(missing)}", where)
    out = {}
    for name, value in params.items():
        try:
            out[name] = coerce(value, spec.params[name].annotation, f"{kind}.{name}")
        except ParamError as exc:
            raise InputError(str(exc), where) from None
    return out
