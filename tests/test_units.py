import pytest

from tagsmith.units import CONVERSIONS, MEASURES, UNITS, factor, load_table, spellings_pattern, unit_of


@pytest.mark.parametrize("spelling,symbol", [
    ("inches", "in"), ('"', "in"), ("In.", "in"), ("'", "ft"), ("feet", "ft"), ("LBS", "lb"), ("kilos", "kg"),
    ("fl. oz", "fl oz"), ("ounces", "oz"), ("gallons", "gal"), ("Gigabytes", "gb"), ("watts", "w"),
    ("inch es", None), ("x", None), ("grammar", None),
])
def test_unit_of_reads_every_spelling_of_the_table(spelling, symbol):
    assert unit_of(spelling) == symbol


def test_factors_convert_within_a_kind_and_oz_through_its_fluid_twin():
    assert factor("in", "cm") == pytest.approx(2.54)
    assert factor("lb", "kg") == pytest.approx(0.45359237)
    assert factor("oz", "ml") == pytest.approx(29.5735295625)  # a text's "oz" of a drink
    assert factor("in", "kg") is None and factor("gb", "mb") is None
    assert ("in", "cm", pytest.approx(2.54)) in CONVERSIONS
    assert all(MEASURES[unit].measures for unit, _, _ in CONVERSIONS)
    assert "gb" in UNITS and "gb" not in MEASURES  # folded in loose keys, never converted


def test_spellings_pattern_puts_longer_spellings_first_and_splits_marks_from_words():
    words = spellings_pattern(["oz", "fl oz"], marks=False).split("|")
    assert words.index(r"fl\.? ?oz\.?") < words.index(r"oz\.?")
    assert set(spellings_pattern(["in"], words=False).split("|")) == {'"', "''", "\u201d"}


@pytest.mark.parametrize("table,message", [
    ('[cm]\nmeasures = "length"\nspellings = ["cm"]\n', "needs both"),
    ('[cm]\nmeasures = "length"\nsize = 1.0\nspellings = ["cm"]\n[in]\nmeasures = "length"\nsize = 2.54\n'
     'spellings = ["in"]\nconverts_to = ["kg"]\n', "cannot convert to 'kg'"),
])
def test_a_table_with_a_unit_that_cannot_be_used_is_refused(tmp_path, table, message):
    path = tmp_path / "units.toml"
    path.write_text(table, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_table(path)
