"""Rule kinds: one registered function each, with parameters checked on load.

A rule kind is a function ``fn(trace, **params) -> Iterable[Violation]`` (the
``RuleFunction`` protocol) whose docstring states its semantics and whose ``partition``
says how a cluster may split its work (``_partition``). Its keyword parameters (annotated) are the YAML keys
a commitment may set; the loader validates them against the annotations, so a typo
names the rule, the parameter and the accepted ones. Third parties register kinds by
exposing a module under the ``inspectorate.rules`` entry-point group; importing the
module runs its ``@rule`` decorators.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args, get_origin

from inspectorate._plugins import Registry
from inspectorate.commitment._partition import ByParam, Partition, declare, resolve
from inspectorate.errors import ParamError, PluginError

if TYPE_CHECKING:
    from inspectorate.trace import Trace

MAX_IDS = 1000  # record ids kept per violation; the count keeps the true total


@dataclass(frozen=True)
class Violation:
    """One broken rule instance: which records, why, and the numbers behind it."""

    message: str
    record_ids: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    count: int | None = None  # records involved when more than MAX_IDS
    rule_id: str = ""
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "message": self.message,
            "record_ids": list(self.record_ids),
            "record_count": self.count if self.count is not None else len(self.record_ids),
            "evidence": self.evidence,
        }


def violation(message: str, record_ids: Iterable[str] = (), **evidence: Any) -> Violation:
    """Build a Violation, keeping at most MAX_IDS ids but counting them all."""
    ids = list(record_ids)
    return Violation(message, tuple(ids[:MAX_IDS]), _plain(evidence), len(ids))


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready builtins (no numpy scalars, no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# A rule's record filter, from its configured parameters: a Polars boolean expression
# over the trace frame, or None when the rule reads every record. ``check`` counts the
# records it selects ("matched"), so a rule whose filter selects nothing is reported
# as having checked nothing instead of passing silently.
Selector = Callable[[dict[str, Any]], Any]


class RuleFunction(Protocol):
    """What ``@rule`` registers: ``fn(trace, **params) -> Iterable[Violation]``, its
    keyword parameters annotated (they are the commitment's YAML keys)."""

    def __call__(self, trace: Trace, /, *args: Any, **params: Any) -> Iterable[Violation]: ...


RuleFn = TypeVar("RuleFn", bound=RuleFunction)


@dataclass(frozen=True)
class RuleKind:
    name: str
    fn: Callable[..., Iterable[Violation]]
    implicit: bool
    params: dict[str, inspect.Parameter]
    partition: Partition | ByParam | None = None  # None: undeclared (engines run it globally)
    selects: Selector | None = None

    def configured(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the kind's defaults filled in."""
        defaults = {n: p.default for n, p in self.params.items() if p.default is not inspect.Parameter.empty}
        return {**defaults, **params}

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    def required(self) -> list[str]:
        return [n for n, p in self.params.items() if p.default is inspect.Parameter.empty]

    def partition_for(self, params: dict[str, Any]) -> Partition:
        """How one configured instance of this kind partitions (``params``: the rule's)."""
        defaults = {n: p.default for n, p in self.params.items() if p.default is not inspect.Parameter.empty}
        return resolve(self.partition, params, defaults)


RULES: Registry[RuleKind] = Registry(
    "rule kind",
    "inspectorate.rules",
    (
        "inspectorate.commitment.rules",
        "inspectorate.commitment.rules.semantic",
    ),  # semantic: offline fallbacks
    positional=("trace",),
)


def rule(
    name: str,
    *,
    implicit: bool = False,
    partition: str | ByParam | None = None,
    selects: Selector | None = None,
) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as rule kind ``name``; ``implicit`` kinds run on every check.
    ``selects(params)`` is the rule's record filter (see ``Selector``); without it a kind
    with an ``op_type``/``op_types`` parameter selects those labels, any other kind every
    record.

    ``partition`` declares how a cluster may split the rule's work: ``"record"``,
    ``"keyed:COLUMN"``, ``"global"`` (or ``by_param(...)``; see ``_partition``). A rule
    without one runs whole on one worker. Bad metadata is a PluginError here."""

    def register(fn: RuleFn) -> RuleFn:
        RULES.check(name, fn)
        sig = inspect.signature(fn)
        params = {
            n: p
            for n, p in list(sig.parameters.items())[1:]
            if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
        }
        hints = _param_hints(name, fn, list(params))
        params = {n: p.replace(annotation=hints.get(n, Any)) for n, p in params.items()}
        for pname, param in params.items():
            _check_annotation(param.annotation, f"rule kind {name!r}: parameter {pname!r}")
        kind = RuleKind(name, fn, bool(implicit), params, declare(name, partition, params), selects)
        RULES.add(name, kind, fn)  # a plugin may add kinds, never replace one
        return fn

    return register


def _param_hints(name: str, fn: Callable[..., Any], names: list[str]) -> dict[str, Any]:
    """The resolved annotations of the rule's parameters (the trace's may be a
    TYPE_CHECKING-only import); one that does not resolve is a PluginError."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # retried per parameter below, to name the bad one
        pass
    raw = getattr(fn, "__annotations__", {})
    out = {}
    for pname in names:
        ann = raw.get(pname, Any)
        try:
            out[pname] = eval(ann, getattr(fn, "__globals__", {})) if isinstance(ann, str) else ann
        except Exception as exc:  # any failure is the plugin's annotation
            raise PluginError(
                f"rule kind {name!r}: parameter {pname!r} has an unresolvable annotation ({exc})"
            ) from None
    return out


def _check_annotation(annotation: Any, where: str) -> None:
    """A parameter annotation ``coerce`` can check a YAML value against, or PluginError."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation in (Any, float, int, bool, str) or origin is Literal:
        return
    if origin in (list, dict):
        for arg in args:
            _check_annotation(arg, where)
        return
    if origin in (typing.Union, types.UnionType):  # coerce tries each member: one must work
        if any(_supported(arg) for arg in args):
            return
    raise PluginError(
        f"{where}: unsupported annotation {annotation!r} (use float, int, bool, str, Literal, list, dict)"
    )


def _supported(annotation: Any) -> bool:
    try:
        _check_annotation(annotation, "")
    except PluginError:
        return False
    return True


def load_plugins() -> None:
    """Import built-in rule modules and every ``inspectorate.rules`` entry point once."""
    RULES.load()


def known_kinds() -> list[str]:
    return RULES.names()


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a simple annotation; convert ints to floats where allowed."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ParamError(f"{where} must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            try:
                return coerce(value, arg, where)
            except ParamError as exc:
                errors.append(str(exc))
        enumerated = _enumeration_error(value, args, where)
        if enumerated:
            raise ParamError(enumerated)
        raise ParamError(f"{where}: {value!r} fits none of the accepted types ({'; '.join(errors)})")
    if origin is tuple and isinstance(value, tuple):  # a default, or a caller's own tuple
        value = list(value)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ParamError(f"{where} must be a list, got {type(value).__name__}")
        return [coerce(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamError(f"{where} must be a mapping, got {type(value).__name__}")
        return {coerce(k, args[0], where): coerce(v, args[1], f"{where}[{k!r}]") for k, v in value.items()}
    return _coerce_scalar(value, annotation, where)


def _enumeration_error(value: Any, args: tuple[Any, ...], where: str) -> str | None:
    """The one-line reason a value failed an enumerated union (``OpTypes``: a label or a
    list of labels): name the offending value and the accepted ones, not every branch."""
    literals = [a for a in args if get_origin(a) is Literal]
    if not literals:
        return None
    accepted = [v for lit in literals for v in get_args(lit)]
    if isinstance(value, (list, tuple)):
        wrong = [v for v in value if v not in accepted]
        if not wrong or not any(get_origin(a) in (list, tuple) for a in args):
            return None
        value = wrong[0]
    return f"{where} must be one of {', '.join(map(str, accepted))} (or a list of them); got {value!r}"


def _coerce_scalar(value: Any, annotation: Any, where: str) -> Any:
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ParamError(f"{where} must be finite, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ParamError(f"{where} must be a string, got {value!r}")
        return value
    raise ParamError(f"{where}: unsupported parameter annotation {annotation!r}")


def _display(annotation: Any) -> str:
    """An annotation as a commitment author reads it: enumerations spelt out."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "|".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        literals = [a for a in args if get_origin(a) is Literal]
        if literals and any(get_origin(a) in (list, tuple) for a in args):
            return f"{_display(literals[0])} or a list of them"
    if origin is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    return str(annotation).replace("typing.", "")


def describe_kind(name: str) -> str:
    """``kind(param: type = default, ...)`` followed by the docstring: for `inspectorate rules`."""
    load_plugins()
    if name not in RULES:
        from inspectorate.errors import InputError

        raise InputError(f"unknown rule kind {name!r}; known kinds: {', '.join(known_kinds())}")
    kind = RULES[name]
    params = []
    for pname, param in kind.params.items():
        annotation = _display(param.annotation)
        default = "" if param.default is inspect.Parameter.empty else f" = {param.default!r}"
        params.append(f"{pname}: {annotation}{default}")
    flag = "  [implicit: runs on every check]" if kind.implicit else ""
    return f"{name}({', '.join(params)}){flag}\n    " + kind.doc.replace("\n", "\n    ")
