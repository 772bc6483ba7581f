"""Lineage documents name the archive generation holding each file, whichever run published it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core.integrity.lineage import lineage_docs
from dropsync_dagster.core.results import ArchiveLocation, ArchiveStepResult
from dropsync_dagster_tests.support.write_path import no_hooks  # noqa: F401  (fixture)
from dropsync_dagster_tests.support.write_path import run_steps, simple_drop

pytestmark = pytest.mark.usefixtures("no_hooks")


def test_a_rerun_that_archives_nothing_new_still_names_the_earlier_generation(tmp_path: Path) -> None:
    drop = simple_drop(tmp_path)
    run = run_steps(drop)
    b3 = {rel: c.digests.blake3 for rel, c in run.checksums.files.items() if c.digests is not None}
    stale = "d/b.bin"  # archived with other bytes than it has now: no archive for it
    where = ArchiveLocation(path=str(tmp_path / "a" / f"{run.plan.drop}.g1.tar.gpg"), generation=1)
    # The generation was published by an interrupted run: this run wrote nothing (`written` None).
    archive = ArchiveStepResult(
        drop=run.plan.drop, plan_id=run.plan.plan_id, enabled=True, why="required",
        archived={rel: ("0" * 64 if rel == stale else digest) for rel, digest in b3.items()},
        locations={rel: where for rel in b3},
    )
    docs = {d.relpath: d for d in lineage_docs(run.plan, run.checksums, run.copies, archive, run.originals)}
    for rel in b3:
        if rel == stale:
            assert docs[rel].archive is None
        else:
            assert docs[rel].archive is not None
            assert (docs[rel].archive.path, docs[rel].archive.generation) == (where.path, 1)
