"""LoRA fine-tuning on (item, gold tags) pairs, through the tagger's own template.

Each example is the exact chat prompt the tagger sends (same template, same text
clean-up, same vocabulary) followed by the exact compact JSON the schema allows as the
answer; the loss covers the answer tokens only. So a trained adapter meets, at tagging
time, precisely the input/output format it was trained on.

Gold is turned into a target the schema can produce: a single-valued facet takes the
first gold value the vocabulary knows (several WDC gold values are alternatives), an
extractive facet takes a gold value only if it occurs in the item text (the post-check
would reject anything else), and no value is [] (in the full answer shape; the filled shape
leaves such a facet out: answers.py). The manifest records the shape, which tagging then uses.

Adapters are saved as peft folders plus `manifest.json` (base model, template and
vocabulary digests, data hash, settings, losses) so loading can refuse a mismatched base.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tagsmith import __version__
from tagsmith.adapters import MANIFEST, read_manifest
from tagsmith.device import pick_dtype
from tagsmith.errors import ConfigError, TagsmithError
from tagsmith.examples import ExampleIndex
from tagsmith.gold import GoldItem, canonical_gold
from tagsmith.model_store import resolve_model
from tagsmith.answers import target_answer
from tagsmith.prompts import PromptTemplate
from tagsmith.config import TaggingSettings
from tagsmith.tagger import clean_item
from tagsmith.vocabulary import Vocabulary, VocabularySet

@dataclass
class TrainSettings:
    """LoRA and optimisation settings; every field is recorded in the adapter's manifest."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 4
    max_length: int = 1024
    seed: int = 0
    max_steps: int | None = None
    #: save a resumable checkpoint every this many steps (0 = never): a killed run continues
    #: from the last one when started again with the same data and settings
    checkpoint_every: int = 20
    #: recompute each layer's activations in the backward pass instead of keeping them: a step
    #: costs more compute but memory no longer grows with prompt length times depth (prompts
    #: with worked examples otherwise exhausted 24 GB)
    gradient_checkpointing: bool = True
    #: a LoRA adapter to continue training from (its rank and modules are kept), or None
    init_adapter: str | None = None

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ConfigError(f"rank and alpha must be >= 1 (got rank={self.rank}, alpha={self.alpha})")
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1 or self.max_length < 64:
            raise ConfigError("epochs, learning rate and batch size must be positive, max length >= 64")


@dataclass
class TrainResult:
    adapter_dir: str
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    n_examples: int = 0


def build_examples(items: Sequence[GoldItem], vocabularies: VocabularySet, template: PromptTemplate,
                   tokenizer: Any, tagging: TaggingSettings, max_length: int,
                   demonstrations: ExampleIndex | None = None) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per item; labels are -100 on the prompt. Items whose prompt alone
    exceeds max_length are skipped (truncating would teach answers to unseen text). With
    `demonstrations`, each prompt shows the item's nearest other training items, as tagging will."""
    shown: dict[str, list[Any]] = {}
    if demonstrations is not None:
        for vocab in vocabularies:
            group = [g.item for g in items if vocabularies.for_category(g.item.category) is vocab]
            shown.update((i.id, [e.shaped(tagging.shape) for e in found]) for i, found in
                         zip(group, demonstrations.nearest(vocab.name, group), strict=True))
    examples = []
    for g in items:
        vocab = vocabularies.for_category(g.item.category)
        if vocab is None:
            continue
        title, description, _ = clean_item(g.item, tagging)
        messages = template.messages(g.item, {"title": title, "description": description}, vocab,
                                     examples=shown.get(g.item.id, []))
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        gold = canonical_gold(g.gold, vocabularies, g.item.category)
        answer = target_answer(vocab, gold, f"{title}\n{description}", tagging.shape) + tokenizer.eos_token
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(p_ids) + len(a_ids) > max_length:
            continue
        examples.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    return examples


def length_grouped_batches(lengths: Sequence[int], batch_size: int, window: int = 64) -> list[list[int]]:
    """One epoch of batches in random order, each drawn from items of similar length.

    Random batches of WDC-PAVE prompts (400-900 tokens) pad a quarter of every step; sorting
    within shuffled windows of `window` items keeps the randomness and drops most padding.
    """
    order = list(range(len(lengths)))
    random.shuffle(order)
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: lengths[i])
        batches += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    random.shuffle(batches)
    return batches


def halve_adapter_weights(folder: Path) -> None:
    """Store LoRA weights as float16: half the size for a committed adapter, and both peft and
    vLLM cast them to the model's dtype on load (LoRA deltas are far inside fp16's range)."""
    from safetensors.torch import load_file, save_file

    path = folder / "adapter_model.safetensors"
    if path.is_file():
        tensors = {k: v.half().contiguous() for k, v in load_file(str(path)).items()}
        save_file(tensors, str(path), metadata={"format": "pt"})


