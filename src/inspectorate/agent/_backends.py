"""Model backends: Anthropic (prompt caching) and any OpenAI-compatible endpoint.

A backend turns the inspector's conversation into one SDK request, sends it, and
reads the reply back as text, tool calls, truncation and token usage. The SDKs come
from the ``[agent]`` extra and are imported lazily. SDK-level retries are off: the
inspector retries itself (``send_with_retries``) so every attempt is accounted for and
the backoff can be tested without sleeping.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inspectorate.agent._cost import CallRecord
from inspectorate.errors import BackendError, MalformedReply

DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}  # the seed ran Sonnet 4.6
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
RETRY_STATUS = {408, 409, 429}


@dataclass
class AgentSettings:
    """Backend choice and the budgets of one inspection (flags override environment)."""

    backend: str | None = None  # anthropic | openai | None = auto
    model: str | None = None
    base_url: str | None = None
    max_steps: int = 6
    max_output_tokens: int = 4096
    max_total_tokens: int | None = 400_000
    budget_usd: float | None = 2.0
    timeout_s: float = 120.0
    max_retries: int = 3
    max_invalid: int = 2
    cache_dir: str | None = None
    use_cache: bool = True
    prices: str | None = None
    digest_chars: int = 60_000
    http_client: Any = None  # tests pass an httpx client with a mock transport
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_env(cls, **overrides: Any) -> AgentSettings:
        env = os.environ
        budget = env.get("INSPECTORATE_AGENT_BUDGET_USD")
        values: dict[str, Any] = {
            "backend": env.get("INSPECTORATE_AGENT_BACKEND") or None,
            "model": env.get("INSPECTORATE_AGENT_MODEL") or None,
            "base_url": env.get("INSPECTORATE_AGENT_BASE_URL") or env.get("OPENAI_BASE_URL") or None,
            "cache_dir": env.get("INSPECTORATE_CACHE_DIR") or None,
        }
        if budget and budget.strip().lower() == "none":
            values["budget_usd"] = None  # an unpriced local model
        elif budget:
            try:
                values["budget_usd"] = float(budget)
            except ValueError:
                from inspectorate.errors import InputError

                raise InputError(f"INSPECTORATE_AGENT_BUDGET_USD is not a number: {budget!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Reply:
    text: str
    tool_calls: list[tuple[str, str, Any]]  # (call id, tool name, arguments or an error string)
    truncated: bool
    usage: CallRecord


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Backend:
    name = ""

    def __init__(self, client: Any, model: str, settings: AgentSettings):
        self.client, self.model, self.settings = client, model, settings

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply as a JSON object; MalformedReply when the body is anything else."""
        try:
            reply = self._create(request)
        except ValueError as exc:  # the SDK could not decode the body
            raise MalformedReply(f"{self.name} reply is not JSON ({exc})") from exc
        dump = getattr(reply, "model_dump", None)
        raw = dump(mode="json", warnings=False) if callable(dump) else reply
        if not isinstance(raw, dict):
            raise MalformedReply(f"{self.name} reply is not a JSON object")
        return raw

    def _create(self, request: dict[str, Any]) -> Any:
        raise NotImplementedError

    # The conversation in the provider's own message format (implemented per backend).
    def first_messages(self, blocks: list[tuple[str, bool]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def request(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], allow_tools: bool
    ) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, raw: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def assistant(self, raw: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def tool_results(self, results: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def user(self, text: str) -> dict[str, Any]:
        raise NotImplementedError


class AnthropicBackend(Backend):
    """Messages API. The system prompt is cached for an hour, the commitment and the
    digest for five minutes (``cache_control`` blocks), as in the seed."""

    name = "anthropic"

    def first_messages(self, blocks: list[tuple[str, bool]]) -> list[dict[str, Any]]:
        content = [
            {"type": "text", "text": text, **({"cache_control": {"type": "ephemeral"}} if cached else {})}
            for text, cached in blocks
        ]
        return [{"role": "user", "content": content}]

    def request(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], allow_tools: bool
    ) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.settings.max_output_tokens,
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            "messages": messages,
        }
        if tools:
            req["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
                for t in tools
            ]
            req["tool_choice"] = {"type": "auto" if allow_tools else "none"}
        return req

    def _create(self, request: dict[str, Any]) -> Any:
        return self.client.messages.create(**request)

    def parse(self, raw: dict[str, Any]) -> Reply:
        blocks = [_dict(b) for b in _list(raw.get("content"))]
        text = "".join(_str(b.get("text")) for b in blocks if b.get("type") == "text")
        calls = [
            (_str(b.get("id")), _str(b.get("name")), b.get("input"))
            for b in blocks
            if b.get("type") == "tool_use"
        ]
        usage = _dict(raw.get("usage"))
        write_1h = _int(_dict(usage.get("cache_creation")).get("ephemeral_1h_input_tokens"))
        record = CallRecord(
            model=self.model,
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_write_tokens=max(_int(usage.get("cache_creation_input_tokens")) - write_1h, 0),
            cache_write_1h_tokens=write_1h,
            cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        )
        return Reply(text, calls, raw.get("stop_reason") == "max_tokens", record)

    def assistant(self, raw: dict[str, Any]) -> dict[str, Any]:
        keep = {"text": ("type", "text"), "tool_use": ("type", "id", "name", "input")}
        blocks = [_dict(b) for b in _list(raw.get("content"))]
        content = [{k: b[k] for k in keep[b["type"]] if k in b} for b in blocks if b.get("type") in keep]
        return {"role": "assistant", "content": content or [{"type": "text", "text": "(empty)"}]}

    def tool_results(self, results: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
        content = [
            {
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": text,
                **({"is_error": True} if error else {}),
            }
            for call_id, text, error in results
        ]
        return [{"role": "user", "content": content}]

    def user(self, text: str) -> dict[str, Any]:
        return {"role": "user", "content": text}


class OpenAIBackend(Backend):
    """Chat Completions, at api.openai.com or any compatible ``base_url`` (a local model
    server). Its prompt caching is automatic on a stable prefix, so the system prompt,
    commitment and digest come first and never change between turns."""

    name = "openai"

    def first_messages(self, blocks: list[tuple[str, bool]]) -> list[dict[str, Any]]:
        return [{"role": "user", "content": "\n\n".join(text for text, _ in blocks)}]

    def request(
        self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]], allow_tools: bool
    ) -> dict[str, Any]:
        # Official reasoning models refuse max_tokens; compatible servers may not know the new name.
        budget_key = "max_tokens" if self.settings.base_url else "max_completion_tokens"
        req: dict[str, Any] = {
            "model": self.model,
            budget_key: self.settings.max_output_tokens,
            "messages": [{"role": "system", "content": system}, *messages],
        }
        if tools:
            req["tools"] = [{"type": "function", "function": t} for t in tools]
            req["tool_choice"] = "auto" if allow_tools else "none"
        return req

    def _create(self, request: dict[str, Any]) -> Any:
        return self.client.chat.completions.create(**request)

    def parse(self, raw: dict[str, Any]) -> Reply:
        choice = _dict((_list(raw.get("choices")) or [{}])[0])
        message = _dict(choice.get("message"))
        calls = []
        for call in map(_dict, _list(message.get("tool_calls"))):
            function = _dict(call.get("function"))
            try:
                arguments: Any = json.loads(_str(function.get("arguments")) or "{}")
            except ValueError:
                arguments = "arguments are not valid JSON"
            calls.append((_str(call.get("id")), _str(function.get("name")), arguments))
        usage = _dict(raw.get("usage"))
        prompt = _int(usage.get("prompt_tokens"))
        cached = min(_int(_dict(usage.get("prompt_tokens_details")).get("cached_tokens")), prompt)
        record = CallRecord(
            model=self.model,
            input_tokens=prompt - cached,
            output_tokens=_int(usage.get("completion_tokens")),
            cache_read_tokens=cached,
        )
        return Reply(_str(message.get("content")), calls, choice.get("finish_reason") == "length", record)

    def assistant(self, raw: dict[str, Any]) -> dict[str, Any]:
        message = _dict(_dict((_list(raw.get("choices")) or [{}])[0]).get("message"))
        out: dict[str, Any] = {"role": "assistant", "content": _str(message.get("content"))}
        calls = [_dict(c) for c in _list(message.get("tool_calls"))]
        if calls:
            out["tool_calls"] = [
                {"id": c.get("id"), "type": "function", "function": c.get("function")} for c in calls
            ]
        return out

    def tool_results(self, results: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
        return [{"role": "tool", "tool_call_id": call_id, "content": text} for call_id, text, _ in results]

    def user(self, text: str) -> dict[str, Any]:
        return {"role": "user", "content": text}


def make_backend(settings: AgentSettings) -> Backend | str:
    """The configured backend, or one line saying why the LLM tier is skipped."""
    choice = settings.backend
    if choice not in (None, "auto", "anthropic", "openai"):
        from inspectorate.errors import InputError

        raise InputError(f"unknown agent backend {choice!r}; accepted: anthropic, openai")
    if choice in (None, "auto"):
        if os.environ.get(KEY_ENV["anthropic"]):
            choice = "anthropic"
        elif os.environ.get(KEY_ENV["openai"]) or settings.base_url:
            choice = "openai"
        else:
            return (
                "agent tier skipped: no ANTHROPIC_API_KEY, OPENAI_API_KEY or OpenAI-compatible "
                "base URL (--base-url / INSPECTORATE_AGENT_BASE_URL) is set"
            )
    key = os.environ.get(KEY_ENV[choice])
    if not key and not (choice == "openai" and settings.base_url):
        return f"agent tier skipped: {KEY_ENV[choice]} is not set"
    try:
        client = _client(choice, key, settings)
    except ImportError:
        return f"agent tier skipped: the {choice} SDK is not installed (pip install 'inspectorate[agent]')"
    model = settings.model or DEFAULT_MODELS[choice]
    return (AnthropicBackend if choice == "anthropic" else OpenAIBackend)(client, model, settings)


def _client(choice: str, key: str | None, settings: AgentSettings) -> Any:
    common: dict[str, Any] = {"timeout": settings.timeout_s, "max_retries": 0}
    if settings.http_client is not None:
        common["http_client"] = settings.http_client
    if choice == "anthropic":
        import anthropic

        return anthropic.Anthropic(api_key=key, base_url=settings.base_url, **common)
    import openai

    # A local server needs no key, but the SDK insists on one.
    return openai.OpenAI(api_key=key or "unused", base_url=settings.base_url, **common)


def retryable(exc: Exception) -> bool:
    """Rate limits, timeouts, conflicts and server errors are worth another try."""
    if isinstance(exc, MalformedReply):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in RETRY_STATUS or status >= 500
    return any(cls.__name__ in ("APIConnectionError", "APITimeoutError") for cls in type(exc).__mro__)


def describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if isinstance(exc, MalformedReply):
        return f"{name}: {exc}"
    return f"{name} (HTTP {status})" if status else name


def _delay(exc: Exception, attempt: int) -> float:
    response = getattr(exc, "response", None)
    after = response.headers.get("retry-after") if response is not None else None
    try:
        if after is not None:
            return min(float(after), 60.0)
    except ValueError:
        pass
    return min(30.0, 1.0 * 2**attempt) * (0.5 + random.random() / 2)


def send_with_retries(backend: Backend, request: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    """The raw reply, the attempts it took and the seconds spent; BackendError when
    the call fails for good. Only SDK errors are caught: a bug here is a bug."""
    errors: tuple[type[Exception], ...] = (*_sdk_errors(backend), MalformedReply)
    settings = backend.settings
    started = time.perf_counter()
    for attempt in range(settings.max_retries + 1):
        try:
            raw = backend.send(request)
            return raw, attempt + 1, time.perf_counter() - started
        except errors as exc:
            if not retryable(exc) or attempt == settings.max_retries:
                raise BackendError(
                    f"{backend.name} call failed after {attempt + 1} attempt(s): {describe(exc)}"
                ) from exc
            settings.sleep(_delay(exc, attempt))
    raise AssertionError("unreachable")


def _sdk_errors(backend: Backend) -> tuple[type[Exception], ...]:
    if backend.name == "anthropic":
        import anthropic

        return (anthropic.APIError,)
    import openai

    return (openai.APIError,)
