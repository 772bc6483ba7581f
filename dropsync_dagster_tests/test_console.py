"""console.py: names and messages never inject rich markup or terminal control sequences."""

from __future__ import annotations

import io

import pytest
from dropsync_dagster.cli import console as console_module
from dropsync_dagster.cli.console import print_table, shown


@pytest.mark.parametrize(("raw", "expected"), [
    ("plain name_R1.fastq.gz", "plain name_R1.fastq.gz"),
    ("red\x1b[31mX\x1b[0m", "red\\x1b[31mX\\x1b[0m"),
    ("two\nlines\r", "two\\x0alines\\x0d"),
    ("nul\x00 del\x7f c1\x9b", "nul\\x00 del\\x7f c1\\x9b"),
    ("bidi\u202eevil", "bidi\\u202eevil"),
    ("latin1-\udce9.fastq", "latin1-\\xe9.fastq"),  # os.fsdecode of the byte 0xe9
    ("[bold]x[/] :warning: é ✓", "[bold]x[/] :warning: é ✓"),
])
def test_shown_makes_control_characters_visible(raw: str, expected: str) -> None:
    assert shown(raw) == expected
    shown(raw).encode("utf-8")  # printable on any UTF-8 terminal, undecodable bytes included


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The module's console, of the same class, writing into a buffer."""
    buffer = io.StringIO()
    monkeypatch.setattr(console_module, "console", type(console_module.console)(file=buffer, width=300))
    return buffer


@pytest.mark.parametrize("name", ["[/]", "[bold]x[/]", "[link=http://evil.example]click[/link]", "x:warning:y"])
def test_rich_markup_in_a_file_name_is_printed_literally(captured: io.StringIO, name: str) -> None:
    print_table(f"Plan: {name}", [{"file": name, "reason": ""}], "reason")
    out = captured.getvalue()
    assert out.count(name) == 2  # title and cell, exactly as given
    assert "\x1b" not in out


def test_escape_sequences_in_a_file_name_never_reach_the_terminal(captured: io.StringIO) -> None:
    print_table("Plan", [{"file": "a\x1b]0;pwned\x07b\x1b[2J", "reason": "unsafe_path"}], "reason")
    out = captured.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert "a\\x1b]0;pwned\\x07b\\x1b[2J" in out


def test_plain_messages_are_shown_too(captured: io.StringIO) -> None:
    """A caller printing a message with a name in it cannot forget to escape it."""
    console_module.console.print("reaped run of /drops/[bold]x[/]\x1b[2J")
    assert captured.getvalue() == "reaped run of /drops/[bold]x[/]\\x1b[2J\n"
