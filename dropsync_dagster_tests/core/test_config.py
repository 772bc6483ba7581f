"""sync.yml loading: the seed README's files load unchanged; every bad file is one line with file:line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dropsync_dagster.core.syncyml.schema import load_config
from dropsync_dagster.core.syncyml.reader import ALIAS_BUDGET, CONFIG_LIMIT, MAX_NODES
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster_tests.support.drops import SEED_MINIMAL, SEED_REGEX, SEED_TEMPLATE, make_drop, seed_config

SEED_FILE = "scRNA/btki/2026-11-20/SEQ_ABCDE/ABC_DEFGHI_S1_L001_R1_001.fastq.gz"
SEED_GROUPS = {"phase": "btki", "seq": "SEQ_ABCDE", "prefix": "ABC_DEFGHI_S1_L001", "lib": "ABC_DEFGHI", "suffix": "R1_001"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sync.yml"
    path.write_text(text)
    return path


def config_error(path: Path) -> str:
    """Load `path`, expecting a ConfigError; return its one-line message."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


def seed_text(**overrides: object) -> str:
    """The spec's complete example as YAML text, one key per line so line numbers are predictable."""
    import yaml

    return yaml.safe_dump(seed_config("/data/repository", "/data/processed", **overrides), sort_keys=False)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_seed_minimal_config_loads_unchanged(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_MINIMAL))
    assert config.regex.match(SEED_FILE).groupdict() == SEED_GROUPS
    assert config.fields == {}
    assert config.file_list_field() == "Path_To_Synced_Data"
    assert config.labkey is not None and config.labkey.container == "LOOP Intercept"
    assert config.labkey.schema_name == "exp" and config.labkey.use_ssl is True


def test_seed_template_excerpt_loads_unchanged(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SEED_TEMPLATE))
    assert config.regex.match(SEED_FILE).groupdict() == SEED_GROUPS
    assert config.drop_filename_regex == SEED_REGEX.replace("\\/", "/")  # YAML's `\/` is `/`
    assert config.lookups == {"phase": {"btki": "BTKi"}}
    assert config.aggregator_field() == "Uploaded_Filename_Prefix"
    assert config.fields["Data_synced"] is True and config.fields["Path_To_Synced_Data"] is None
    assert config.repository_folder == "data/repository"


