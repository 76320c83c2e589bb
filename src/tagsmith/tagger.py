"""item -> prompt -> constrained generation -> parse -> validate -> TagResult.

The tagger owns the policy (which vocabulary an item uses, how its text is cleaned, how
answers are checked) and nothing about how models run: it hands batches of
`GenerationRequest`s to whatever `Engine` it was given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tagsmith.confidence import DecodedAnswer, decoded_confidences, withhold
from tagsmith.config import TaggingSettings
from tagsmith.engines.base import Engine, Generation, GenerationRequest
from tagsmith.errors import EngineError
from tagsmith.evidence import tag_evidence
from tagsmith.examples import ExampleIndex
from tagsmith.items import FieldMap, Item, clean_text, item_from_record
from tagsmith.option_scoring import OptionScorer, ScoringJob
from tagsmith.parsing import parse_answer
from tagsmith.prompts import PromptTemplate
from tagsmith.schema import AnswerSchema, max_answer_tokens
from tagsmith.shortlist import Shortlister, large_facets
from tagsmith.tree_decoding import RankedDecoder, TreeDecoder
from tagsmith.vocabulary import Vocabulary, VocabularySet

if TYPE_CHECKING:
    from tagsmith.taxonomy import CategoryAttributes


@dataclass
class TagResult:
    """The outcome for one item. `error` is set (and `tags` empty) when no answer was usable."""

    id: str
    tags: dict[str, list[str]]
    vocabulary: str | None = None
    raw: str | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: values the model gave twice for one facet (dropped; counted for the eval's duplicate rate)
    duplicates: int = 0
    #: facets answered by option scoring: the probability of each option ("" = no value)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the chat messages sent to the model (kept only when the tagger is asked: eval reports)
    prompt: list[dict[str, str]] | None = None
    #: per facet and value, the span of the item's text that states it, None where it does not
    #: (only when the tagger is asked: `tag --evidence`)
    evidence: dict[str, dict[str, str | None]] | None = None
    #: a taxonomy's ids of the tags (the category's and each attribute value's), where it has them
    ids: dict[str, list[str]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for optional in ("prompt", "evidence", "ids"):
            if out[optional] is None:
                del out[optional]
        return out


def clean_item(item: Item, settings: TaggingSettings) -> tuple[str, str, list[str]]:
    """Cleaned title and description (sharing one character budget, title first) and notes on
    what was changed. Tagging and training both use it, so an adapter sees the same text."""
    s = settings
    title, notes_t = clean_text(item.title, max_chars=s.max_text_chars, html_to_text=s.strip_html)
    budget = max(0, s.max_text_chars - len(title))
    description, notes_d = clean_text(item.description, max_chars=budget, html_to_text=s.strip_html)
    return title, description, [f"title: {n}" for n in notes_t] + [f"description: {n}" for n in notes_d]


@dataclass
class _Prepared:
    item: Item
    vocabulary: Vocabulary | None
    text: str = ""
    title: str = ""
    description: str = ""
    request: GenerationRequest | None = None
    result: TagResult | None = None  # set when the item needs no model call
    warnings: list[str] = field(default_factory=list)
    #: the generated answer as a JSON object (facet -> values), where it parsed
    answer: dict[str, list[str]] = field(default_factory=dict)
    generation: Generation | None = None
    #: the vocabulary the model was shown: `vocabulary`, or the item's shortlist of it
    shown: Vocabulary | None = None


class Tagger:
    def __init__(self, engine: Engine, vocabularies: VocabularySet | Vocabulary,
                 template: PromptTemplate, settings: TaggingSettings | None = None,
                 adapter: str | None = None, shortlister: Shortlister | None = None,
                 examples: ExampleIndex | None = None, keep_prompts: bool = False,
                 evidence: bool = False, attributes: CategoryAttributes | None = None,
                 similarities: Mapping[str, Sequence[float]] | None = None) -> None:
        """`keep_prompts`: each result carries the messages its model call was given (for
        reports that show what the model saw; off for ordinary tagging, where it is bulk).
        `evidence`: each result carries the text span behind every tag (`evidence.py`).
        `attributes`: with a taxonomy's category tree, the second step: each item is then
        tagged with the attributes its chosen category carries, and gets the taxonomy's ids.
        `similarities`: per item id, its similarity to each value of a one-facet vocabulary,
        for option scoring's prior instead of embedding the values (the ranked decoder's)."""
        self.engine = engine
        self.attributes = attributes
        self.keep_prompts = keep_prompts
        self.evidence = evidence
        self.similarities = similarities or {}
        self.vocabularies = (vocabularies if isinstance(vocabularies, VocabularySet)
                             else VocabularySet([vocabularies]))
        self.template = template
        self.settings = settings or TaggingSettings()
        self.adapter = adapter
        #: labelled items shown to the model as worked examples (None: zero-shot prompts)
        self.examples = examples
        self._shortlister = shortlister
        # category trees chosen level by level or ranked (tree_decoding.py) need no schema of their own
        self._trees = {v.name for v in self.vocabularies if self.settings.hierarchy_decoding in ("tree", "ranked")
                       and len(v.facets) == 1 and v.facets[0].hierarchy is not None}
        self._tree_decoder: TreeDecoder | RankedDecoder | None = None
        self._ranked_lister: Shortlister | None = None  # its index is built once per tagger, not per batch
        above = self.settings.shortlist_threshold
        self._needs_shortlist = {v.name for v in self.vocabularies
                                 if self.settings.shortlist_k and large_facets(v, above) and v.name not in self._trees}
        # whole-vocabulary schemas are built once; shortlisted ones per item (they are small)
        self._schemas = {v.name: AnswerSchema.for_vocabulary(v, self.settings.shape) for v in self.vocabularies
                         if v.name not in self._needs_shortlist and v.name not in self._trees}
        self._budgets = {v.name: min(max_answer_tokens(v), self.settings.max_new_tokens)
                         for v in self.vocabularies}
        self.option_scorer = (OptionScorer(engine, template, self.settings, adapter)
                              if self.settings.option_scoring != "off" and engine.can_score else None)

    @property
    def shortlister(self) -> Shortlister:
        """Created on first need: vocabularies that fit whole never load the sentence encoder."""
        if self._shortlister is None:
            self._shortlister = Shortlister(self.settings.shortlist_k, self.settings.shortlist_threshold,
                                            depth_penalty=self.settings.hierarchy_depth_penalty)
        return self._shortlister

    def _prepare(self, item: Item) -> _Prepared:
        vocab = self.vocabularies.for_category(item.category)
        if vocab is None:
            known = ", ".join(self.vocabularies.categories)
            return _Prepared(item, None, result=TagResult(
                item.id, {}, error=f"no vocabulary for category {item.category!r} (have: {known})"))
        title, description, warnings = clean_item(item, self.settings)
        text = f"{title}\n{description}".strip()
        if not text:
            return _Prepared(item, vocab, result=TagResult(
                item.id, {}, vocabulary=vocab.name, warnings=[*warnings, "empty item: nothing to tag"]))
        return _Prepared(item, vocab, text=text, title=title, description=description, warnings=warnings)

    def _add_requests(self, prepared: list[_Prepared]) -> None:
        """Render each pending item's prompt and schema: from its vocabulary, or for a vocabulary
        with large facets, from the item's own shortlist of it; with worked examples, each item's
        nearest labelled items (one embedding batch per vocabulary for each)."""
        pending = [p for p in prepared if p.result is None and p.vocabulary is not None]
        groups: dict[str, list[_Prepared]] = {}
        for p in pending:
            assert p.vocabulary is not None
            groups.setdefault(p.vocabulary.name, []).append(p)
        shown: dict[int, Vocabulary] = {}
        demos: dict[int, list[Any]] = {}
        for name, group in groups.items():
            vocab = group[0].vocabulary
            assert vocab is not None
            if name in self._needs_shortlist:
                for p, small in zip(group, self.shortlister.restrict(vocab, [p.text for p in group]), strict=True):
                    shown[id(p)] = small
            if self.examples is not None:
                for p, found in zip(group, self.examples.nearest(name, [p.item for p in group]), strict=True):
                    demos[id(p)] = [e.shaped(self.settings.shape) for e in found]
        for p in pending:
            assert p.vocabulary is not None
            vocab = p.shown = shown.get(id(p), p.vocabulary)
            if vocab is p.vocabulary:
                schema, budget = self._schemas[vocab.name], self._budgets[vocab.name]
            else:
                schema = AnswerSchema.for_vocabulary(vocab, self.settings.shape)
                budget = min(max_answer_tokens(vocab), self.settings.max_new_tokens)
            messages = self.template.messages(p.item, {"title": p.title, "description": p.description}, vocab,
                                              examples=demos.get(id(p), []))
            p.request = GenerationRequest(messages=tuple(messages), schema=schema, max_tokens=budget,
                                          adapter=self.adapter)

    def tag_batch(self, items: Sequence[Item]) -> list[TagResult]:
        """Tag items in one engine call; each result carries its own errors, so one bad item
        never fails the batch."""
        start = time.perf_counter()
        prepared = [self._prepare(item) for item in items]
        self._decode_trees([p for p in prepared if p.result is None and p.vocabulary is not None
                            and p.vocabulary.name in self._trees])
        self._add_requests(prepared)
        pending = [p for p in prepared if p.result is None and p.request is not None]
        scorer = self.option_scorer
        # vocabularies whose every facet is answered by option scoring need no generation
        decode = [p for p in pending if scorer is None or not scorer.covers(p.shown)]  # type: ignore[arg-type]
        generations = self.engine.generate([p.request for p in decode]) if decode else []  # type: ignore[misc]
        for p, gen in zip(decode, generations, strict=True):
            assert p.vocabulary is not None
            if gen.error is not None:
                p.result = TagResult(p.item.id, {}, vocabulary=p.vocabulary.name, warnings=p.warnings,
                                     error=gen.error)
                continue
            parsed = parse_answer(gen.text, p.vocabulary, p.text)
            error = parsed.error
            if error and gen.finish_reason == "length":
                error += f" (answer cut at {p.request.max_tokens} tokens)"  # type: ignore[union-attr]
            p.answer, p.generation = _answer_object(gen.text), gen
            p.result = TagResult(p.item.id, parsed.tags, vocabulary=p.vocabulary.name, raw=gen.text,
                                 rejected=[r.to_dict() for r in parsed.rejected],
                                 warnings=p.warnings, error=error, duplicates=parsed.duplicates)
        for p in pending:
            if p.result is None:
                assert p.vocabulary is not None
                p.result = TagResult(p.item.id, {}, vocabulary=p.vocabulary.name, warnings=p.warnings)
        if self.settings.decoded_confidence:
            self._score_decoded([p for p in decode if p.result is not None and p.result.error is None], scorer)
        if scorer is not None:
            self._score_options(scorer, [p for p in pending if p.result is not None and p.result.error is None],
                                scored_only={id(p) for p in pending if p not in decode})
        threshold = self.settings.min_confidence or 0.0
        if threshold > 0:  # category trees' answers too (their decoders keep every answer)
            for p in prepared:
                if p.result is not None and p.result.error is None:
                    p.result.tags, withheld = withhold(p.result.tags, p.result.scores, threshold)
                    p.result.rejected.extend(withheld)
        per_item = (time.perf_counter() - start) / max(1, len(items))
        results = [p.result for p in prepared]
        if self.attributes is not None:
            self._tag_attributes(self.attributes, [(p, r) for p, r in zip(prepared, results, strict=True)
                                                   if r is not None and r.error is None
                                                   and p.vocabulary is not None and p.vocabulary.name in self._trees])
            per_item = (time.perf_counter() - start) / max(1, len(items))
        for p, r in zip(prepared, results, strict=True):
            assert r is not None
            r.seconds = round(per_item, 4)
            if self.keep_prompts and p.request is not None:
                r.prompt = [dict(m) for m in p.request.messages]
            if self.evidence and p.vocabulary is not None and r.error is None:
                r.evidence = tag_evidence(f"{p.title}\n{p.description}", p.vocabulary, r.tags)
        return results  # type: ignore[return-value]

    def _tag_attributes(self, attributes: CategoryAttributes, done: list[tuple[_Prepared, TagResult]]) -> None:
        """The taxonomy's second step: each item tagged again with its category's attributes."""
        vocabs: dict[str, Vocabulary] = {}
        asked: list[tuple[TagResult, Item]] = []
        for p, r in done:
            category = (r.tags.get(p.vocabulary.facets[0].name) or [None])[0]  # type: ignore[union-attr]
            vocab = attributes.vocabulary(category) if category else None
            if vocab is not None:
                vocabs[vocab.name] = vocab
                asked.append((r, Item(p.item.id, p.item.title, p.item.description, vocab.category, p.item.fields)))
        if asked:
            inner = Tagger(self.engine, VocabularySet(list(vocabs.values())), self.template, self.settings,
                           adapter=self.adapter, evidence=self.evidence)
            for r, second in zip((r for r, _ in asked), inner.tag_batch([i for _, i in asked]), strict=True):
                r.tags.update(second.tags)
                r.scores.update(second.scores)
                r.rejected.extend(second.rejected)
                r.raw = f"{r.raw} | {second.raw}"
                if second.error:
                    r.warnings.append(f"attributes: {second.error}")
        for _, r in done:
            r.ids = attributes.ids(r.tags)

    def _decode_trees(self, prepared: list[_Prepared]) -> None:
        """Items of category-tree vocabularies: their path, chosen level by level or ranked
        among their shortlist of paths."""
        if not prepared:
            return
        if self._tree_decoder is None:
            self._tree_decoder = (
                RankedDecoder(self.engine, self.template, self.settings, self.adapter)
                if self.settings.hierarchy_decoding == "ranked" else
                TreeDecoder(self.engine, self.template, self.settings, self.adapter, self.settings.tree_max_children))
        by_vocab: dict[str, list[_Prepared]] = {}
        for p in prepared:
            assert p.vocabulary is not None
            by_vocab.setdefault(p.vocabulary.name, []).append(p)
        for group in by_vocab.values():
            vocab = group[0].vocabulary
            assert vocab is not None
            facet = vocab.facets[0]
            if isinstance(self._tree_decoder, RankedDecoder):
                # the item's ranked_k nearest paths (every path of a smaller tree), with their similarity
                if self.settings.ranked_prior_weight == 0 and len(facet.allowed) <= self.settings.ranked_k:
                    found = [[(a, 0.0) for a in facet.allowed] for _ in group]  # no similarity needed
                else:
                    if self._ranked_lister is None:
                        self._ranked_lister = Shortlister(
                            self.settings.ranked_k, 1, encoder=self.shortlister.encoder, cache=self.shortlister.cache,
                            depth_penalty=self.settings.hierarchy_depth_penalty,
                            mention_bonus=self.settings.mention_bonus)
                    found = [c.get(facet.name) or [(a, 0.0) for a in facet.allowed]
                             for c in self._ranked_lister.scored_candidates(vocab, [p.text for p in group])]
                answers = self._tree_decoder.decode(facet, [p.item for p in group], found)
            else:
                answers = self._tree_decoder.decode(facet, [p.item for p in group], [p.text for p in group])
            for p, answer in zip(group, answers, strict=True):
                value = facet.join(answer.path) if answer.path else None
                p.result = TagResult(p.item.id, {facet.name: [value] if value else []}, vocabulary=vocab.name,
                                     raw=" | ".join(answer.raw), warnings=p.warnings,
                                     scores={facet.name: {value or "": round(answer.confidence, 4)}})

    def _score_decoded(self, prepared: list[_Prepared], scorer: OptionScorer | None) -> None:
        """Each decoded tag's confidence (confidence.py): from the generated tokens where the
        engine gave their log-probabilities, else read back in one engine call for the batch
        (each item alone if that fails, so one refused item only loses its own scores; none from
        an engine that can do neither). Facets option scoring answers get its scores instead."""
        jobs = []
        for p in prepared:
            assert p.vocabulary is not None and p.request is not None
            generated = p.generation
            jobs.append((DecodedAnswer(p.request.messages, p.shown or p.vocabulary, p.answer, p.text, self.adapter,
                                       shape=self.settings.shape, raw=generated.text if generated else None,
                                       tokens=generated.token_logprobs if generated else None),
                         scorer.facet_names(p.shown or p.vocabulary) if scorer else set()))
        found = _batch_or_each(lambda some: decoded_confidences(self.engine, [a for a, _ in some],
                                                                [s for _, s in some]), jobs)
        for p, scores in zip(prepared, found, strict=True):
            result = p.result
            assert result is not None
            if isinstance(scores, Exception):
                result.warnings.append(f"confidence of decoded tags failed: {scores}")
                continue
            result.scores.update(scores)

    def _score_options(self, scorer: OptionScorer, prepared: list[_Prepared], scored_only: set[int]) -> None:
        """Answer each short facet by option scoring, facet by facet in vocabulary order (a
        facet's prefix holds the answers before it), one engine call per vocabulary and facet.
        Items shown a shortlist are scored on its values; those of one vocabulary whose
        shortlists leave the same facets short enough to score share the calls."""
        groups: dict[tuple[str, tuple[int, ...]], list[tuple[_Prepared, ScoringJob]]] = {}
        for p in prepared:
            assert p.vocabulary is not None and p.request is not None
            shown = p.shown or p.vocabulary
            if positions := tuple(scorer.facets(shown)):
                job = ScoringJob(p.request.messages, shown, p.text, dict(p.answer),
                                 similarities=self.similarities.get(p.item.id))
                groups.setdefault((shown.name, positions), []).append((p, job))
        for (_, positions), group in groups.items():
            vocab = group[0][1].vocabulary
            for position in positions:
                facet = vocab.facets[position]
                live = [(p, j) for p, j in group if p.result is not None and p.result.error is None]
                choices = _batch_or_each(lambda some, at=position: scorer.choose(some, at), [j for _, j in live])
                for (p, _), choice in zip(live, choices, strict=True):
                    result = p.result
                    assert result is not None
                    if isinstance(choice, Exception):  # this item alone: keep what was decoded, say why
                        if id(p) in scored_only:
                            result.error = f"option scoring failed: {choice}"
                            result.tags = {}
                        else:
                            result.warnings.append(f"option scoring failed, decoded answer kept: {choice}")
                        continue
                    result.scores[facet.name] = choice.probabilities
                    if choice.value is None:
                        result.tags.pop(facet.name, None)
                    else:
                        result.tags[facet.name] = [choice.value]
            for p, job in group:
                assert p.result is not None
                if p.result.error is not None:
                    continue
                p.result.tags = {f.name: p.result.tags[f.name] for f in vocab.facets if f.name in p.result.tags}
                if id(p) in scored_only:
                    p.result.raw = json.dumps(job.answers, ensure_ascii=False, separators=(",", ":"))

    def requests(self, items: Sequence[Item]) -> list[GenerationRequest]:
        """The engine requests these items would send (items that need no model call are left
        out): for benchmarks and for inspecting exactly what a template produces."""
        prepared = [self._prepare(item) for item in items]
        self._add_requests(prepared)
        return [p.request for p in prepared if p.request is not None and p.result is None]

    def tag(self, item: Item) -> TagResult:
        return self.tag_batch([item])[0]

    def tag_records(self, records: Iterable[Mapping[str, Any]] | Any, fields: FieldMap | None = None,
                    batch_size: int | None = None) -> list[TagResult]:
        """Tag plain records: a list of dicts, or a pandas DataFrame (one row per item).

        Fields are found under the names `tagsmith tag --input` knows (`id`, `title`,
        `description`, `category`, ...; `fields` overrides them); an id defaults to the row
        number. Results come back in input order, `batch_size` items per engine call."""
        if hasattr(records, "to_dict") and hasattr(records, "columns"):  # a DataFrame, without importing pandas
            records = records.to_dict(orient="records")
        fields = fields or FieldMap()
        items = [item_from_record(dict(r), fields, fallback_id=str(n)) for n, r in enumerate(records)]
        size = batch_size or self.engine.batch_size
        return [r for start in range(0, len(items), size) for r in self.tag_batch(items[start:start + size])]


def _batch_or_each(call: Callable[[list[Any]], Sequence[Any]], jobs: list[Any]) -> list[Any]:
    """`call(jobs)`, one result per job, in one engine call; if it fails, each job alone, so
    that one item the engine refuses (too long for its context, say) gets its error (the
    exception, in its place) and the rest their answers."""
    try:
        return list(call(jobs))
    except (EngineError, ValueError, RuntimeError) as exc:
        if len(jobs) == 1:
            return [exc]
    out: list[Any] = []
    for job in jobs:
        try:
            out.extend(call([job]))
        except (EngineError, ValueError, RuntimeError) as exc:
            out.append(exc)
    return out


def _answer_object(raw: str) -> dict[str, list[str]]:
    """The generated answer's facets with list values (the prefix option scoring continues)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, list)} if isinstance(data, dict) else {}
