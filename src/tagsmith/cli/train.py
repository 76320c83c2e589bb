"""`tagsmith train`: fine-tune a LoRA adapter on gold tags, then score it on held-out items."""

from __future__ import annotations

from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import MODEL_HELP, progress_option


@main.command()
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Gold data (WDC-PAVE, ExtractGPT or generic JSONL).")
@click.option("--split", "part", type=click.Choice(["train", "all"]), default="train", show_default=True,
              help="Train on the train split (validation held out, as in `tagsmith eval`) or on everything.")
@click.option("--category", "categories", multiple=True, metavar="NAME",
              help="Only items of this category (repeat for several), e.g. office-products.")
@click.option("--exclude-category", "excluded", multiple=True, metavar="NAME",
              help="Leave out items of this category (repeat for several): train without it, "
                   "then eval --category NAME tags it as a vocabulary the adapter never saw.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Adapter folder to write (peft files + manifest.json), e.g. adapters/my-adapter.")
@click.option("--vocab", "-v", "vocab", default="wdc-pave-train", show_default=True, metavar="PATH|NAME",
              help="Vocabulary file, folder or built-in name (the default: WDC-PAVE's train-split values).")
@click.option("--model", "-m", default=None, help=MODEL_HELP)
@click.option("--template", "-t", default=None, help="Prompt template the adapter is trained (and used) with.")
@click.option("--rank", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--alpha", default=16, show_default=True, type=click.IntRange(1, 1024))
@click.option("--target-modules", default="q_proj,k_proj,v_proj,o_proj", show_default=True,
              help="Comma-separated module names to adapt.")
@click.option("--epochs", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--lr", "learning_rate", default=2e-4, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option("--max-length", default=1024, show_default=True, type=click.IntRange(64),
              help="Longest example in tokens; longer ones are skipped, not cut.")
@click.option("--max-steps", default=None, type=click.IntRange(1), help="Stop after this many steps.")
@click.option("--seed", default=0, show_default=True)
@click.option("--examples-k", default=0, show_default=True, type=click.IntRange(0, 20),
              help="Show each training prompt its K most similar other training items as worked examples "
                   "(then tag with --examples FILE, as the adapter was trained). 0 = none.")
@click.option("--init-adapter", type=click.Path(path_type=Path), default=None, metavar="NAME|PATH",
              help="Continue training this LoRA adapter (a folder or a shipped adapter's name) (its rank and modules are kept), e.g. to teach "
                   "a shipped adapter to use worked examples.")
@click.option("--answer-shape", type=click.Choice(["full", "filled"]), default=None,
              help="How the target answers are written: every facet (full) or only those with a value "
                   "(filled: tagging then decodes only the facets it fills). Default: the --init-adapter's "
                   "shape, else full. Tagging with the adapter uses the shape it was trained in.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=True, show_default=True,
              help="Recompute activations in the backward pass: slower steps, far less memory.")
@click.option("--eval-limit", default=50, show_default=True, type=click.IntRange(0),
              help="Score the adapter on this many validation items at the end (0 = skip).")
@progress_option
@friendly_errors
def train(data_path: Path, part: str, categories: tuple[str, ...], excluded: tuple[str, ...], out_dir: Path,
          vocab: str, model: str | None, template: str | None,
          rank: int, alpha: int, target_modules: str, epochs: float, learning_rate: float, batch_size: int,
          max_length: int, max_steps: int | None, seed: int, examples_k: int, init_adapter: Path | None,
          answer_shape: str | None, gradient_checkpointing: bool, eval_limit: int, progress: bool) -> None:
    """Fine-tune a LoRA adapter on gold tags (QLoRA on CUDA, plain LoRA on CPU).

    Examples are rendered through the same template the tagger uses and the target is the
    exact JSON the schema allows, so the adapter is trained on what it will see. A checkpoint
    is saved every 20 steps: running the same command again after a crash continues from it.
    """
    from tagsmith.config import load_settings
    from tagsmith.gold import load_dataset, select_categories, split
    from tagsmith.evaluation.matrix import LlmRun, llm_runs
    from tagsmith.prompts import load_template
    from tagsmith.runtime import placement
    from tagsmith.training import TrainSettings, train as run_training, validation_record, write_manifest
    from tagsmith.vocabulary import resolve_vocabularies

    from tagsmith.adapters import is_adapter
    from tagsmith.errors import InputError

    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir()) and not is_adapter(out_dir)
                             and not (out_dir / ".checkpoint").is_dir()):
        raise InputError(f"{out_dir}: exists and is not an adapter folder (nor a checkpoint to resume); "
                         "choose a new or empty --out")
    if init_adapter is not None and not is_adapter(init_adapter):
        from tagsmith.adapters import shipped_adapters

        shipped = shipped_adapters()
        if str(init_adapter) not in shipped:
            raise InputError(f"{init_adapter}: not a LoRA adapter folder nor a shipped adapter's name "
                             f"({', '.join(shipped) or 'none shipped'}) (--init-adapter)")
        init_adapter = shipped[str(init_adapter)]
    if answer_shape is None:
        from tagsmith.adapters import trained_shape

        answer_shape = trained_shape(init_adapter) if init_adapter else "full"
    settings = load_settings(None, {"model": {"name": model},
                                    "tagging": {"template": template, "answer_shape": answer_shape}})
    vocabularies = resolve_vocabularies(vocab)
    prompt = load_template(settings.tagging.template)
    full = select_categories(load_dataset(data_path), categories, excluded)
    data = split(full, part)
    demonstrations = None
    if examples_k:
        from tagsmith.examples import ExampleIndex

        demonstrations = ExampleIndex(data.items, vocabularies, k=examples_k, settings=settings.tagging)
    result = run_training(
        data.items, vocabularies, prompt, out_dir, model=settings.model.name,
        settings=TrainSettings(rank=rank, alpha=alpha, target_modules=tuple(target_modules.split(",")),
                               epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                               max_length=max_length, seed=seed, max_steps=max_steps,
                               gradient_checkpointing=gradient_checkpointing,
                               init_adapter=str(init_adapter.resolve()) if init_adapter else None),
        tagging=settings.tagging, progress=progress, examples_index=demonstrations)
    say(f"trained {result.steps} steps on {result.n_examples} examples in {result.seconds:.0f} s; "
        f"loss {result.losses[0]:.3f} -> {sum(result.losses[-10:]) / len(result.losses[-10:]):.3f} "
        f"(mean of last 10) -> {out_dir}")
    if not eval_limit or part != "train":
        return
    validation = split(full, "validation")
    validation = validation.subset(validation.name, validation.items[:eval_limit])
    if not validation.items:
        return
    notes: list[str] = []
    engine_name, run_model, adapter = placement(settings.engine.name, settings.model.name,
                                                str(Path(out_dir).resolve()), notes)
    say(*notes)
    (run,) = llm_runs(engine_name, run_model, [LlmRun(adapter, prompt, demonstrations, answer_shape=settings.tagging.shape)],
                      validation, vocabularies,
                      settings, progress=progress)
    record = validation_record(run, validation.name, len(validation.items))
    say(f"validation ({len(validation.items)} items): F1 {100 * run.scores.f1:.1f}")
    if "min_confidence" in record:
        say(f"confidence threshold {record['min_confidence']:g} (F1 "
            f"{100 * record['validation']['f1_at_min_confidence']:.1f} on these items) stored in the manifest: "
            "runs with this adapter withhold tags below it (--min-confidence overrides it)")
    write_manifest(Path(out_dir), record)
