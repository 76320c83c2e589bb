import pytest

from tagsmith.errors import TemplateError
from tagsmith.items import Item
from tagsmith.prompts import PromptTemplate, available_templates, load_template


def render(template, vocab, title, description=""):
    return template.render(Item("1", title, description), {"title": title, "description": description}, vocab)


def test_default_template_lists_facets_and_values(template, small_vocab):
    text = render(template, small_vocab, "Chef knife", "8 inch")
    assert "Product title: Chef knife" in text and "8 inch" in text
    assert "Stainless Steel" in text and "Part Number" in text and "copy the exact text" in text


@pytest.mark.parametrize("evil", ["{{ 7*7 }}", "{% for x in range(3) %}boom{% endfor %}",
                                  "{{ ''.__class__.__mro__ }}", "{# comment #}"])
def test_item_text_is_data_not_template_code(template, small_vocab, evil):
    text = render(template, small_vocab, evil)
    assert f"Product title: {evil}" in text
    assert "49" not in text and "boomboom" not in text


def test_undefined_variable_is_an_error(small_vocab):
    t = PromptTemplate("t", "{{ nope }}")
    with pytest.raises(TemplateError, match="'nope' is undefined"):
        render(t, small_vocab, "x")


def test_sandbox_blocks_internals(small_vocab):
    t = PromptTemplate("t", "{{ title.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match="sandbox|unsafe|not allowed|undefined"):
        render(t, small_vocab, "x")


def test_template_by_name_path_and_errors(tmp_path):
    assert "default" in available_templates()
    p = tmp_path / "mine.jinja"
    p.write_text("Title: {{ title }}")
    assert load_template(p).name == "mine"
    with pytest.raises(TemplateError, match="no template 'missing'.*default"):
        load_template("missing")
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% if %}")
    with pytest.raises(TemplateError, match="line 1"):
        load_template(bad)


def test_digest_changes_with_text():
    assert PromptTemplate("a", "x").digest != PromptTemplate("a", "y").digest


@pytest.mark.parametrize("name", ["default", "all-values"])
def test_one_line_per_facet(small_vocab, name):
    text = render(load_template(name), small_vocab, "knife")
    lines = [x for x in text.splitlines() if x.startswith("- ")]
    assert [x.split(":")[0].split(" (")[0] for x in lines] == ["- Color", "- Material", "- Part Number", "- Category"]


def test_default_lists_a_sample_of_long_value_lists():
    from tagsmith.vocabulary import parse_vocabulary

    v = parse_vocabulary({"name": "x", "facets": [{"name": "N", "values": [str(i) for i in range(30)]}]})
    text = render(load_template("default"), v, "x")
    assert "| 11 | ... (30 values in all)" in text and "| 12 |" not in text
    assert "| 29" in render(load_template("all-values"), v, "x")
