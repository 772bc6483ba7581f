"""`encrypted_archive`'s step: a source that changed since it was hashed is held, never archived,
and never fails the drop; the other files are archived."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.archive.policy import ArchivePolicy
from dropsync_dagster.core.steps.encrypted_archive import archive_drop, archive_problems
from dropsync_dagster.core.steps.drop_checksums import compute_checksums
from dropsync_dagster_tests.fixtures.gpg_keys import GpgKeys
from dropsync_dagster_tests.support.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.support.write_path import FILES, simple_drop

pytestmark = pytest.mark.usefixtures("no_hooks")


def policy(tmp_path: Path, keys: GpgKeys) -> ArchivePolicy:
    return ArchivePolicy(tuple(keys.recipients), tmp_path / "archives", tmp_path / "keys", True, keys.home)


def append(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"appended")


@pytest.mark.parametrize("when", ["before_the_step", "while_streaming"])
def test_a_source_changed_after_hashing_is_held_and_the_rest_is_archived(
        tmp_path: Path, gpg_keys: GpgKeys, when: str) -> None:
    drop = simple_drop(tmp_path)
    plan = drop.plan()
    checksums = compute_checksums(plan)
    victim = "e/c.bin"  # last in tar order: streamed after the hook below fires
    if when == "before_the_step":
        append(drop.path / victim)
    else:
        fired: list[bool] = []

        def change(**_: object) -> None:
            if not fired:
                fired.append(True)
                append(drop.path / victim)

        testhooks.install("archive_encrypting", change)
    result = archive_drop(plan, checksums, policy(tmp_path, gpg_keys))
    assert result.changed == [victim]
    assert victim not in result.archived
    assert {rel: result.archived.get(rel) for rel in FILES if rel != victim} == {
        rel: checksums.files[rel].digests.blake3 for rel in FILES if rel != victim}
    assert archive_problems(plan, checksums, result) == []


def test_the_sidecar_of_a_changed_source_is_left_out_with_it(tmp_path: Path, gpg_keys: GpgKeys) -> None:
    drop = simple_drop(tmp_path)
    plan = drop.plan()
    checksums = compute_checksums(plan)
    (drop.path / "e/c.bin.md5").write_text("0" * 32 + "  c.bin\n")  # describes a version never archived
    append(drop.path / "e/c.bin")
    result = archive_drop(plan, checksums, policy(tmp_path, gpg_keys))
    assert result.changed == ["e/c.bin"]
    assert not {"e/c.bin", "e/c.bin.md5", "e/c.bin.blake3"} & set(result.archived)
