"""`tagsmith review`: hand unsure items to people (Label Studio or a spreadsheet), read their answers back."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tagsmith.cli.app import friendly_errors, main, say
from tagsmith.text import slug


@main.group()
def review() -> None:
    """Send tagged items to human review and read the reviewed tags back as gold data.

    \b
      tagsmith review export tagged.jsonl --vocab V --below 0.6 --out review.json
      (import review.json into a Label Studio project whose labeling configuration is
       review.label-config.xml, review, export as JSON)
      tagsmith review import project-export.json --out reviewed.jsonl
      tagsmith eval --data reviewed.jsonl ...   or   tagsmith train --data reviewed.jsonl ...
    """


@review.command("export")
@click.argument("tagged", type=click.Path(path_type=Path))
@click.option("--vocab", "-v", "vocab", required=True, metavar="PATH|NAME",
              help="The vocabulary the items were tagged with.")
@click.option("--input", "-i", "input_path", type=click.Path(path_type=Path), default=None,
              help="The items (.jsonl/.csv) that were tagged [default: the input in TAGGED's job record].")
@click.option("--below", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Items with an answer whose confidence is below this, an error, or a rejected answer.")
@click.option("--all", "everything", is_flag=True, help="Every tagged item, sure or not.")
@click.option("--sample", type=click.IntRange(1), default=None, help="At most N of the chosen items, at random.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="review.json: Label Studio tasks (+ review.label-config.xml beside it; one pair per "
                   "vocabulary when items have several); review.csv: one spreadsheet row per item.")
@click.option("--id-field", default=None, help="Input column holding the item id (as given to `tag`).")
@click.option("--title-field", default=None, help="Input column holding the title.")
@click.option("--description-field", default=None, help="Input column holding the description.")
@click.option("--category-field", default=None, help="Input column holding the category.")
@friendly_errors
def review_export(tagged: Path, vocab: str, input_path: Path | None, below: float, everything: bool,
                  sample: int | None, seed: int, out: Path, id_field: str | None, title_field: str | None,
                  description_field: str | None, category_field: str | None) -> None:
    """Write the tagged items that need a look as Label Studio tasks or a CSV.

    Each task shows the item's text and tagsmith's confidence, with every facet's control
    pre-filled from the tags. Confidences come from option scoring (the output's "scores");
    facets decoded without it have none: use --all or --sample to review those.
    """
    from tagsmith import review as rv
    from tagsmith.errors import InputError
    from tagsmith.items import FieldMap, read_items
    from tagsmith.results_store import job_path, read_results
    from tagsmith.vocabulary import resolve_vocabularies

    if out.suffix.lower() not in (".json", ".csv"):
        raise click.UsageError("--out must end in .json (Label Studio tasks) or .csv (a spreadsheet)")
    if input_path is None:
        try:
            input_path = Path(json.loads(job_path(tagged).read_text(encoding="utf-8"))["input"])
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"{tagged}: no job record names its input: give --input") from None
    vocabularies = resolve_vocabularies(vocab)
    fields = FieldMap.with_overrides(id=id_field, title=title_field, description=description_field,
                                     category=category_field)
    chosen = rv.select(read_items(input_path, fields), read_results(tagged), vocabularies,
                       below=None if everything else below, sample=sample, seed=seed)
    if chosen.missing:
        say(f"note: {chosen.missing} tagged ids are not in {input_path} (left out)")
    if chosen.unscored and not everything:
        say(f"note: {chosen.unscored} of {chosen.considered} items have no confidence for any facet (decoded "
            "without option scoring): only their errors and rejected answers select them; --all or --sample "
            "sends them anyway")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        rv.write_csv(chosen.items, out)
        say(f"{len(chosen.items)} of {chosen.considered} items -> {out}")
        return
    groups: dict[str, list[rv.ReviewItem]] = {}
    for r in chosen.items:
        groups.setdefault(r.vocabulary.name, []).append(r)
    if not groups:
        say(f"0 of {chosen.considered} items need review; nothing written")
        return
    for name, group in groups.items():
        target = out if len(groups) == 1 else out.with_name(f"{out.stem}.{slug(name) or 'vocabulary'}{out.suffix}")
        config = target.with_name(f"{target.stem}.label-config.xml")
        target.write_text(json.dumps(rv.label_studio_tasks(group), ensure_ascii=False, indent=1), encoding="utf-8")
        config.write_text(rv.label_config(group[0].vocabulary), encoding="utf-8")
        say(f"{len(group)} of {chosen.considered} items ({name}) -> {target}; labeling configuration: {config}")


@review.command("import")
@click.argument("reviewed", type=click.Path(path_type=Path))
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Gold JSONL to write ({id, title, description, category, gold}).")
@click.option("--vocab", "-v", "vocab", default=None, metavar="PATH|NAME",
              help="The vocabulary of the review (needed for a CSV: its values are checked against it).")
@friendly_errors
def review_import(reviewed: Path, out: Path, vocab: str | None) -> None:
    """Read reviewed tags back: a Label Studio JSON export, or a CSV made by `review export`.

    Each task's latest submitted annotation becomes the item's gold (a facet left empty has no
    value); tasks nobody annotated are left out. The result is data for `tagsmith eval --data`
    and `tagsmith train --data`.
    """
    from tagsmith import review as rv
    from tagsmith.vocabulary import resolve_vocabularies

    vocabularies = resolve_vocabularies(vocab) if vocab else None
    if reviewed.suffix.lower() == ".csv":
        if vocabularies is None:
            raise click.UsageError("a CSV review needs --vocab (its values are checked against it)")
        records, skipped = rv.read_csv(reviewed, vocabularies), 0
    else:
        imported = rv.read_label_studio_export(reviewed, vocabularies)
        records, skipped = imported.records, imported.unannotated
    rv.write_gold(records, out)
    say(f"{len(records)} reviewed items -> {out}" + (f" ({skipped} tasks not annotated, left out)" if skipped else ""))
