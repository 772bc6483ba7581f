"""The `sync.yml` regexes, bounded: compiling cannot exhaust memory, matching cannot hang.

Patterns keep Python `re` syntax and semantics (they are checked by `re` first), and are run by
the `regex` package, whose matching takes a timeout: a pattern that backtracks catastrophically
on a file name or metadata value is a configuration error naming its key, not a hung run.
`regex` expands counted repetitions when compiling (`a{4294967294}` would exhaust memory), so
patterns whose expansion exceeds MAX_EXPANDED are refused before they reach it.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre_constants  # the parse tree of `re`; stable across 3.11+
import re._parser as sre_parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import regex

from dropsync_dagster.core.errors import ConfigError

MATCH_TIMEOUT = 1.0  # seconds per match; a sane pattern on a file name takes microseconds
MAX_EXPANDED = 100_000  # pattern items once counted repetitions are expanded
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


class BoundedPattern:
    """A compiled sync.yml pattern whose every match takes at most MATCH_TIMEOUT; a timeout is a
    ConfigError naming `key` (the pattern is at fault, whatever the text)."""

    def __init__(self, pattern: regex.Pattern[str], key: str) -> None:
        self.pattern = pattern
        self.key = key

    @property
    def groupindex(self) -> Mapping[str, int]:
        """Named groups -> group numbers, as `re.Pattern.groupindex`."""
        return self.pattern.groupindex

    def match(self, text: str) -> Any:
        """`re.match` semantics: anchored at the start."""
        return self._bounded(self.pattern.match, text)

    def fullmatch(self, text: str) -> Any:
        """`re.fullmatch` semantics: the whole text."""
        return self._bounded(self.pattern.fullmatch, text)

    def search(self, text: str) -> Any:
        """`re.search` semantics: anywhere in the text."""
        return self._bounded(self.pattern.search, text)

    def _bounded(self, method: Callable[..., Any], text: str) -> Any:
        try:
            return method(text, timeout=MATCH_TIMEOUT)
        except TimeoutError:
            raise ConfigError(f"{self.key}: matching took longer than {MATCH_TIMEOUT:g} s (catastrophic "
                              "backtracking, e.g. a nested repetition like (a+)+); simplify the pattern") from None


@functools.lru_cache(maxsize=64)  # planning asks again for every file
def compile_bounded(pattern: str, key: str) -> BoundedPattern:
    """Compile a sync.yml regex, or raise ConfigError("<key>: ...") for a bad or oversized one."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise ConfigError(f"{key}: invalid regex: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{key}: invalid regex: nested too deeply") from None
    except OverflowError:  # a repetition count past the engine's limit, e.g. x{99999999999}
        raise ConfigError(f"{key}: invalid regex: a repetition count is too large") from None
    if _expanded(parsed) > MAX_EXPANDED:
        raise ConfigError(f"{key}: regex too large: its counted repetitions expand to more than "
                          f"{MAX_EXPANDED} items")
    try:
        return BoundedPattern(regex.compile(pattern, regex.VERSION0), key)
    except regex.error as exc:
        raise ConfigError(f"{key}: invalid regex: {exc}") from None


def _expanded(parsed: Any) -> int:
    """Items of a parsed pattern once counted repetitions are expanded (stops past the limit)."""
    total = 0
    for op, av in parsed:
        if op in _REPEATS:
            low, high, inner = av
            count = high if high != sre_constants.MAXREPEAT else max(low, 1)
            total += _expanded(inner) * max(count, 1)
        else:
            total += 1 + sum(_expanded(sub) for sub in _subpatterns(av))
        if total > MAX_EXPANDED:
            return total
    return total


def _subpatterns(av: Any) -> Iterator[Any]:
    """The nested sub-patterns of one parse-tree argument (groups, branches, assertions)."""
    if isinstance(av, sre_parse.SubPattern):
        yield av
    elif isinstance(av, (list, tuple)):
        for item in av:
            yield from _subpatterns(item)
