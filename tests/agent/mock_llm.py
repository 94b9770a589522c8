"""A scripted HTTP server for the real Anthropic and OpenAI SDK clients (no network).

``Script`` answers each request with the next scripted response (a dict body, an
``(status, body, headers)`` tuple, or an exception to raise) and keeps every request
for the test to inspect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("anthropic", reason="the [agent] extra is not installed")
pytest.importorskip("openai", reason="the [agent] extra is not installed")

try:  # the SDKs in this environment ship their HTTP client as httpx2
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the SDK generation installed
    import httpx

from inspectorate.agent import AgentSettings


class Script:
    def __init__(self, *responses: Any):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError("the model was called more often than scripted")
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body, headers = item if isinstance(item, tuple) else (200, item, {})
        return httpx.Response(status, json=body, headers=headers)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def settings(script: Script, tmp_path, **overrides: Any) -> AgentSettings:
    sleeps: list[float] = []
    values = dict(
        http_client=script.client(),
        cache_dir=str(tmp_path / "cache"),
        sleep=sleeps.append,
        timeout_s=5.0,
    )
    values.update(overrides)
    out = AgentSettings(**values)
    out.sleeps = sleeps  # type: ignore[attr-defined]
    return out


def anthropic_text(text: str, stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 1000, "output_tokens": 200, **usage},
    }


def anthropic_tool(name: str, arguments: dict[str, Any], call_id: str = "toolu_1") -> dict[str, Any]:
    reply = anthropic_text("", stop="tool_use")
    reply["content"] = [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": call_id, "name": name, "input": arguments},
    ]
    return reply


def openai_text(text: str, finish: str = "stop", cached: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 0,
        "model": "local-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "total_tokens": 1100,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def openai_tool(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    reply = openai_text("", finish="tool_calls")
    reply["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }
    return reply


def verdict_json(
    rule_id: str, verdict: str = "violation", ids=("r0003",), signals=("job:job-a",), **extra
) -> str:
    entry = {
        "id": rule_id,
        "verdict": verdict,
        "confidence": 0.9,
        "cited_record_ids": list(ids),
        "signals": list(signals),
        "rationale": "chip gpu-01 reports work in a forbidden region",
        "proposed_rule": None,
    }
    entry.update(extra)
    return json.dumps({"rules": [entry]})


@contextmanager
def openai_server(reply: dict[str, Any]) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A stand-in OpenAI-compatible model server on 127.0.0.1 (real HTTP, for CLI tests):
    every POST gets ``reply``. Yields the base URL and the requests seen, as (path, body)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    body = json.dumps(reply).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append((self.path, json.loads(self.rfile.read(int(self.headers["content-length"])))))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
