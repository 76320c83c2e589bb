"""OpenAI-compatible engine against fake servers on loopback: concurrency, and a server
that ignores the schema is refused rather than trusted."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tagsmith.engines.openai_server import OpenAIEngine
from tagsmith.errors import EngineError
from tagsmith.items import Item
from tagsmith.tagger import Tagger


def serve(answer):
    """Start a fake /v1/chat/completions server; `answer(payload) -> content` (None = HTTP 500)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(payload)
            content = answer(payload)
            status = content if isinstance(content, int) else 200 if content is not None else 500
            body = json.dumps(content if isinstance(content, dict) else  # a whole reply the test wrote
                              {"choices": [{"message": {"content": content}, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 3, "completion_tokens": 2}} if status == 200 else
                              {"error": {"message": "too long for the context"}}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 64  # like a real server, accept a burst of concurrent connections

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", seen


@pytest.fixture
def server_factory():
    servers = []

    def make(answer):
        server, url, seen = serve(answer)
        servers.append(server)
        return url, seen

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def echo_color(payload):
    """Answers each item with its own colour, so mixed-up replies would be caught."""
    text = payload["messages"][0]["content"]
    title = next(line for line in text.splitlines() if line.startswith("Product title:"))
    color = "Red" if "red" in title else "Black"
    return json.dumps({"Color": [color], "Material": [], "Part Number": [], "Category": []})


def test_concurrent_requests_each_get_their_own_answer(server_factory, small_vocab, template):
    url, seen = server_factory(echo_color)
    tagger = Tagger(OpenAIEngine("embedded", base_url=url, concurrency=16), small_vocab, template)
    items = [Item(str(i), f"{'red' if i % 2 else 'black'} knife {i}") for i in range(50)]
    results = tagger.tag_batch(items)
    assert [r.tags["Color"] for r in results] == [["Red"] if i % 2 else ["Black"] for i in range(50)]
    generations = [p for p in seen if "response_format" in p]
    assert len(generations) == 50
    # this server has no prompt log-probabilities: asked once (by each request already in flight),
    # then never again, and the tags simply have no scores
    assert 51 <= len(seen) <= 50 + 16 and all(r.scores == {} for r in results)
    assert "tags get no confidences" in results[0].warnings[-1]
    sent = generations[0]
    assert sent["response_format"]["type"] == "json_schema" and sent["temperature"] == 0
    assert sent["structured_outputs"]["json"]["title"] == "test-kitchen"


def test_server_that_ignores_the_schema_is_refused(server_factory, small_vocab, template):
    url, _ = server_factory(lambda p: "Sure! The color is FREE.")
    tagger = Tagger(OpenAIEngine(base_url=url), small_vocab, template)
    with pytest.raises(EngineError, match="ignores structured outputs"):
        tagger.tag_batch([Item("1", "red knife")])


def test_adapter_is_addressed_by_name(server_factory, small_vocab, template):
    url, seen = server_factory(echo_color)
    Tagger(OpenAIEngine(base_url=url), small_vocab, template, adapter="wdc-lora").tag(Item("1", "red"))
    assert seen[0]["model"] == "wdc-lora"


def test_server_errors_and_no_server(server_factory, small_vocab, template):
    url, seen = server_factory(lambda p: None)
    with pytest.raises(EngineError, match="answered 500") as info:
        Tagger(OpenAIEngine(base_url=url, retries=2), small_vocab, template).tag(Item("1", "x"))
    assert len(seen) == 3  # retried twice, then gave up
    assert info.value.retryable
    with pytest.raises(EngineError, match="cannot reach an OpenAI-compatible server"):
        Tagger(OpenAIEngine(base_url="http://127.0.0.1:9/v1", timeout=2, retries=1), small_vocab,
               template).tag(Item("1", "x"))


def test_a_request_the_server_refuses_is_that_items_error_only(server_factory, small_vocab, template):
    answer = json.dumps({"Color": ["Red"], "Material": [], "Part Number": [], "Category": []})
    url, _ = server_factory(lambda p: 400 if "HUGE" in p["messages"][0]["content"] else answer)
    tagger = Tagger(OpenAIEngine("embedded", base_url=url, retries=0), small_vocab, template)
    results = tagger.tag_batch([Item("ok", "red knife"), Item("big", "HUGE knife"), Item("ok2", "red pan")])
    assert [r.error is None for r in results] == [True, False, True]
    assert "answered 400" in results[1].error and results[0].tags == {"Color": ["Red"]}


def test_a_key_is_sent_only_where_it_was_given(monkeypatch):
    from tagsmith.engines.openai_server import key_for

    monkeypatch.delenv("TAGSMITH_OPENAI_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    assert key_for("http://10.0.0.5:8000/v1") is None  # not to whatever --base-url names
    assert key_for("https://api.openai.com/v1") == "sk-secret"
    monkeypatch.setenv("TAGSMITH_OPENAI_KEY", "ts-key")
    assert key_for("http://127.0.0.1:8000/v1") == "ts-key"
    assert OpenAIEngine("embedded", base_url="http://127.0.0.1:9/v1", api_key="explicit").api_key == "explicit"


def test_confidences_come_from_the_servers_prompt_logprobs(server_factory):
    from tagsmith.engines.base import AnswerRequest

    def reply(payload):  # vLLM's shape: None for the first token, then {id: {logprob, rank, decoded_token}}
        assert payload["continue_final_message"] and payload["prompt_logprobs"] == 0
        assert payload["messages"][-1] == {"role": "assistant", "content": '{"C":["Red"]}'}
        tokens = [("<s>user\nhi<s>assistant\n", None), ('{"', -0.1), ('C":["', -0.2), ("Red", -0.5), ('"]}', -0.3)]
        rows = [None if lp is None else {"7": {"logprob": lp, "rank": 1, "decoded_token": t}} for t, lp in tokens]
        rows[3]["9"] = {"logprob": -0.01, "rank": 1, "decoded_token": "Blue"}  # the top token, not the prompt's
        rows[3]["7"]["rank"] = 2
        return {"choices": [{"message": {"content": "x"}}], "prompt_logprobs": rows}

    url, _ = server_factory(reply)
    (tokens,) = OpenAIEngine("embedded", base_url=url).answer_logprobs(
        [AnswerRequest(({"role": "user", "content": "hi"},), '{"C":["Red"]}')])
    assert [(t.start, t.end, t.logprob) for t in tokens] == [(0, 2, -0.1), (2, 7, -0.2), (7, 10, -0.5), (10, 13, -0.3)]
