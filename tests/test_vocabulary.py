import json

import pytest

from tagsmith.errors import VocabularyError
from tagsmith.vocabulary import load_vocabulary, parse_vocabulary, resolve_vocabularies

from conftest import SMALL_VOCAB


def write(tmp_path, text, name="v.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_aliases_map_to_canonical(small_vocab):
    color = small_vocab.facet("Color")
    assert color.canonical("INOX") == "Stainless Steel"
    assert color.canonical("  black ") == "Black"
    assert color.canonical("Blue") is None
    assert "inox" in color.surface_forms


def test_hierarchy_allows_ancestors_never_invented_paths(small_vocab):
    cat = small_vocab.facet("Category")
    assert cat.allowed == ("Kitchen", "Kitchen > Knives", "Kitchen > Cookware", "Kitchen > Cookware > Pans")
    assert cat.canonical("Kitchen > Cookware") == "Kitchen > Cookware"
    assert cat.canonical("Kitchen > Spoons") is None


def test_duplicate_value_names_file_and_facet(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - name: Color\n    values: [Red, red]\n")
    with pytest.raises(VocabularyError, match=r"v\.yaml: facet 'Color': .*duplicate value 'red'"):
        load_vocabulary(p)


def test_alias_clashing_with_other_value(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - name: Color\n    values: [Red, {value: Crimson, aliases: [red]}]\n")
    with pytest.raises(VocabularyError, match="clashes with 'Red'"):
        load_vocabulary(p)


def test_empty_facet(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - name: Color\n    values: []\n")
    with pytest.raises(VocabularyError, match="facet 'Color': facet has no values"):
        load_vocabulary(p)


def test_unknown_key_is_named(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - name: Color\n    colour: 1\n    values: [Red]\n")
    with pytest.raises(VocabularyError, match="facet 'Color': unknown key 'colour'"):
        load_vocabulary(p)


def test_unknown_top_level_key(tmp_path):
    p = write(tmp_path, "name: x\nfacet: []\nfacets:\n  - name: C\n    values: [Red]\n")
    with pytest.raises(VocabularyError, match="unknown key 'facet'"):
        load_vocabulary(p)


def test_duplicate_facet_names(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - {name: C, values: [a]}\n  - {name: C, values: [b]}\n")
    with pytest.raises(VocabularyError, match="duplicate facet name"):
        load_vocabulary(p)


def test_extractive_with_values_is_an_error(tmp_path):
    p = write(tmp_path, "name: x\nfacets:\n  - {name: PN, extractive: true, values: [a]}\n")
    with pytest.raises(VocabularyError, match="extractive facet takes no 'values'"):
        load_vocabulary(p)


@pytest.mark.parametrize("content,match", [
    ("name: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("", "expected a mapping"),
])
def test_invalid_files(tmp_path, content, match):
    with pytest.raises(VocabularyError, match=match):
        load_vocabulary(write(tmp_path, content))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(VocabularyError, match="no such file"):
        resolve_vocabularies(tmp_path / "nope.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(VocabularyError, match="cannot read"):
        load_vocabulary(bad)
    with pytest.raises(VocabularyError, match="not a vocabulary file"):
        load_vocabulary(write(tmp_path, "x", name="v.txt"))


def test_json_vocabulary_and_digest_is_stable(tmp_path):
    p = write(tmp_path, json.dumps(SMALL_VOCAB), name="v.json")
    a, b = load_vocabulary(p), parse_vocabulary(SMALL_VOCAB)
    assert a == b and a.digest == b.digest
    changed = dict(SMALL_VOCAB, name="other")
    assert parse_vocabulary(changed).digest != a.digest


def test_a_bad_unit_is_one_problem_named_with_its_facet():
    with pytest.raises(VocabularyError) as err:
        parse_vocabulary({"name": "t", "facets": [{"name": "Width", "unit": "furlong", "values": ["1.0"]}]})
    assert "facet 'Width'" in str(err.value) and "unknown unit 'furlong'" in str(err.value)
    assert "more problem" not in str(err.value)


def test_digest_ignores_fields_left_at_their_defaults():
    # a field added to the format later must not change existing vocabularies' digests (adapters record them)
    facets = [dict(f) for f in SMALL_VOCAB["facets"]]
    spelled_out = dict(SMALL_VOCAB, facets=[dict(facets[0], unit=None, required=False), *facets[1:]])
    assert parse_vocabulary(spelled_out).digest == parse_vocabulary(SMALL_VOCAB).digest
    closed = next(i for i, f in enumerate(facets) if f.get("values"))
    facets[closed]["unit"] = "cm"
    assert parse_vocabulary(dict(SMALL_VOCAB, facets=facets)).digest != parse_vocabulary(SMALL_VOCAB).digest


def test_a_copy_with_changed_fields_works_out_its_cached_properties_again():
    vocab = parse_vocabulary(SMALL_VOCAB)
    facet = next(f for f in vocab.facets if not f.extractive and len(f.values) > 1)
    dropped = facet.allowed[-1]
    assert facet.canonical(dropped) == dropped and vocab.digest  # cached before the copies
    fewer = facet.model_copy(update={"values": facet.values[:-1]})
    assert fewer.allowed == facet.allowed[:-1] and fewer.canonical(dropped) is None
    renamed = vocab.model_copy(update={"name": "other"})
    assert renamed.digest == parse_vocabulary(dict(SMALL_VOCAB, name="other")).digest != vocab.digest
    assert facet.model_copy().allowed is facet.allowed  # a plain copy keeps them


def test_builtin_wdc_vocabularies_route_by_category():
    vs = resolve_vocabularies("wdc-pave")
    assert len(vs) == 5
    assert vs.for_category("jewelry").name == "wdc-pave/jewelry"
    assert vs.for_category("Toys") is None
    assert vs.for_category("Computers And Accessories").facet("Part Number").extractive


def test_folder_with_two_vocabularies_for_one_category(tmp_path):
    for n in ("a", "b"):
        write(tmp_path, f"name: {n}\ncategory: Food\nfacets:\n  - {{name: C, values: [x]}}\n", f"{n}.yaml")
    with pytest.raises(VocabularyError, match="two vocabularies for category 'Food'"):
        resolve_vocabularies(tmp_path)


def test_train_only_wdc_vocabulary_holds_no_validation_only_value():
    """Validation figures are scored with `wdc-pave-train`: a value seen only in validation offers
    would hand the answer to the model through the vocabulary."""
    from conftest import WDC_LARGE, require_shared
    from tagsmith.gold import load_dataset, split
    from tagsmith.text import fold

    require_shared()
    data = load_dataset(WDC_LARGE)
    seen: dict[str, set[tuple[str, str]]] = {"train": set(), "validation": set()}
    for part in seen:
        for g in split(data, part).items:
            seen[part] |= {(fold(g.item.category or ""), fold(f"{facet}={v}"))
                           for facet, values in g.gold.items() for v in values}
    validation_only = seen["validation"] - seen["train"]
    assert validation_only, "the check needs validation-only values to exist"
    for vocabs, expect_leak in ((resolve_vocabularies("wdc-pave-train"), False), (resolve_vocabularies("wdc-pave"), True)):
        forms = {(fold(v.category or ""), fold(f"{f.name}={form}"))
                 for v in vocabs for f in v.facets if not f.extractive for form in f.surface_forms}
        assert bool(forms & validation_only) == expect_leak
