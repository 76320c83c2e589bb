import json

import jsonschema
import pytest

from tagsmith.schema import build_schema, max_answer_tokens, schema_text


def test_schema_shape(small_vocab):
    schema = build_schema(small_vocab)
    assert list(schema["properties"]) == ["Color", "Material", "Part Number", "Category"]
    assert schema["required"] == list(schema["properties"])
    assert schema["additionalProperties"] is False
    color = schema["properties"]["Color"]
    assert color["type"] == "array" and color["maxItems"] == 2
    assert set(color["items"]["enum"]) == {"Black", "Red", "Stainless Steel", "inox", "stainless"}
    assert schema["properties"]["Material"]["maxItems"] == 1
    assert schema["properties"]["Part Number"]["items"]["type"] == "string"
    assert "Kitchen > Cookware" in schema["properties"]["Category"]["items"]["enum"]


@pytest.mark.parametrize("answer,ok", [
    ({"Color": ["Red"], "Material": [], "Part Number": ["AB-1"], "Category": ["Kitchen"]}, True),
    ({"Color": ["Blue"], "Material": [], "Part Number": [], "Category": []}, False),
    ({"Color": [], "Material": ["Steel", "Wood"], "Part Number": [], "Category": []}, False),
    ({"Color": [], "Material": [], "Part Number": [], "Category": [], "Extra": []}, False),
    ({"Color": [], "Material": []}, False),
    ({"Color": [], "Material": [], "Part Number": ['a"b'], "Category": []}, False),
    ({"Color": [], "Material": [], "Part Number": ["x" * 64], "Category": []}, True),
    ({"Color": [], "Material": [], "Part Number": ["x" * 65], "Category": []}, False),
    ({"Color": [], "Material": [], "Part Number": [""], "Category": []}, False),
])
def test_schema_accepts_only_vocabulary_answers(small_vocab, answer, ok):
    validator = jsonschema.Draft202012Validator(build_schema(small_vocab))
    assert validator.is_valid(answer) is ok


def test_schema_text_is_deterministic_and_ordered(small_vocab):
    text = schema_text(build_schema(small_vocab))
    assert text == schema_text(build_schema(small_vocab))
    assert text.index('"Color"') < text.index('"Material"')
    json.loads(text)


def test_token_budget_covers_longest_answer(small_vocab):
    longest = {"Color": ["Stainless Steel", "stainless"], "Material": ["Plastic"],
               "Part Number": ["x" * 64], "Category": ["Kitchen > Cookware > Pans"]}
    assert max_answer_tokens(small_vocab) >= len(json.dumps(longest).encode())


def test_schema_has_only_features_every_vllm_backend_takes(small_vocab):
    """vLLM refuses xgrammar for a string with both a pattern and length bounds, so a span's
    length bound lives in its pattern: the same schema runs on guidance, xgrammar and outlines."""
    backend = pytest.importorskip("vllm.v1.structured_output.backend_xgrammar")
    for shape in ("full", "filled"):
        assert not backend.has_xgrammar_unsupported_json_features(build_schema(small_vocab, shape))
