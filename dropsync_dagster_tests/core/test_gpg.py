"""The gpg binary checks, recipient lookup and key wrapping, against the real gpg."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropsync_dagster.core.errors import ConfigError, IntegrityError
from dropsync_dagster.core.archive.gpg import (
    check_gpg,
    find_gpg,
    passphrase_fd,
    recipient_fingerprints,
    unwrap_key,
    wrap_key,
)
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys, gpg_cmd


def test_installed_gpg_is_new_enough():
    major, minor = (int(x) for x in check_gpg().split(".")[:2])
    assert (major, minor) >= (2, 1)


def test_gpg_missing_from_path_is_one_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="gpg not found on PATH"):
        check_gpg()


def test_gpg_older_than_2_1_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # An old GnuPG 2.0 is not installable here: a program answering --version as 2.0 does is.
    old = tmp_path / "gpg"
    old.write_text("#!/bin/sh\necho 'gpg (GnuPG) 2.0.22'\necho 'libgcrypt 1.5.3'\n")
    old.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"is 2\.0\.22: GnuPG >= 2\.1 is required"):
        check_gpg()


def test_recipients_resolve_to_fingerprints_in_order_without_duplicates(gpg_keys: GpgKeys):
    alice, bob = gpg_keys.recipients
    by_fpr = gpg_keys.fingerprints[bob]
    found = recipient_fingerprints([bob, alice, by_fpr], gpg_keys.home)
    assert found == [gpg_keys.fingerprints[bob], gpg_keys.fingerprints[alice]]


@pytest.mark.parametrize(
    ("recipients", "message"),
    [
        (["nobody@dropsync.test"], "no usable encryption key for 'nobody@dropsync.test'"),
        (["dropsync.test"], "'dropsync.test' matches 2 keys; use a fingerprint"),
        ([], "no recipient configured"),
    ],
)
def test_unusable_recipients_are_config_errors(gpg_keys: GpgKeys, recipients: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        recipient_fingerprints(recipients, gpg_keys.home)


def test_wrapped_key_opens_for_each_recipient_only(gpg_keys: GpgKeys, tmp_path: Path):
    alice, bob = gpg_keys.recipients
    key = tmp_path / "k.key.gpg"
    passphrase = "0a" * 32
    key.write_bytes(wrap_key(find_gpg(gpg_keys.home), passphrase, [gpg_keys.fingerprints[bob]], key.name))
    assert passphrase.encode() not in key.read_bytes()
    assert unwrap_key(key, gpg_keys.single_homes[bob]) == passphrase
    assert gpg_cmd(gpg_keys.single_homes[bob], "--quiet", "--decrypt", str(key)) == passphrase.encode()


def test_a_wrapped_key_without_a_hex_passphrase_is_an_integrity_error(gpg_keys: GpgKeys, tmp_path: Path):
    key = tmp_path / "bad.key.gpg"
    gpg_cmd(gpg_keys.home, "--trust-model", "always", "--recipient", gpg_keys.recipients[0], "--output", str(key),
            "--encrypt", stdin=b"not a key\n")
    with pytest.raises(IntegrityError, match="64-hex-digit"):
        unwrap_key(key, gpg_keys.home)


def test_passphrase_pipe_holds_exactly_the_passphrase():
    with passphrase_fd("ab" * 32) as fd:
        assert os.read(fd, 1000) == b"ab" * 32
        assert os.read(fd, 1000) == b""
