"""What changes while `dropsync sync` waits at its prompt is seen by the run: it plans again
after the confirmation (a run handed the plan it showed once synced bytes failing a `.md5` that
arrived meanwhile). `sync` is taken apart in-process: the plan shown, the change, the run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dropsync_dagster.cli.plan import plan_for
from dropsync_dagster.cli.sync import sync_now
from dropsync_dagster.deployment import deployment_from_env
from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.test_cli_sync import plain_drop, target


def test_a_md5_arriving_while_the_prompt_waits_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = plain_drop(tmp_path)
    data = drop.add_file(fastq_relpath(read=1))  # its `.md5` has not arrived yet
    for name, value in {**drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home")}.items():
        monkeypatch.setenv(name, value)
    deployment = deployment_from_env()
    folder, shown = plan_for(deployment, str(drop.path))  # printed; `Sync …?` waits
    damaged = hashlib.md5(data.read_bytes() + b"the bytes the sender had").hexdigest()
    Path(f"{data}.md5").write_text(f"{damaged}  {data.name}\n")  # the uploader's `.md5` arrives meanwhile
    assert sync_now(deployment, folder, shown) == 1  # confirmed: held back
    assert not target(drop, 1).exists() and data.exists()
