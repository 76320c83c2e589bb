"""tagsmith's own constrained decoding loop (engines/guided.py) on the real embedded model.

It must give the answers outlines gives with the same llguidance masks, in batches of mixed
schemas as alone, and the log-probabilities a plain forward pass over the answer gives.
"""

import json

import pytest

from tagsmith.engines.base import GenerationRequest
from tagsmith.schema import AnswerSchema, build_schema
from tagsmith.vocabulary import parse_vocabulary

pytestmark = pytest.mark.slow

DRESS = parse_vocabulary({"name": "dress", "facets": [
    {"name": "Brand", "extractive": True},
    {"name": "Neckline", "values": ["V-Neck", "Crew Neck", "Scoop Neck"]},
    {"name": "Color", "values": ["Red", "Blue", "Black"], "max_values": 2}]})
DRIVE = parse_vocabulary({"name": "drive", "facets": [
    {"name": "Capacity", "values": ["500 GB", "1 TB", "2 TB"]},
    {"name": "Interface", "values": ["SATA", "USB 3.0", "NVMe"]}]})


def ask(title: str, vocab, shape: str = "full", max_tokens: int = 80) -> GenerationRequest:
    facets = "\n".join(f"{f.name}: {' | '.join(f.allowed) if not f.extractive else 'copy from the title'}"
                       for f in vocab.facets)
    messages = ({"role": "user", "content": f"Product title: {title}\n{facets}\nJSON answer:"},)
    return GenerationRequest(messages, AnswerSchema.of(build_schema(vocab, shape)), max_tokens)


REQUESTS = [ask("ACME Women's V Neck Beaded Cocktail Dress, red", DRESS),
            ask("Seagate 2TB external hard drive USB 3.0", DRIVE, "filled"),
            ask("Nordic crew neck sweater dress in navy blue and black", DRESS, "filled"),
            ask("WD Blue 500GB SATA", DRIVE)]


def test_answers_equal_outlines_with_the_same_masks(embedded_engine):
    from outlines.inputs import Chat

    assert embedded_engine.structured_backend == "llguidance"
    batch = embedded_engine.generate(REQUESTS)  # one guided batch, four schemas
    for request, got in zip(REQUESTS, batch, strict=True):
        with embedded_engine._adapter(None):  # the bare model, whatever adapter another test loaded
            expected = embedded_engine._run(embedded_engine._generator(request.schema), [request], Chat)[0]
        assert got.text == expected.text
        json.loads(got.text)
        assert got.finish_reason == "stop"
        (alone,) = embedded_engine.generate([request])
        assert alone.text == got.text


def test_token_logprobs_equal_a_forward_pass_over_the_answer(embedded_engine):
    """Forced tokens (fast-forwarded in one pass) and chosen ones alike get the model's own
    log-probability: the number one plain forward pass over prompt and answer tokens gives."""
    import torch

    from tagsmith.engines.guided import GuidedDecoder

    tok, model = embedded_engine._tokenizer, embedded_engine._hf_model
    decoder = GuidedDecoder(model, tok)
    prompts = [tok.apply_chat_template(list(r.messages), tokenize=False, add_generation_prompt=True)
               for r in REQUESTS]
    outputs = decoder.generate(prompts, [r.schema for r in REQUESTS], [r.max_tokens for r in REQUESTS])
    for prompt, out in zip(prompts, outputs, strict=True):
        assert out.token_logprobs is not None and len(out.token_logprobs) == len(out.token_ids)
        assert "".join(out.text[t.start:t.end] for t in out.token_logprobs) == out.text
        ids = tok.encode(prompt, add_special_tokens=False)
        with torch.inference_mode():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids + out.token_ids])).logits[0].float(), -1)
        for j, (token, got) in enumerate(zip(out.token_ids, out.token_logprobs, strict=True)):
            expected = float(lp[len(ids) + j - 1, token])
            assert abs(got.logprob - expected) < 1e-3 * max(1.0, abs(expected))


def test_an_answer_cut_at_max_tokens_says_so(embedded_engine):
    (got,) = embedded_engine.generate([ask("ACME Women's V Neck Beaded Cocktail Dress, red", DRESS, max_tokens=5)])
    assert got.finish_reason == "length" and got.completion_tokens == 5
    assert len(got.token_logprobs or ()) == 5


def test_forced_tokens_cost_no_forward_pass_of_their_own(embedded_engine):
    calls = []
    hook = embedded_engine._hf_model.register_forward_hook(lambda *a: calls.append(1))
    try:
        (got,) = embedded_engine.generate([REQUESTS[0]])  # the full shape: every facet's name is forced
    finally:
        hook.remove()
    assert len(calls) < got.completion_tokens / 2