def test_spec_complete_example_loads(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    config = load_config(drop.config_path)
    assert config.filename_sequence == "run"
    assert config.date_format == "%Y-%m-%d %H:%M:%S"
    assert config.archive.enabled is True and config.writeback.skip_creates is False


def test_every_spec_key_loads(tmp_path: Path) -> None:
    text = seed_text(
        processed_rebase_from="..",
        date_format="%d.%m.%Y",
        presence_check={"field": "Name", "match": "equal"},
        writeback={"skip_creates": True},
        lookups={"run_no": {1: "one"}},
        metadata_sources=[
            {"name": "lk", "type": "labkey", "schema": "exp", "table": "data", "columns": ["Name"],
             "filters": [{"field": "X", "type": "contains", "value": "/raw/"}]},
            {"name": "sheet", "type": "excel", "path": "manifests/samples.xlsx", "sheet": "Sheet1"},
            {"name": "barcodes", "type": "csv", "path": "manifests/barcodes.csv", "delimiter": ";"},
        ],
        metadata_match={"key_template": "<prefix>", "search": [
            {"source": "lk", "field": "Uploaded_Filename_Prefix"},
            {"source": "sheet", "field": "Prefix", "key_template": "<lib>_<seq>"},
        ]},
        metadata_required=True,
        metadata_derive=[{"source": "lk", "field": "Name", "regex": r"^(?P<patient_id>MTR-[A-Z]-\d{3})_(?P<visit>V\d{2})"}],
        replacements={
            "before_match": [{"target": "var", "name": "phase", "replace": "-", "with": "."}],
            "before_writeback": [{"target": "field", "name": "Name", "replace": "-", "with": "_"}],
        },
        archive={"enabled": False, "tar_exclusions": ["*.tmp"]},
        repository_filename="<lk.Name>/<patient_id>/<visit>_r<run>.fastq.gz",
    )
    config = load_config(write(tmp_path, text))
    assert config.lookups == {"run_no": {"1": "one"}}  # YAML int keys compare as captured text
    assert config.replacements.before_match[0].with_ == "."
    assert config.metadata_sources[2].delimiter == ";"
    assert config.presence_check is not None and config.presence_check.match == "equal"
    assert config.archive.tar_exclusions == ["*.tmp"]


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = "drop_filename_filter: '**/*.fastq.gz'\nrepository_folder: /data\nfields: {Name: <lib>\n"
    message = config_error(write(tmp_path, text))
    assert re.match(rf"{re.escape(str(tmp_path))}/sync\.yml:\d+: YAML syntax error", message)


def test_yaml_syntax_error_line_is_the_bad_line(tmp_path: Path) -> None:
    text = "drop_filename_filter: '*'\nrepository_folder: /data\n  processed_folder: /p\nx: y\n"
    message = config_error(write(tmp_path, text))
    assert message.startswith(f"{tmp_path}/sync.yml:3: YAML syntax error")


def test_not_a_mapping(tmp_path: Path) -> None:
    assert ":1: expected a mapping" in config_error(write(tmp_path, "- a\n- b\n"))


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    text = seed_text().replace("repository_folder:", "reposity_folder:")
    message = config_error(write(tmp_path, text))
    line = line_of(text, "reposity_folder")
    assert message == f"{tmp_path}/sync.yml:{line}: reposity_folder: unknown key (did you mean 'repository_folder'?)"


def test_unknown_nested_key_suggests_the_closest(tmp_path: Path) -> None:
    text = seed_text().replace("  host:", "  hots:")
    message = config_error(write(tmp_path, text))
    assert message == f"{tmp_path}/sync.yml:{line_of(text, 'hots:')}: labkey.hots: unknown key (did you mean 'host'?)"


def test_unknown_key_in_a_list_item(tmp_path: Path) -> None:
    text = seed_text(replacements={"before_match": [{"target": "var", "name": "phase", "replace": "-", "wiht": "."}]})
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'wiht')}: replacements.before_match[0].wiht: unknown key (did you mean 'with'?)" in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(processed_folder=None)))
    assert message.endswith("processed_folder: required key is missing")


def test_wrong_value_names_key_and_line(tmp_path: Path) -> None:
    text = seed_text(filename_sequence="sequential")
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'filename_sequence')}: filename_sequence:" in message


def test_bad_regex_names_key_and_line(tmp_path: Path) -> None:
    text = seed_text(drop_filename_regex="(?P<phase>[a-z]+")
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'drop_filename_regex')}: drop_filename_regex: invalid regex" in message


def test_bad_derive_regex(tmp_path: Path) -> None:
    text = seed_text(
        metadata_sources=[{"name": "lk", "type": "labkey", "schema": "exp", "table": "data"}],
        metadata_derive=[{"source": "lk", "field": "Name", "regex": "(?P<x"}],
    )
    assert "metadata_derive[0].regex: invalid regex" in config_error(write(tmp_path, text))


def test_unknown_placeholder_in_repository_filename(tmp_path: Path) -> None:
    text = seed_text(repository_filename="scRNA/<phase>/<libary>_r<run>.fastq.gz")
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'repository_filename')}: repository_filename: placeholder <libary> has no provider" in message


def test_unknown_placeholder_in_fields(tmp_path: Path) -> None:
    config = seed_config("/r", "/p")
    text = seed_text(fields={**config["fields"], "Name": "<lib>_<sequence>"})
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'Name:')}: fields.Name: placeholder <sequence> has no provider" in message


def test_field_only_builtins_are_refused_in_paths(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(repository_filename="<target_path>_r<run>")))
    assert "placeholder <target_path> has no provider" in message


def test_placeholder_of_an_unknown_source(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(repository_filename="<lk.Name>_r<run>.fastq.gz")))
    assert "placeholder <lk.Name> names no metadata source" in message


