"""Which adapter a run uses: the shipped default only for its own model and vocabulary."""

import json
import random

import pytest

from tagsmith import adapters
from tagsmith.adapters import choose_adapter, shipped_adapters
from tagsmith.errors import TagsmithError
from tagsmith.training import length_grouped_batches
from tagsmith.vocabulary import VocabularySet, parse_vocabulary, resolve_vocabularies

from conftest import SMALL_VOCAB

MODEL = "smollm2-135m-instruct"


def fake_adapter(folder, model, vocabularies, template="compact"):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps({
        "base_model": model, "template": template,
        "vocabularies": {v.name: v.digest for v in vocabularies}}))
    return folder


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    monkeypatch.setattr(adapters, "adapter_dirs", lambda: [tmp_path])
    return tmp_path


def test_auto_picks_the_adapter_trained_for_this_model_and_vocabulary(shipped):
    small = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    folder = fake_adapter(shipped / "kitchen", MODEL, small)
    choice = choose_adapter(None, MODEL, small)
    assert choice.path == str(folder) and choice.template == "compact" and choice.name == "kitchen"
    assert choose_adapter("auto", MODEL, small).path == str(folder)
    assert choose_adapter("none", MODEL, small).path is None
    assert choose_adapter(None, "other-model", small).path is None  # another base: bare model


def test_auto_picks_an_adapter_trained_with_worked_examples_only_for_runs_with_examples(shipped):
    """Measured: the examples-trained WDC-PAVE adapter is 4 F1 worse than the default without
    examples and 4.7 better with them; and only for the vocabularies it was trained on."""
    small = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    plain = fake_adapter(shipped / "kitchen-b", MODEL, small)
    with_examples = fake_adapter(shipped / "kitchen-a", MODEL, small)  # sorts first
    manifest = json.loads((with_examples / "manifest.json").read_text())
    (with_examples / "manifest.json").write_text(json.dumps({**manifest, "examples": {"k": 3}}))
    assert choose_adapter(None, MODEL, small).path == str(plain)
    assert choose_adapter(None, MODEL, small, examples=True).path == str(with_examples)
    assert choose_adapter("kitchen-a", MODEL, small).path == str(with_examples.resolve())
    assert choose_adapter("kitchen-b", MODEL, small, examples=True).path == str(plain.resolve())  # named wins
    changed = VocabularySet([parse_vocabulary(dict(SMALL_VOCAB, facets=SMALL_VOCAB["facets"][:2]))])
    assert choose_adapter(None, MODEL, changed, examples=True).path == str(plain)  # not trained on it


def test_auto_carries_the_adapter_to_a_vocabulary_it_never_saw(shipped):
    """Measured: trained without a category, an adapter beats the bare model on it by ~30 F1."""
    fake_adapter(shipped / "kitchen", MODEL, VocabularySet([parse_vocabulary(SMALL_VOCAB)]))
    changed = VocabularySet([parse_vocabulary(dict(SMALL_VOCAB, facets=SMALL_VOCAB["facets"][:2]))])
    choice = choose_adapter(None, MODEL, changed)
    assert choice.name == "kitchen" and not choice.trained_on_vocabulary and choice.template == "compact"
    assert choice.warnings == []
    assert choose_adapter(None, "other-model", changed).path is None  # never across base models
    # named explicitly, it is used, with a warning that this vocabulary changed since training
    choice = choose_adapter("kitchen", MODEL, changed)
    assert choice.path and "differs" in choice.warnings[0]


def test_unknown_adapter_is_a_clear_error(shipped):
    fake_adapter(shipped / "kitchen", MODEL, VocabularySet([parse_vocabulary(SMALL_VOCAB)]))
    with pytest.raises(TagsmithError, match=r"nor a shipped adapter \(kitchen\)"):
        choose_adapter("no-such", MODEL, VocabularySet([parse_vocabulary(SMALL_VOCAB)]))
    with pytest.raises(TagsmithError, match="trained on 'smollm2-135m-instruct', not 'other'"):
        choose_adapter("kitchen", "other", VocabularySet([parse_vocabulary(SMALL_VOCAB)]))


def test_the_shipped_default_adapter_matches_the_builtin_vocabulary():
    """Retraining the built-in vocabulary without retraining the adapter would silently turn the
    default off; this catches it."""
    found = shipped_adapters()
    if not found:
        pytest.skip("no adapter ships")
    choice = choose_adapter(None, MODEL, resolve_vocabularies("wdc-pave"))
    assert choice.path is not None and choice.template
    assert choice.name == "wdc-pave-smollm2"  # not the examples-trained one
    # validation runs (train-only vocabulary) that show worked examples get the adapter trained with them
    choice = choose_adapter(None, MODEL, resolve_vocabularies("wdc-pave-train"), examples=True)
    assert choice.name == "wdc-pave-smollm2-examples" and choice.template == "compact"


def test_length_grouped_batches_cover_every_example_once():
    random.seed(1)
    lengths = [random.randint(10, 900) for _ in range(203)]
    batches = length_grouped_batches(lengths, 4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(203)) and max(len(b) for b in batches) == 4
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 150  # random batches of 4 from 10..900 spread ~530 tokens


