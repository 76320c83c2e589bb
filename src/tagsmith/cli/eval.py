"""`tagsmith eval`: score configurations against gold labels on the same items."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.cli.options import CONFIG_HELP, progress_option


@main.command("eval")
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="Gold data: WDC-PAVE or ExtractGPT JSONL, generic JSONL with a 'gold' object, or an "
                   "ImplicitAVE <domain>/val.tsv (its option lists become the vocabulary).")
@click.option("--split", "part", type=click.Choice(["validation", "train", "all"]), default="validation",
              show_default=True, help="Which part of --data to score (a stable 20%% by id is validation).")
@click.option("--category", "categories", multiple=True, metavar="NAME",
              help="Only items of this category (repeat for several), e.g. office-products.")
@click.option("--exclude-category", "excluded", multiple=True, metavar="NAME",
              help="Leave out items of this category (repeat for several).")
@click.option("--vocab", "-v", "vocab", default=None, metavar="PATH|NAME",
              help="Vocabulary file, folder or built-in name. Default: the data's own option lists "
                   "(ImplicitAVE), else wdc-pave-train, which holds only values seen in the WDC-PAVE train "
                   "split, so validation answers are not handed over by the vocabulary.")
@click.option("--model", "-m", "models", multiple=True,
              help="Model(s) to evaluate; repeat for a matrix [default: embedded].")
@click.option("--template", "-t", "templates", multiple=True,
              help="Template(s) to evaluate; repeat for a matrix (the first is the reference).")
@click.option("--engine", "-e", "engines", multiple=True,
              help="Generation backend(s); repeat for a matrix [default: auto].")
@click.option("--adapter", "-a", "adapters", multiple=True, metavar="auto|none|NAME|PATH",
              help="LoRA adapter(s) to evaluate; repeat for a matrix: a folder, a shipped adapter's name, "
                   "'none' = the base model, 'auto' = the shipped adapter for the model and vocabulary "
                   "(none if there is none) [default: auto]. Without --template each adapter runs with "
                   "the template it was trained with.")
@click.option("--examples", "examples", metavar="auto|none|FILE", default="auto", show_default=True,
              help="Gold-labelled file whose items most similar to each scored item are shown in the prompt "
                   "as worked examples (scored items are never in the pool). 'auto': with --split validation, "
                   "the train split of --data (the items the baseline trains on), else none; 'none': "
                   "no examples.")
@click.option("--examples-k", "examples_k", type=click.IntRange(0, 20), multiple=True,
              help="Worked examples per item [default: 3]; repeat for a matrix (0 = a run without examples), "
                   "e.g. --examples-k 0 --examples-k 3 compares both on the same items.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also train and score the TF-IDF + linear SVM baseline on the train split.")
@click.option("--embedding-baseline", is_flag=True,
              help="Also score the zero-shot baseline: per closed facet, the value nearest the item by "
                   "sentence embedding (no training data needed).")
@click.option("--llm/--no-llm", default=True, show_default=True, help="Run the LLM configurations.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Score only the first N items.")
@click.option("--batch-size", "-b", type=click.IntRange(1, 4096), default=None,
              help="Items per engine call [default: the engine's own].")
@click.option("--config", type=click.Path(path_type=Path), default=None, help=CONFIG_HELP)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Reports go to OUT/<time>-<dataset>/ (report.md, report.html, summary.json, predictions).")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
              help="Exit with status 3 when any LLM run's micro F1 (in %%) is below this: a CI gate.")
@click.option("--open", "open_report", is_flag=True,
              help="Open report.html in the default web browser when the run is done.")
@progress_option
@friendly_errors
def eval_cmd(data_path: Path, part: str, categories: tuple[str, ...], excluded: tuple[str, ...], vocab: str | None,
             models: tuple[str, ...], templates: tuple[str, ...], engines: tuple[str, ...],
             adapters: tuple[str, ...], examples: str, examples_k: tuple[int, ...], baseline: bool, embedding_baseline: bool, llm: bool, limit: int | None, batch_size: int | None,
             config: Path | None, out_dir: Path, fail_under: float | None, open_report: bool,
             progress: bool) -> None:
    """Score configurations against gold labels and compare them on the same items.

    Runs every engine x model x adapter x template combination (the first is the reference every
    other run is compared to, with a paired bootstrap interval and the slots that flipped) and the
    classical baseline. Generations are cached, so re-running an unchanged configuration
    is free and changing one template re-runs only that template.
    """
    from tagsmith.evaluation import EvalPlan, evaluate
    from tagsmith.model_store import cache_dir

    if not llm and not baseline and not embedding_baseline:
        raise click.UsageError("nothing to run (both --no-llm and --no-baseline)")
    plan = EvalPlan(data=data_path, vocab=vocab, split=part, categories=categories, exclude_categories=excluded,
                    models=models, templates=templates, engines=engines, adapters=adapters or ("auto",),
                    examples=examples, examples_k=examples_k, baseline=baseline, embedding_baseline=embedding_baseline, llm=llm, limit=limit, batch_size=batch_size, config=config,
                    cache_dir=cache_dir() / "eval", progress=progress)
    result = evaluate(plan)
    say(*result.notes)
    target = result.save(out_dir)
    click.echo(result.markdown)
    say(f"\nreports: {target}/report.md, report.html, summary.json")
    if open_report:
        open_in_browser(target / "report.html")
    if fail_under is not None:
        low = result.below(fail_under)
        if low:
            say(f"FAIL: F1 below {fail_under}: " + ", ".join(f"{r.config.name} {100 * r.scores.f1:.1f}" for r in low))
            sys.exit(3)


def open_in_browser(page: Path) -> None:
    """Open a report in the user's browser, or say where it is when there is none (a server)."""
    import webbrowser

    try:
        opened = webbrowser.open(page.resolve().as_uri())
    except webbrowser.Error:
        opened = False
    if not opened:
        say(f"no web browser found here: open {page} in one")


@main.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--open", "open_report", is_flag=True, help="Open the rebuilt page in the default web browser.")
@friendly_errors
def report_cmd(run_dir: Path, open_report: bool) -> None:
    """Rebuild report.html of an eval run folder from its saved predictions, without running a model.

    RUN_DIR is a folder `tagsmith eval` wrote (runs/<time>-<dataset>/). Useful after upgrading
    tagsmith, or when the page was deleted or edited.
    """
    from tagsmith.evaluation import html_report

    page = html_report.write(run_dir)
    say(f"report: {page}")
    if open_report:
        open_in_browser(page)