def test_run_placeholder_needs_run_sequence(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(filename_sequence=None, fields=None)))
    assert "placeholder <run> needs 'filename_sequence: run'" in message


def test_hash_placeholder_needs_hash_sequence(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(repository_filename="<lib>_<hash>.fastq.gz", fields=None)))
    assert "placeholder <hash> needs 'filename_sequence: hash'" in message


def test_fields_need_a_labkey_section(tmp_path: Path) -> None:
    assert "fields: fields and presence checks need a 'labkey' section" in config_error(
        write(tmp_path, seed_text(labkey=None))
    )


def test_schema_with_dots_is_refused(tmp_path: Path) -> None:
    text = seed_text(labkey={"host": "h", "container": "c", "schema": "exp.data", "table": "t"})
    assert "labkey.schema: Value error, schema name only, no dots" in config_error(write(tmp_path, text))


def test_match_rule_naming_an_unknown_source(tmp_path: Path) -> None:
    text = seed_text(metadata_match={"key_template": "<prefix>", "search": [{"source": "nope", "field": "F"}]})
    assert "unknown metadata source 'nope'" in config_error(write(tmp_path, text))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing" / "sync.yml")


@pytest.mark.parametrize("lookups", ["{phase: [btki]}", "{phase: {btki: }}", "[phase]"])
def test_malformed_lookups_are_one_line_errors(tmp_path: Path, lookups: str) -> None:
    text = seed_text() + f"lookups: {lookups}\n"
    message = config_error(write(tmp_path, text))
    assert f":{line_of(text, 'lookups')}: lookups" in message


# --- hostile sync.yml files (issue 10 item 5): bounded, never a hang, a crash or a silent pick ---


@pytest.mark.timeout(30)
def test_a_fifo_sync_yml_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "sync.yml"
    os.mkfifo(path)
    assert "is a FIFO; a regular file is required" in config_error(path)


def test_a_symlinked_sync_yml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.yml").write_text(seed_text())
    (tmp_path / "sync.yml").symlink_to(tmp_path / "elsewhere.yml")
    assert "is a symbolic link; a regular file is required" in config_error(tmp_path / "sync.yml")


def test_an_oversized_sync_yml_is_refused_by_its_size(tmp_path: Path) -> None:
    path = write(tmp_path, seed_text() + "#" * (CONFIG_LIMIT + 1))
    assert f"more than the limit of {CONFIG_LIMIT} bytes" in config_error(path)


@pytest.mark.timeout(30)
def test_a_megabyte_of_tiny_nodes_is_refused_before_it_is_built(tmp_path: Path) -> None:
    text = seed_text() + "archive: {tar_exclusions: [" + ",".join(["x"] * (MAX_NODES + 1)) + "]}\n"
    assert f"more than {MAX_NODES} YAML nodes" in config_error(write(tmp_path, text))


@pytest.mark.timeout(30)
def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))
    message = config_error(write(tmp_path, seed_text() + bomb))
    assert f"YAML aliases expand to more than {ALIAS_BUDGET} nodes" in message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", ["x: &x [*x]\n", "x: &x {y: *x}\n"])
def test_a_recursive_alias_is_refused(tmp_path: Path, text: str) -> None:
    message = config_error(write(tmp_path, seed_text() + text))
    assert "recursive alias" in message and message.startswith(f"{tmp_path}/sync.yml:{line_of(seed_text() + text, 'x: &x')}:")


def test_small_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    text = seed_text(labkey=None, fields=None, field_parameters=None) + (
        "metadata_sources: [{name: s, type: csv, path: s.csv}]\n"
        "metadata_match:\n  key_template: &key <prefix>\n  search:\n"
        "    - &rule {source: s, field: Prefix}\n    - {<<: *rule, field: Other, key_template: *key}\n")
    config = load_config(write(tmp_path, text))
    assert config.metadata_match is not None
    assert [(r.source, r.field, r.key_template) for r in config.metadata_match.search] == [
        ("s", "Prefix", None), ("s", "Other", "<prefix>")]  # a merged key overridden is no duplicate


