import pytest
from pydantic import ValidationError

from tagsmith.items import Item
from tagsmith.measures import Target, annotate, measurements, parse_number, targets, value_decimals
from tagsmith.prompts import load_template
from tagsmith.vocabulary import Facet, Value, Vocabulary

CM = {"length": Target("cm", 1)}


@pytest.mark.parametrize("text,value", [("13-1/2", 13.5), ("13 1/2", 13.5), ("1/2", 0.5), ("1,200.5", 1200.5),
                                        ("8.9", 8.9)])
def test_numbers_with_fractions_and_thousands(text, value):
    assert parse_number(text) == value


def test_measurements_find_units_chains_and_sides():
    found = measurements('Desk 47-1/4" W x 30 in H, 36 x 18 x 30 in. top, 610mm rail, 4 ft. cord')
    assert [(m.value, m.unit) for m in found] == [(47.25, "in"), (30, "in"), (36, "in"), (18, "in"), (30, "in"),
                                                  (610, "mm"), (4, "ft")]


@pytest.mark.parametrize("text", ["Men's 80's style", "2 in 1 charger", "HP-24 in stock", "model X200", "8 1/2 x 11 paper",
                                  "1,000 sheets"])
def test_words_that_only_look_like_units_are_not_measurements(text):
    assert measurements(text) == []


def test_annotate_shows_each_measurement_in_the_stored_unit():
    assert annotate('Table 24"W x 36"D, 3-7/8" dia.', CM) == 'Table 24"W (61.0 cm) x 36"D (91.4 cm), 3-7/8" (9.8 cm) dia.'
    # a kind of measure no facet stores is left alone, and so is a measurement already in the unit
    assert annotate("16 oz bag, 20 cm plate", CM) == "16 oz bag, 20 cm plate"
    assert annotate("16 oz bag", {"mass": Target("g", 0)}) == "16 oz (454 g) bag"
    assert annotate("24 in", {}) == "24 in"


def facet(name, values, unit=None):
    return Facet(name=name, values=tuple(Value(value=v) for v in values), unit=unit)


def test_a_facet_unit_sets_the_vocabularys_targets():
    vocab = Vocabulary(name="t", facets=(facet("Color", ["Red"]), facet("Width", ["61.0", "91.4", "120"], "cm"),
                                         facet("Weight", ["454", "907"], "g")))
    assert targets(vocab) == {"length": Target("cm", 1), "mass": Target("g", 0)}
    assert value_decimals(["1.25", "2.50", "3"]) == 2 and value_decimals(["Red"]) == 1
    with pytest.raises(ValidationError, match="unknown unit 'furlong'"):
        facet("Width", ["1"], "furlong")


def test_templates_show_converted_measurements_only_for_facets_with_a_unit():
    title = 'Work table 48" wide'
    plain = Vocabulary(name="p", facets=(facet("Width", ["121.9", "61.0"]),))
    with_unit = Vocabulary(name="u", facets=(facet("Width", ["121.9", "61.0"], "cm"),))
    for name in ("compact", "default", "described"):
        template = load_template(name)
        assert 'Work table 48" (121.9 cm) wide' in template.render(Item("1", title, ""), {"title": title, "description": ""},
                                                                  with_unit)
        assert "(121.9 cm)" not in template.render(Item("1", title, ""), {"title": title, "description": ""}, plain)
