import json

from tagsmith.parsing import Reason, parse_answer


def parse(vocab, answer, text="Chef knife AB-12 in stainless steel"):
    return parse_answer(answer if isinstance(answer, str) else json.dumps(answer), vocab, text)


def test_aliases_become_canonical_and_duplicates_go(small_vocab):
    r = parse(small_vocab, {"Color": ["inox", "Stainless Steel", "stainless"], "Material": []})
    assert r.tags == {"Color": ["Stainless Steel"]} and r.duplicates == 2
    assert r.rejected == [] and r.error is None


def test_out_of_vocabulary_is_rejected_not_kept(small_vocab):
    r = parse(small_vocab, {"Color": ["FREE"], "Material": ["Wood"]})
    assert r.tags == {"Material": ["Wood"]}
    assert [(x.facet, x.value, x.reason) for x in r.rejected] == [("Color", "FREE", "not in the vocabulary")]


def test_too_many_values(small_vocab):
    r = parse(small_vocab, {"Material": ["Wood", "Steel"]})
    assert r.tags == {"Material": ["Wood"]}
    assert r.rejected[0].reason is Reason.TOO_MANY and r.rejected[0].to_dict()["reason"] == "too many values (at most 1)"


def test_extractive_span_must_come_from_text(small_vocab):
    r = parse(small_vocab, {"Part Number": ["ab-12"]})
    assert r.tags == {"Part Number": ["AB-12"]}  # as the item writes it
    r = parse(small_vocab, {"Part Number": ["ZZ-99"]})
    assert r.tags == {} and r.rejected[0].reason == "not found in the item text"


def test_unknown_facet_and_non_strings(small_vocab):
    r = parse(small_vocab, {"Colour": ["Red"], "Color": [3, None, "n/a", ""]})
    assert r.tags == {}
    assert {(x.facet, x.reason) for x in r.rejected} == {("Colour", "unknown facet"), ("Color", "not a string")}


def test_single_string_instead_of_list_is_accepted(small_vocab):
    assert parse(small_vocab, {"Material": "wood"}).tags == {"Material": ["Wood"]}


def test_unparseable(small_vocab):
    assert parse(small_vocab, '{"Color": ["Re').error.startswith("unparseable output")
    assert parse(small_vocab, "[]").error == "output is not a JSON object"


def test_no_value_words_are_kept_when_the_vocabulary_lists_them():
    from tagsmith.vocabulary import parse_vocabulary

    v = parse_vocabulary({"name": "x", "facets": [{"name": "Stones", "values": ["None", "Diamond"]}]})
    assert parse(v, {"Stones": ["none"]}).tags == {"Stones": ["None"]}


def test_normalized_extractive_facet_keeps_the_copied_span_normalized():
    from tagsmith.answers import target_answer
    from tagsmith.gold import canonical_gold
    from tagsmith.vocabulary import VocabularySet, parse_vocabulary

    vocab = parse_vocabulary({"name": "pc", "facets": [
        {"name": "Part Number", "extractive": True, "normalize": ["alnum", "upper"]}]})
    text = "HP 461137-b21 hard drive"
    # the model copies the text's form, or writes the normalized one: both become the stored form
    for answer in ("461137-b21", "461137B21", "461137 B21"):
        r = parse_answer(json.dumps({"Part Number": [answer]}), vocab, text)
        assert r.tags == {"Part Number": ["461137B21"]}, answer
    assert parse_answer('{"Part Number": ["999"]}', vocab, text).rejected[0].reason is Reason.NOT_IN_TEXT
    # training shows the model the text's own span for a normalized gold value
    assert target_answer(vocab, {"Part Number": ["461137B21"]}, text) == '{"Part Number":["461137-b21"]}'
    assert canonical_gold({"Part Number": ["461137-b21"]}, VocabularySet([vocab]), None) == {"Part Number": ["461137B21"]}


def test_normalize_is_only_for_extractive_facets():
    import pytest

    from tagsmith.errors import VocabularyError
    from tagsmith.vocabulary import parse_vocabulary

    with pytest.raises(VocabularyError, match="'normalize' applies to extractive facets"):
        parse_vocabulary({"name": "x", "facets": [{"name": "C", "values": ["a"], "normalize": ["upper"]}]})