@pytest.mark.parametrize("duplicate", ["repository_folder", "  host"])
def test_a_duplicate_key_names_both_lines(tmp_path: Path, duplicate: str) -> None:
    text = seed_text()
    first = line_of(text, f"{duplicate}:")
    copied = next(line for line in text.splitlines() if line.startswith(f"{duplicate}:"))
    lines = text.splitlines()
    lines.insert(first, copied)  # right after the first one
    message = config_error(write(tmp_path, "\n".join(lines) + "\n"))
    assert message.startswith(f"{tmp_path}/sync.yml:{first + 1}: ")
    assert f"{duplicate.strip()}: duplicate key (first on line {first})" in message


def test_a_duplicate_key_in_a_flow_mapping(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text() + "writeback: {skip_creates: true, skip_creates: false}\n"))
    assert "writeback.skip_creates: duplicate key" in message


@pytest.mark.parametrize("group", ["run", "hash", "today"])
def test_a_regex_group_named_like_a_builtin_is_refused(tmp_path: Path, group: str) -> None:
    text = seed_text(drop_filename_regex=rf"(?P<{group}>[^/]+)/(?P<phase>[^/]+)/.*(?P<seq>SEQ_[A-Z]{{5}})"
                                         r".*(?P<prefix>(?P<lib>[A-Z]{3}_[A-Z]{6})_S1_L001)_(?P<suffix>[^.]+)")
    message = config_error(write(tmp_path, text))
    assert f"drop_filename_regex: group name <{group}> is a built-in placeholder" in message


def test_a_derive_group_named_like_a_builtin_is_refused(tmp_path: Path) -> None:
    text = seed_text(metadata_sources=[{"name": "s", "type": "csv", "path": "s.csv"}],
                     metadata_derive=[{"source": "s", "field": "Name", "regex": "(?P<today>.*)"}])
    assert "metadata_derive[0].regex: group name <today>" in config_error(write(tmp_path, text))


def test_a_regex_too_large_to_compile_is_refused(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, seed_text(drop_filename_regex=SEED_REGEX + "(a{4294967294})?")))
    assert "drop_filename_regex: regex too large" in message


def test_named_groups_and_re_syntax_keep_working(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, seed_text(drop_filename_regex=r"(?P<phase>\w+)/(?=x)(?P<rest>.+?)(?:\.gz)?$",
                                                   repository_filename="<phase>/<rest>_r<run>", labkey=None,
                                                   fields=None, field_parameters=None)))
    assert config.regex.match("scRNA/x.fastq.gz").groupdict() == {"phase": "scRNA", "rest": "x.fastq"}


@pytest.mark.parametrize("key", ["repository_folder", "processed_folder", "repository_filename"])
def test_a_nul_byte_in_a_folder_or_template_is_refused(tmp_path: Path, key: str) -> None:
    lines = [f'{key}: "/data/x\\0y"' if line.startswith(f"{key}:") else line for line in seed_text().splitlines()]
    text = "\n".join(lines) + "\n"  # YAML's "\0" is a NUL byte
    assert f"{key}: a NUL byte is not allowed" in config_error(write(tmp_path, text))


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_a_csv_delimiter_must_be_one_character(tmp_path: Path, delimiter: str) -> None:
    text = seed_text(metadata_sources=[{"name": "s", "type": "csv", "path": "s.csv", "delimiter": delimiter}])
    assert "delimiter: Value error, a delimiter is one character" in config_error(write(tmp_path, text))


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_a_sync_yml_that_is_a_folder_or_a_device_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "sync.yml"
    if kind == "folder":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    assert f"is a {'folder' if kind == 'folder' else 'character device'}; a regular file is required" in config_error(path)


def test_a_nul_byte_in_a_lookup_value_is_data_not_a_configuration_error(tmp_path: Path) -> None:
    text = seed_text() + 'lookups:\n  phase:\n    evil: "x\\0y"\n'
    assert load_config(write(tmp_path, text)).lookups["phase"]["evil"] == "x\0y"  # it holds its file only
