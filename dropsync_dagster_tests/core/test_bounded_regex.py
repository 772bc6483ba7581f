"""bounded_regex.py: sync.yml patterns (regexes and the filter glob) compile within bounds and
never match for long — a pathological one is a configuration error naming its key."""

from __future__ import annotations

import pytest

from dropsync_dagster.core.syncyml.regex import MAX_EXPANDED, compile_bounded
from dropsync_dagster.core.drops.discovery import candidate_files, glob_regex
from dropsync_dagster.core.errors import ConfigError


def test_re_semantics_are_kept() -> None:
    pattern = compile_bounded(r"(?P<lib>[A-Z]{3})_(?P<n>\d+)(?=\.)", "k")
    assert pattern.match("ABC_12.fastq").groupdict() == {"lib": "ABC", "n": "12"}
    assert pattern.fullmatch("ABC_12") is None and pattern.search("x/ABC_7.gz").group("n") == "7"
    assert set(pattern.groupindex) == {"lib", "n"}


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("method", ["match", "fullmatch", "search"])
def test_catastrophic_backtracking_is_a_configuration_error(method: str) -> None:
    pattern = compile_bounded(r"(a|aa)+$", "drop_filename_regex")
    with pytest.raises(ConfigError, match=r"^drop_filename_regex: matching took longer than 1 s"):
        getattr(pattern, method)("a" * 60 + "b")


@pytest.mark.parametrize("pattern", [r"a{4294967294}", r"((a{100}){100}){100}", r"(?:x{1000}){1000}"])
def test_repetitions_that_would_exhaust_memory_are_refused_before_compiling(pattern: str) -> None:
    with pytest.raises(ConfigError, match=f"^k: regex too large: .* more than {MAX_EXPANDED} items"):
        compile_bounded(pattern, "k")


@pytest.mark.parametrize("pattern", ["(", "[z-a]", "(?P<1x>a)", "(" * 5000 + ")" * 5000, "x{99999999999}"])
def test_invalid_patterns_are_one_line(pattern: str) -> None:
    with pytest.raises(ConfigError, match="^k: invalid regex: "):
        compile_bounded(pattern, "k")


@pytest.mark.timeout(60, method="thread")  # `re` backtracked on this glob for ages, deaf to signals
def test_a_glob_of_repeated_double_stars_cannot_hang() -> None:
    glob = glob_regex("**/" * 16 + "x")
    assert glob.fullmatch("a/" * 40 + "y") is None and glob.fullmatch("a/b/x")


def test_a_glob_with_an_invalid_class_is_a_configuration_error(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"^drop_filename_filter '\[z-a\]\*': invalid regex: bad character range"):
        candidate_files(tmp_path, "[z-a]*")
