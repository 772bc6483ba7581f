"""Templates: placeholders, literal insertion, replacements and lookups."""

from __future__ import annotations

import pytest

from dropsync_dagster.core.syncyml.schema import Replacement
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.plan.templating import Placeholder, apply_lookups, apply_replacements, placeholders, render


def rule(target: str, name: str, replace: str, with_: str) -> Replacement:
    return Replacement.model_validate({"target": target, "name": name, "replace": replace, "with": with_})


def test_placeholders_in_order() -> None:
    assert placeholders("<lib>/<lk.Path To Data>_r<run> <not a placeholder> a<b") == [
        Placeholder("lib", "lib", None, None),
        Placeholder("lk.Path To Data", "lk", "lk", "Path To Data"),
        Placeholder("run", "run", None, None),
    ]


def test_render_seed_example() -> None:
    variables = {"phase": "btki", "lib": "ABC_DEFGHI", "seq": "SEQ_ABCDE", "run": "1", "suffix": "R1_001"}
    out = render("scRNA/raw/<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz", variables)
    assert out == "scRNA/raw/btki/ABC_DEFGHI/ABC_DEFGHI_SEQ_ABCDE_r1__R1_001.fastq.gz"


@pytest.mark.parametrize("value", ["a\\1b", "\\g<0>", "$1", "${lib}", "a\\\\b", "<lib>"])
def test_values_are_inserted_literally(value: str) -> None:
    assert render("x_<v>_y", {"v": value, "lib": "L"}) == f"x_{value}_y"


def test_metadata_placeholders() -> None:
    rows = {"lk": {"Name": "MTR-A-001_V01", "Path To Data": None}}
    assert render("<lk.Name>/<lk.Path To Data>.", {}, rows) == "MTR-A-001_V01/."


def test_missing_variable_names_template_and_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"template '<a>_<b>': no value for <b>"):
        render("<a>_<b>", {"a": "1"})


def test_missing_source_row_and_field() -> None:
    with pytest.raises(ConfigError, match="no row matched in source 'lk'"):
        render("<lk.Name>", {}, {})
    with pytest.raises(ConfigError, match="source 'lk' has no field 'Nmae' \\(fields: Name\\)"):
        render("<lk.Nmae>", {}, {"lk": {"Name": "x"}})


def test_replacements_apply_in_order_to_their_target_only() -> None:
    rules = [
        rule("var", "phase", "-", "."),
        rule("var", "phase", ".", "_"),  # sees the first rule's output
        rule("field", "phase", "_", "X"),  # aimed at rendered fields, not variables
        rule("var", "absent", "a", "b"),
    ]
    values = {"phase": "bt-ki-2", "lib": "a-b"}
    assert apply_replacements(values, rules, "var") == {"phase": "bt_ki_2", "lib": "a-b"}
    assert values == {"phase": "bt-ki-2", "lib": "a-b"}  # input untouched


def test_replacements_are_plain_substrings() -> None:
    assert apply_replacements({"v": "a.b+c"}, [rule("var", "v", ".b+", "$1\\")], "var") == {"v": "a$1\\c"}


def test_replacements_skip_non_strings() -> None:
    assert apply_replacements({"Data_synced": True}, [rule("field", "Data_synced", "T", "F")], "field") == {
        "Data_synced": True
    }


def test_lookups_translate_known_values_only() -> None:
    lookups = {"phase": {"btki": "BTKi"}, "absent": {"x": "y"}}
    assert apply_lookups({"phase": "btki", "lib": "btki"}, lookups) == {"phase": "BTKi", "lib": "btki"}
    assert apply_lookups({"phase": "other"}, lookups) == {"phase": "other"}