def test_auto_engine_merges_an_adapter_for_vllm_on_cpu(tmp_path, monkeypatch):
    import torch

    from tagsmith import model_store
    from tagsmith.runtime import placement
    from tagsmith.engines import resolve_engine_name

    if resolve_engine_name("auto") != "vllm" or torch.cuda.is_available():
        pytest.skip("needs vLLM installed and no GPU")
    folder = fake_adapter(tmp_path / "a", MODEL, VocabularySet([parse_vocabulary(SMALL_VOCAB)]))
    merged = []
    monkeypatch.setattr(model_store, "merge_adapter",
                        lambda base, adapter: merged.append(adapter) or model_store.ModelLocation("/m", "m"))
    notes: list[str] = []
    assert placement("auto", "embedded", str(folder), notes) == ("vllm", "/m", None)
    assert merged == [str(folder)] and "merged into the model's weights" in notes[0]
    assert placement("auto", "embedded", None, []) == ("vllm", "embedded", None)
    # asked for by name: kept as asked (LoRA applied by the engine), with a word on what it costs
    notes = []
    assert placement("vllm", "embedded", str(folder), notes) == ("vllm", "embedded", str(folder))
    assert placement("transformers", "embedded", str(folder), notes) == ("transformers", "embedded", str(folder))
    assert len(notes) == 2 and all("--engine auto runs it merged" in n for n in notes)
    assert merged == [str(folder)]  # nothing merged for them
    # a few items (one product on the command line): transformers starts in seconds, vLLM does not
    notes = []
    assert placement("auto", "embedded", str(folder), notes, few=True) == ("transformers", "/m", None)
    assert "a few items" in notes[0] and "merged" in notes[1]
    assert placement("vllm", "embedded", None, [], few=True) == ("vllm", "embedded", None)  # asked for


def test_adapter_without_manifest_is_refused_for_another_base_model(tmp_path):
    """peft's own adapter_config.json names the base model: enough to refuse a mismatch."""
    from tagsmith.adapters import check_adapter

    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen2.5-0.5B"}))
    with pytest.raises(TagsmithError, match="trained on 'Qwen/Qwen2.5-0.5B', not 'smollm2-135m-instruct'"):
        check_adapter(folder, MODEL)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2-135m-instruct"}))
    assert "no manifest.json" in check_adapter(folder, MODEL)[0]


def test_a_model_folder_keeps_its_id_when_moved(tmp_path):
    """Adapters and caches record a folder model by name and config, not by path."""
    from tagsmith.model_store import model_id, resolve_model

    a = tmp_path / "a" / "my-model"
    a.mkdir(parents=True)
    (a / "config.json").write_text('{"model_type": "llama"}')
    before = model_id(str(a))
    moved = tmp_path / "b" / "my-model"
    moved.parent.mkdir()
    a.rename(moved)
    assert model_id(str(moved)) == before == resolve_model(str(moved)).model_id
    assert before.startswith("my-model@")
    (moved / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    assert model_id(str(moved)) != before  # another model under the same name is not the same id


def test_a_new_vocabulary_gets_the_general_adapter_unless_one_knows_its_categories(shipped):
    small = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    specific = fake_adapter(shipped / "a-kitchen", MODEL, small)  # sorts first
    general = fake_adapter(shipped / "general", MODEL, small, template="default")
    manifest = json.loads((general / "manifest.json").read_text())
    (general / "manifest.json").write_text(json.dumps({**manifest, "vocabularies": {}, "general": {"tasks": {"x": 1}}}))
    other = VocabularySet([parse_vocabulary(dict(SMALL_VOCAB, name="shoes"))])
    choice = choose_adapter(None, MODEL, other)
    assert choice.path == str(general) and choice.general and choice.template == "default"
    assert not choice.trained_on_vocabulary
    # same category name (`<set>/<category>`), other values: the specific adapter still knows it
    renamed = VocabularySet([parse_vocabulary(dict(SMALL_VOCAB, name="kitchen-v2/" + SMALL_VOCAB["name"],
                                                   facets=SMALL_VOCAB["facets"][:2]))])
    choice = choose_adapter(None, MODEL, renamed)
    assert choice.path == str(specific) and not choice.general
    assert choose_adapter(None, MODEL, small).path == str(specific)  # trained for it exactly


def test_a_run_applies_the_threshold_tuned_for_its_adapter_unless_it_sets_one(shipped):
    from tagsmith.config import load_settings
    from tagsmith.runtime import plan_run

    small = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    folder = fake_adapter(shipped / "kitchen", MODEL, small)
    plan = plan_run(load_settings(), small, engine="transformers")
    assert plan.min_confidence == 0.0  # no threshold tuned: every tag kept
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "min_confidence": 0.35}))
    plan = plan_run(load_settings(), small, engine="transformers")
    assert plan.min_confidence == 0.35 and any("threshold tuned for adapter kitchen" in n for n in plan.notes)
    assert plan.tagging(load_settings().tagging).min_confidence == 0.35
    asked = load_settings(None, {"tagging": {"min_confidence": 0.0}})
    assert plan_run(asked, small, engine="transformers").min_confidence == 0.0  # asked for: wins
    assert plan_run(load_settings(), small, adapter="none", engine="transformers").min_confidence == 0.0
    unread = load_settings(None, {"tagging": {"decoded_confidence": False}})
    assert plan_run(unread, small, engine="transformers").min_confidence == 0.0  # no confidences to cut by


def test_a_tuned_threshold_stays_with_the_vocabularies_it_was_tuned_on(shipped):
    from tagsmith.config import load_settings
    from tagsmith.runtime import plan_run

    small = VocabularySet([parse_vocabulary(SMALL_VOCAB)])
    folder = fake_adapter(shipped / "kitchen", MODEL, small)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "min_confidence": 0.35}))
    other = VocabularySet([parse_vocabulary({"name": "shoes/heel", "facets": [{"name": "Heel", "values": ["Flat"]}]})])
    plan = plan_run(load_settings(), other, engine="transformers")
    assert plan.choice.path == str(folder)  # the adapter carries over to the new vocabulary ...
    assert plan.min_confidence == 0.0  # ... its threshold does not
