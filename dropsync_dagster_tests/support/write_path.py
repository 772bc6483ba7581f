"""A small drop run step by step through the real core functions, and a canary folder outside
the roots that must never change: for the write-path tests (confined writes, planned reads)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dropsync_dagster.core import testhooks
from dropsync_dagster.core.steps.drop_checksums import compute_checksums
from dropsync_dagster.core.steps.repository_copies import copy_files
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.steps.archived_originals import move_originals
from dropsync_dagster.core.results import ChecksumsResult, CopiesResult, OriginalsResult
from dropsync_dagster_tests.support.drops import Drop, make_drop, seed_config

FILES = {"d/a.bin": b"A" * 5000, "d/b.bin": b"B" * 6000, "e/c.bin": b"C" * 7000}


def simple_drop(tmp_path: Path, files: dict[str, bytes] = FILES) -> Drop:
    """A drop whose files keep their drop-relative path in the repository; no LabKey."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(
        drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None,
        drop_filename_filter="**/*", drop_filename_regex=r"(?P<dir>.+)/(?P<name>[^/]+)$",
        repository_filename="<dir>/<name>", filename_sequence=None,
    ))
    for rel, data in files.items():
        drop.add_file(rel, data)
    return drop


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes | str]]:
    """Every entry below `folder` (links not followed): mode, link count, size, content/target."""
    out: dict[str, tuple[int, int, int, bytes | str]] = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            body: bytes | str = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            body = path.read_bytes()
        else:
            body = ""
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_nlink, st.st_size, body)
    return out


def canary(tmp_path: Path) -> Path:
    """A folder outside every root with a root-only secret of each test file's size."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for rel, data in FILES.items():
        secret = outside / f"secret-{Path(rel).name}"
        secret.write_bytes(b"S" * len(data))
        secret.chmod(0o600)
    return outside


@dataclass
class Run:
    """The results of one run of the write path over a plan."""

    plan: Plan
    checksums: ChecksumsResult
    copies: CopiesResult
    originals: OriginalsResult


def run_steps(drop: Drop, plan: Plan | None = None) -> Run:
    """drop_checksums, repository_copies and archived_originals, as the assets call them."""
    plan = plan or drop.plan()
    settings = drop.settings()
    checksums = compute_checksums(plan)
    copies = copy_files(plan, checksums, settings)
    originals = move_originals(plan, checksums, copies, settings)
    return Run(plan, checksums, copies, originals)


def run_with_planted_link(tmp_path: Path, where: Callable[[Drop, Plan], Path]) -> tuple[Drop, Run]:
    """Plan a drop, then make `where(drop, plan)` a symlink to the canary folder, and run the
    write path; asserts that nothing outside the roots changed."""
    drop = simple_drop(tmp_path)
    outside = canary(tmp_path)
    before = snapshot(outside)
    plan = drop.plan()
    link = where(drop, plan)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    run = run_steps(drop, plan)
    assert snapshot(outside) == before
    return drop, run


def put(path: Path, data: bytes) -> Path:
    """Write `path` (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def temps(folder: Path) -> list[Path]:
    """Temporaries left anywhere below `folder`."""
    return sorted(p for p in folder.rglob("*") if ".dropsync-tmp" in p.name)


@pytest.fixture
def no_hooks():
    """No test hook before or after the test."""
    testhooks.clear()
    yield
    testhooks.clear()
