"""`dropsync restore` as a subprocess, and the README's manual recipe through bash."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import dagster as dg

from dropsync_dagster_tests.stewardship.synced import Synced, dropsync, flip_bit, sync
from dropsync_dagster_tests.support.drops import fastq_relpath

README = Path(__file__).resolve().parents[2] / "README.md"


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def as_received(synced: Synced) -> dict[str, bytes]:
    """Every file of the drop as it arrived: what is left in it, plus the originals moved to processed."""
    got = files_under(synced.drop.path)
    got.update({rel: data for rel, data in files_under(synced.drop.processed).items()})
    return got


def test_restore_is_byte_identical_over_two_generations(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance, generations=2)
    expected = as_received(synced)
    to = tmp_path / "restored"
    done = dropsync(synced, "restore", synced.drop.key, "--to", str(to))
    assert done.returncode == 0, done.stderr
    got = files_under(to)
    assert fastq_relpath(read=3) in got and fastq_relpath(read=1) in got  # from generations 2 and 1
    for rel, data in got.items():
        assert data == expected[rel], rel
    assert set(got) >= {fastq_relpath(read=r) for r in (1, 2, 3)} | {"SampleSheet.csv", "sync.yml"}
    assert not [p for p in to.iterdir() if p.name.startswith(".dropsync-restore")]


def test_generation_and_files_restore_a_subset(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance, generations=2)
    to = tmp_path / "subset"
    done = dropsync(synced, "restore", synced.drop.key, "--to", str(to), "--files", "*.fastq.gz", "--generation", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(files_under(to)) == [fastq_relpath(read=1), fastq_relpath(read=2)]
    assert files_under(to)[fastq_relpath(read=2)] == (synced.drop.processed / fastq_relpath(read=2)).read_bytes()
    again = dropsync(synced, "restore", synced.drop.key, "--to", str(to), "--files", "*R1_001.fastq.gz")
    assert again.returncode == 3 and "exists" in again.stderr  # never replaces a file
    missing = dropsync(synced, "restore", synced.drop.key, "--to", str(to), "--generation", "9")
    assert missing.returncode == 2 and "generation 9" in missing.stderr


def test_restore_refuses_a_manipulated_archive_and_leaves_nothing(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    flip_bit(synced.archive(1), synced.archive(1).stat().st_size // 2)
    to = tmp_path / "restored"
    done = dropsync(synced, "restore", synced.drop.key, "--to", str(to))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "manipulated" in done.stderr and len(done.stderr.splitlines()) == 1
    assert list(to.iterdir()) == []  # neither final names nor the staging folder


def run_readme_recipe(synced: Synced, workdir: Path, gen: int) -> subprocess.CompletedProcess:
    """The README's "Restore by hand" block, verbatim but for its line of settings."""
    block = re.search(r"### Restore by hand.*?```bash\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README has no 'Restore by hand' bash block"
    script, settings = re.subn(
        r"^DROP=.*$", f"DROP={synced.drop.key} GEN={gen} ARCHIVE_DIR={synced.archive_dir} KEY_DIR={synced.key_dir}",
        block[1], flags=re.M)
    assert settings == 1
    workdir.mkdir()
    return subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GNUPGHOME": synced.gnupghome})


def test_readme_recipe_restores_a_good_archive_and_fails_on_a_manipulated_one(tmp_path: Path, gpg_keys) -> None:
    with dg.instance_for_test() as instance:
        synced = sync(tmp_path, gpg_keys, instance)
    good = run_readme_recipe(synced, tmp_path / "good", 1)
    assert good.returncode == 0, good.stderr
    restored = files_under(tmp_path / "good" / f"{synced.drop.key}.g1")
    assert restored[fastq_relpath(read=2)] == (synced.drop.processed / fastq_relpath(read=2)).read_bytes()
    flip_bit(synced.archive(1), synced.archive(1).stat().st_size // 2)
    bad = run_readme_recipe(synced, tmp_path / "bad", 1)
    assert bad.returncode != 0
    assert "manipulated" in bad.stderr
    assert not (tmp_path / "bad" / f"{synced.drop.key}.g1").exists()  # only the .partial folder