def seen_vocabularies(items: Sequence[GoldItem], vocabularies: VocabularySet) -> list[Vocabulary]:
    """The vocabularies some training item is tagged with, in the set's order."""
    names = {v.name for g in items if (v := vocabularies.for_category(g.item.category)) is not None}
    return [v for v in vocabularies if v.name in names]


def data_digest(items: Sequence[GoldItem]) -> str:
    h = hashlib.sha256()
    for g in items:
        h.update(json.dumps([g.item.id, g.item.title, g.item.description, g.gold], sort_keys=True).encode())
    return h.hexdigest()[:16]


def train(items: Sequence[GoldItem], vocabularies: VocabularySet, template: PromptTemplate, out_dir: str | Path,
          *, model: str | None = None, settings: TrainSettings | None = None,
          tagging: TaggingSettings | None = None, progress: bool = True,
          examples_index: ExampleIndex | None = None) -> TrainResult:
    """Train a LoRA adapter and save it (with its manifest) to `out_dir`. With `examples_index`
    (built over the training items), prompts carry worked examples as `--examples` tagging does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or TrainSettings()
    tagging = tagging or TaggingSettings()
    location = resolve_model(model)
    torch.manual_seed(settings.seed)
    random.seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(location.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    examples = build_examples(items, vocabularies, template, tokenizer, tagging, settings.max_length,
                              examples_index)
    if not examples:
        raise TagsmithError("no training examples (no item matched a vocabulary within --max-length)")
    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {}
    if cuda:  # QLoRA: 4-bit base through bitsandbytes, LoRA weights in bf16
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("QLoRA on CUDA needs bitsandbytes: pip install 'tagsmith[cuda]'")
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": 0}
    base = AutoModelForCausalLM.from_pretrained(location.path, dtype=torch.float32 if not cuda else torch.bfloat16,
                                                **kwargs)
    if cuda:
        base = prepare_model_for_kbit_training(base)
    if settings.gradient_checkpointing:
        # non-reentrant checkpointing needs no grad-requiring inputs, so frozen embeddings are fine
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.config.use_cache = False
    if settings.init_adapter:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base, settings.init_adapter, is_trainable=True)
        for param in peft_model.parameters():  # shipped adapters are stored in half precision
            if param.requires_grad:
                param.data = param.data.float()
    else:
        lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                          target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
        peft_model = get_peft_model(base, lora)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad],
                                  lr=settings.learning_rate)
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total = settings.max_steps or max(1, int(steps_per_epoch * settings.epochs))
    device = next(peft_model.parameters()).device
    # On CPUs with native bf16 (avx512_bf16/amx), bf16 autocast roughly halves step time;
    # the LoRA weights themselves stay float32.
    autocast = not cuda and pick_dtype("auto", "cpu") == "bfloat16"
    peft_model.train()
    losses: list[float] = []
    batches: list[list[int]] = []
    checkpoint = Checkpoint(Path(out_dir), fingerprint={
        "base_model": location.model_id, "template": template.digest, "data": data_digest(items),
        "settings": {k: v for k, v in asdict(settings).items() if k != "checkpoint_every"},
        "tagging": tagging.model_dump(), "examples": examples_index.digest if examples_index else None})
    first_step, elapsed = checkpoint.restore(peft_model, optimizer, losses, batches)
    start = time.perf_counter() - elapsed
    bar = tqdm(range(first_step, total), desc="train", unit="step", disable=not progress,
               initial=first_step, total=total)
    for step in bar:
        if not batches:
            batches = length_grouped_batches([len(ids) for ids, _ in examples], settings.batch_size)
        batch = [examples[i] for i in batches.pop()]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, labs) in enumerate(batch):  # right padding: labels ignore the pads
            input_ids[row, :len(ids)] = torch.tensor(ids)
            labels[row, :len(labs)] = torch.tensor(labs)
            mask[row, :len(ids)] = 1
        lr = settings.learning_rate * (1 - step / total)  # linear decay
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = answer_loss(peft_model, input_ids.to(device), mask.to(device), labels.to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(peft_model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if settings.checkpoint_every and (step + 1) % settings.checkpoint_every == 0 and step + 1 < total:
            checkpoint.save(step + 1, peft_model, optimizer, losses, batches, time.perf_counter() - start)
    bar.close()
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out_path)
    halve_adapter_weights(out_path)
    result = TrainResult(str(out_path), total, losses, time.perf_counter() - start, len(examples))
    write_manifest(out_path, {
        "tagsmith_version": __version__, "base_model": location.model_id,
        "template": template.name, "template_digest": template.digest, "answer_shape": tagging.shape,
        # only the vocabularies it saw: one held out of training must not look "trained for"
        "vocabularies": {v.name: v.digest for v in seen_vocabularies(items, vocabularies)},
        "data_digest": data_digest(items),
        "n_examples": len(examples), "settings": {**asdict(settings), **lora_settings(peft_model), "qlora": cuda},
        "steps": total, "seconds": round(result.seconds, 1), "peak_memory_gb": peak_memory_gb(),
        "loss_first": losses[0], "loss_last_10_mean": sum(losses[-10:]) / len(losses[-10:]),
        **({"examples": {"digest": examples_index.digest, "k": examples_index.k, "n": len(examples_index)}}
           if examples_index else {}),
    })
    checkpoint.clear()
    return result


class Checkpoint:
    """A resumable training state in OUT/.checkpoint/: LoRA weights, optimizer, step, losses,
    the remaining batch plan and the random states, written atomically. Resuming needs the
    same base model, template, data and settings (the fingerprint); anything else is refused
    rather than silently mixed."""

    def __init__(self, out_dir: Path, fingerprint: dict[str, Any]) -> None:
        self.path = out_dir / ".checkpoint" / "state.pt"
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))

    def save(self, step: int, model: Any, optimizer: Any, losses: list[float], batches: list[list[int]],
             elapsed: float) -> None:
        import torch
        from peft import get_peft_model_state_dict

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"fingerprint": self.fingerprint, "step": step, "elapsed": elapsed,
                    "lora": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                    "losses": losses, "batches": batches, "python_random": random.getstate(),
                    "torch_random": torch.get_rng_state()}, tmp)
        tmp.replace(self.path)

    def restore(self, model: Any, optimizer: Any, losses: list[float], batches: list[list[int]]) -> tuple[int, float]:
        """(first step, seconds already spent); 0, 0 when there is nothing to resume."""
        if not self.path.is_file():
            return 0, 0.0
        import torch
        from peft import set_peft_model_state_dict

        state = torch.load(self.path, weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            raise TagsmithError(f"{self.path.parent.parent} holds a checkpoint of another training run "
                                f"(other data, model or settings): remove {self.path.parent} or choose another --out")
        set_peft_model_state_dict(model, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
        losses[:] = state["losses"]
        batches[:] = state["batches"]
        random.setstate(state["python_random"])
        torch.set_rng_state(state["torch_random"])
        return int(state["step"]), float(state["elapsed"])

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.path.parent, ignore_errors=True)


def lora_settings(peft_model: Any) -> dict[str, Any]:
    """The LoRA shape the trained adapter has: an `init_adapter` keeps its own rank and modules,
    whatever the settings asked for."""
    config = peft_model.peft_config["default"]
    return {"rank": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
            "target_modules": sorted(config.target_modules)}


def peak_memory_gb() -> float:
    """This process's peak resident memory (what a 24 GB machine must hold)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 2)


