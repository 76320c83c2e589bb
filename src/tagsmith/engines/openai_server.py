"""Tag through any OpenAI-compatible chat endpoint (`tagsmith serve`, vLLM, others).

The schema goes out as `response_format: json_schema` (and vLLM's `structured_outputs`
field). Servers that do not enforce it (older vLLM releases silently return free text)
are caught: every complete answer is validated against the schema, and a violation
raises an EngineError that says the server ignores structured outputs, instead of
letting unconstrained tags through. Requests of a batch go out concurrently; a LoRA
adapter is addressed by the name the server registered it under. Decoded tags' confidences
come from a vLLM server's prompt log-probabilities (`answer_logprobs`); a server without that
extension leaves tags without them (the tagger says so per item).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tagsmith.engines.base import AnswerRequest, Engine, Generation, GenerationRequest, TokenLogprob
from tagsmith.errors import EngineError
from tagsmith.schema import AnswerSchema

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000/v1"
#: Answers that concern one request only (too long for the context, an invalid field): that item
#: gets the error and the batch goes on. Others (unknown model or adapter, auth) stop the run.
ITEM_ERRORS = {400, 413, 422}


def key_for(base_url: str) -> str | None:
    """The key to send to `base_url`: $TAGSMITH_OPENAI_KEY (given for tagsmith's server), and
    $OPENAI_API_KEY only to OpenAI's own API: a key for one service is never sent to another
    address just because --base-url names it."""
    from urllib.parse import urlparse

    if os.environ.get("TAGSMITH_OPENAI_KEY"):
        return os.environ["TAGSMITH_OPENAI_KEY"]
    if urlparse(base_url).hostname == "api.openai.com":
        return os.environ.get("OPENAI_API_KEY")
    return None


class OpenAIEngine(Engine):
    name = "openai"
    reads_answers = True

    def __init__(self, model: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
                 batch_size: int = 32, concurrency: int = 16, timeout: float = 300.0,
                 check_schema: bool = True, retries: int = 3) -> None:
        self.model_id = model or "embedded"
        self.base_url = (base_url or os.environ.get("TAGSMITH_OPENAI_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or key_for(self.base_url)
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.timeout = timeout
        self.check_schema = check_schema
        self.retries = retries
        self._validators: dict[str, Any] = {}
        #: why the server cannot give prompt log-probabilities, once it has said so (not asked again)
        self._unreadable: str | None = None

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with bounded retries (exponential backoff) for errors a retry can fix:
        refused/reset connections, 5xx and 429."""
        for attempt in range(self.retries + 1):
            try:
                return self._post_once(payload)
            except EngineError as exc:
                if not exc.retryable or attempt == self.retries:
                    raise
                time.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    def _post_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", json.dumps(payload).encode(), headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")[:300]
            raise EngineError(f"server at {self.base_url} answered {exc.code}: {body}",
                              retryable=exc.code >= 500 or exc.code == 429, status=exc.code) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise EngineError(f"cannot reach an OpenAI-compatible server at {self.base_url} ({exc}); "
                              "start one with `tagsmith serve` or pass --base-url", retryable=True) from None

    def _one(self, r: GenerationRequest) -> Generation:
        payload: dict[str, Any] = {"model": r.adapter or self.model_id, "messages": list(r.messages),
                                   "max_tokens": r.max_tokens, "temperature": 0}
        if r.schema:
            schema = r.schema.data
            payload["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": "tags", "schema": schema, "strict": True}}
            payload["structured_outputs"] = {"json": schema}
        try:
            data = self._post(payload)
        except EngineError as exc:
            if exc.status in ITEM_ERRORS:  # this request is bad (too long, ...), not the run
                return Generation(text="", finish_reason="error", error=str(exc))
            raise
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise EngineError(f"server at {self.base_url} sent a malformed reply: {str(data)[:200]}") from None
        finish = choice.get("finish_reason") or "stop"
        if r.schema and self.check_schema and finish != "length":
            self._check(r.schema, text)
        usage = data.get("usage") or {}
        return Generation(text=text, prompt_tokens=usage.get("prompt_tokens", 0),
                          completion_tokens=usage.get("completion_tokens", 0), finish_reason=finish)

    def _check(self, schema: AnswerSchema, text: str) -> None:
        import jsonschema

        validator = self._validators.get(schema.text)
        if validator is None:
            validator = self._validators[schema.text] = jsonschema.Draft202012Validator(schema.data)
        try:
            ok = validator.is_valid(json.loads(text))
        except json.JSONDecodeError:
            ok = False
        if not ok:
            raise EngineError(
                f"the server at {self.base_url} returned an answer that breaks the JSON schema it was "
                f"sent ({text[:80]!r}...): it ignores structured outputs (older vLLM servers do). "
                "Upgrade the server; tagsmith will not return unconstrained tags.", raw=text)

    def _read(self, r: AnswerRequest) -> list[TokenLogprob]:
        """vLLM's chat endpoint, the answer sent as the assistant's message to continue, asked
        for the prompt's log-probabilities (vLLM's `prompt_logprobs`; the model's own, no mask);
        each token's characters found by laying its decoded text end to end."""
        if self._unreadable:
            raise EngineError(self._unreadable)
        payload: dict[str, Any] = {
            "model": r.adapter or self.model_id, "temperature": 0, "max_tokens": 1,
            "messages": [*r.messages, {"role": "assistant", "content": r.text}],
            "continue_final_message": True, "add_generation_prompt": False, "prompt_logprobs": 0}
        data = self._post(payload)
        rows = data.get("prompt_logprobs")
        if not isinstance(rows, list):
            self._unreadable = (f"server at {self.base_url} sent no prompt log-probabilities (`prompt_logprobs` "
                                "is a vLLM extension): tags get no confidences")
            raise EngineError(self._unreadable)
        pieces = []
        for row in rows:
            if not row:  # the first token, which nothing predicts
                pieces.append(("", None))
                continue
            # prompt_logprobs=0: the prompt's own token only (with a higher-ranked one where it is not the top)
            entry = max(row.values(), key=lambda e: e.get("rank") or 0)
            pieces.append((entry.get("decoded_token") or "", float(entry["logprob"])))
        prompt = "".join(text for text, _ in pieces)
        start = prompt.rfind(r.text)
        if start < 0:
            raise EngineError(f"server at {self.base_url}: the answer is not at the end of the prompt it scored")
        out, at = [], 0
        for text, logprob in pieces:
            begin, at = at, at + len(text)
            if at > start and logprob is not None:
                out.append(TokenLogprob(max(0, begin - start), at - start, logprob))
        return out

    def _each(self, call: Callable[[Any], T], requests: Sequence[Any]) -> list[T]:
        """`call` for every request, `concurrency` of them in flight at once, results in order."""
        if len(requests) <= 1:
            return [call(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(call, requests))

    def answer_logprobs(self, requests: Sequence[AnswerRequest]) -> list[list[TokenLogprob]]:
        return self._each(self._read, requests)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return self._each(self._one, requests)
