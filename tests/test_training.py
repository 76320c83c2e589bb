"""LoRA training: targets, a real few-step run (loss falls), manifest, loading in the
transformers engine; the vLLM load check is in test_vllm_engine.py."""

import pytest

from tagsmith.errors import TagsmithError
from tagsmith.adapters import check_adapter, read_manifest
from tagsmith.answers import target_answer
from tagsmith.training import seen_vocabularies
from tagsmith.vocabulary import VocabularySet, parse_vocabulary

from conftest import SMALL_VOCAB


def test_target_is_the_compact_json_the_schema_allows(small_vocab):
    gold = {"Color": ["Purple", "stainless", "Red"], "Material": [], "Part Number": ["ab-12", "ZZ"],
            "Category": ["Kitchen > Knives"]}
    text = target_answer(small_vocab, gold, "Chef knife AB-12")
    assert text == ('{"Color":["Stainless Steel","Red"],"Material":[],"Part Number":["AB-12"],'
                    '"Category":["Kitchen > Knives"]}')


def test_answer_loss_is_the_models_own_loss_on_the_answer_tokens():
    """Training projects only answer positions onto the vocabulary (memory); the loss must not change."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from tagsmith.training import answer_loss

    torch.manual_seed(0)
    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))
    model = get_peft_model(tiny, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    ids = torch.randint(0, 300, (2, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # right padding
    labels = ids.clone()
    labels[:, :12] = -100  # prompt
    labels[1, 15:] = -100
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss = answer_loss(model, ids, mask, labels)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()  # gradients reach the LoRA weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_manifest_lists_only_vocabularies_the_items_used():
    """An adapter trained with a category held out must not claim (and be auto-picked for) it."""
    from tagsmith.gold import GoldItem
    from tagsmith.items import Item

    vocabs = VocabularySet([parse_vocabulary({"name": n, "category": n.title(), "facets": [
        {"name": "Color", "values": ["Red"]}]}) for n in ("jewelry", "office")])
    items = [GoldItem(Item("1", "red ring", category="Jewelry"), {"Color": ["Red"]})]
    assert [v.name for v in seen_vocabularies(items, vocabs)] == ["jewelry"]


@pytest.mark.slow
def test_training_lowers_loss_and_writes_a_manifest(trained_adapter, small_vocab, template):
    folder, result = trained_adapter
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < 0.7 * first, result.losses
    manifest = read_manifest(folder)
    assert manifest["base_model"] == "smollm2-135m-instruct"
    assert manifest["template_digest"] == template.digest
    assert manifest["vocabularies"] == {"test-kitchen": small_vocab.digest}
    assert manifest["settings"]["rank"] == 8 and manifest["n_examples"] == 4
    assert manifest["settings"]["target_modules"] == ["q_proj", "v_proj"]
    assert (folder / "adapter_config.json").is_file()


@pytest.mark.slow
def test_a_continued_adapter_records_the_lora_shape_it_kept(trained_adapter, small_vocab, template, tmp_path):
    from tagsmith.gold import GoldItem
    from tagsmith.items import Item
    from tagsmith.training import TrainSettings, train
    from tagsmith.vocabulary import VocabularySet

    folder, _ = trained_adapter
    items = [GoldItem(Item("1", "red knife"), {"Color": ["Red"]})]
    train(items, VocabularySet([small_vocab]), template, tmp_path / "more",
          settings=TrainSettings(rank=4, max_steps=1, batch_size=1, init_adapter=str(folder)), progress=False)
    settings = read_manifest(tmp_path / "more")["settings"]
    # the settings asked for rank 4 on q/k/v/o; the continued adapter keeps its rank 8 on q/v
    assert settings["rank"] == 8 and settings["target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.slow
def test_adapter_loads_in_transformers_engine(trained_adapter, embedded_engine, small_vocab, template):
    from tagsmith.items import Item
    from tagsmith.tagger import Tagger

    folder, _ = trained_adapter
    tagger = Tagger(embedded_engine, small_vocab, template, adapter=str(folder))
    tuned = tagger.tag(Item("x", "Red steel chef knife AB-12"))
    base = Tagger(embedded_engine, small_vocab, template).tag(Item("x", "Red steel chef knife AB-12"))
    assert tuned.error is None and tuned.raw != base.raw
    assert "Red" in tuned.tags.get("Color", [])  # learnt from four examples (the base model says [])
    again = Tagger(embedded_engine, small_vocab, template).tag(Item("x", "Red steel chef knife AB-12"))
    assert again.raw == base.raw  # the base model is untouched after using the adapter


@pytest.mark.slow
def test_mismatched_adapter_is_refused_or_warned(trained_adapter):
    folder, _ = trained_adapter
    with pytest.raises(TagsmithError, match="trained on 'smollm2-135m-instruct', not 'other-model'"):
        check_adapter(folder, "other-model", VocabularySet([parse_vocabulary(SMALL_VOCAB)]))
    changed = parse_vocabulary(dict(SMALL_VOCAB, facets=SMALL_VOCAB["facets"][:2]))
    warnings = check_adapter(folder, "smollm2-135m-instruct", VocabularySet([changed]))
    assert warnings and "differs" in warnings[0]
    assert check_adapter(folder, "smollm2-135m-instruct", VocabularySet([parse_vocabulary(SMALL_VOCAB)])) == []


def test_not_an_adapter(tmp_path):
    with pytest.raises(TagsmithError, match="not a peft adapter folder"):
        check_adapter(tmp_path, "m", VocabularySet([parse_vocabulary(SMALL_VOCAB)]))


@pytest.mark.slow
def test_merged_adapter_answers_like_the_adapter(trained_adapter, small_vocab, template, tmp_path):
    """`tagsmith model merge`: the adapter folded into the weights keeps what it learnt, and is
    built once (the second call finds the cached folder)."""
    from tagsmith.engines import create_engine
    from tagsmith.items import Item
    from tagsmith.model_store import merge_adapter, resolve_model
    from tagsmith.tagger import Tagger

    folder, _ = trained_adapter
    merged = merge_adapter(resolve_model("embedded"), folder, root=tmp_path)
    assert merge_adapter(resolve_model("embedded"), folder, root=tmp_path) == merged
    assert merged.model_id == "smollm2-135m-instruct+tiny-lora"
    engine = create_engine("transformers", merged.path)
    try:
        result = Tagger(engine, small_vocab, template).tag(Item("x", "Red steel chef knife AB-12"))
    finally:
        engine.close()
    assert result.error is None and "Red" in result.tags.get("Color", [])  # the base model says []


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random Llama with the embedded model's tokenizer: trains in seconds."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tagsmith.model_store import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model().path)
    folder = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_losses(tiny_model, small_vocab, template,
                                                                         tmp_path, monkeypatch):
    from conftest import TRAIN_ITEMS
    from tagsmith import training
    from tagsmith.gold import GoldItem
    from tagsmith.items import Item

    items = [GoldItem(Item(i, t), g) for i, t, g in TRAIN_ITEMS]
    vocabs = VocabularySet([small_vocab])
    settings = training.TrainSettings(rank=2, alpha=4, batch_size=1, max_steps=6, checkpoint_every=2,
                                      target_modules=("q_proj",), learning_rate=1e-2)
    straight = training.train(items, vocabs, template, tmp_path / "a", model=tiny_model, settings=settings,
                              progress=False)
    real_loss, calls = training.answer_loss, []

    def dies_at_step_5(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(training, "answer_loss", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        training.train(items, vocabs, template, tmp_path / "b", model=tiny_model, settings=settings, progress=False)
    assert (tmp_path / "b" / ".checkpoint" / "state.pt").is_file()
    monkeypatch.setattr(training, "answer_loss", real_loss)
    resumed = training.train(items, vocabs, template, tmp_path / "b", model=tiny_model, settings=settings,
                             progress=False)
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6) and len(resumed.losses) == 6
    assert not (tmp_path / "b" / ".checkpoint").exists()
    other = training.TrainSettings(**{**settings.__dict__, "learning_rate": 1e-3, "max_steps": 4})
    calls.clear()
    monkeypatch.setattr(training, "answer_loss", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        training.train(items, vocabs, template, tmp_path / "c", model=tiny_model, settings=settings, progress=False)
    monkeypatch.setattr(training, "answer_loss", real_loss)
    with pytest.raises(TagsmithError, match="checkpoint of another training run"):
        training.train(items, vocabs, template, tmp_path / "c", model=tiny_model, settings=other, progress=False)