def answer_loss(model: Any, input_ids: Any, mask: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy over the answer tokens only.

    The same loss as the model's own `labels=` path, but the vocabulary projection runs on the
    answer positions alone: full logits for 4 x 1,000 prompt tokens x 49k vocabulary entries (plus
    their float32 copies and gradients) took gigabytes per step, and a 1.5-epoch run on 2 CPU
    cores was killed for memory at 20 GB resident.
    """
    import torch

    causal_lm = model.get_base_model()  # LoRA layers sit inside it; `base_model` is its decoder stack
    hidden = causal_lm.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def validation_record(run: Any, dataset_name: str, n_items: int) -> dict[str, Any]:
    """What a validation run (an eval `RunResult`) adds to the adapter's manifest: its scores,
    and the F1-best confidence threshold where one raises F1 on those items (runs with the
    adapter on its vocabularies then apply it: runtime.run_threshold)."""
    s = run.scores
    record: dict[str, Any] = {"validation": {
        "dataset": dataset_name, "n_items": n_items, "f1": s.f1, "precision": s.precision, "recall": s.recall,
        "f1_interval": [s.f1_interval.low, s.f1_interval.high] if s.f1_interval else None}}
    c = run.confidence
    if c is not None and c.best_threshold > 0 and c.best_f1 > s.f1:
        record["min_confidence"] = c.best_threshold
        record["validation"]["f1_at_min_confidence"] = c.best_f1
    return record


def write_manifest(folder: Path, data: dict[str, Any]) -> None:
    existing = read_manifest(folder) or {}
    (folder / MANIFEST).write_text(json.dumps({**existing, **data}, indent=2, default=list), encoding="utf-8")
