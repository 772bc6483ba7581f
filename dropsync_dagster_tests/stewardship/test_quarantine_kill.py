"""A power cut while an original goes into quarantine: the note is written before the file moves,
so a file in quarantine is never unaccounted for, and re-running completes."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

from dropsync_dagster_tests.faults.hooks import KILL
from dropsync_dagster_tests.stewardship.test_quarantine import BAD, files_in, quarantine_drop, with_quarantine
from dropsync_dagster_tests.test_cli_sync import dropsync, target


def test_killed_right_after_the_move_into_quarantine_the_file_is_listed_and_comes_back(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    source, held = drop.path / BAD, quarantine / drop.key / BAD
    data = source.read_bytes()
    # SIGKILL once BAD's source name is unlinked (the move is done), before anything else happens.
    kill = f'[ "$DROPSYNC_HOOK_PATH" = {shlex.quote(str(source))} ] && {KILL}'
    killed = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes",
                      DROPSYNC_TEST_HOOKS=json.dumps({"between_moves": kill}), **env)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert held.read_bytes() == data and not source.exists()
    note = json.loads(Path(f"{held}.quarantine.json").read_text())  # written before the move
    assert note["relpath"] == BAD and note["reason"] == "md5_mismatch"
    listed = json.loads(dropsync(drop, "status", drop.key, "--json", **env).stdout)[0]
    assert [q["relpath"] for q in listed["quarantined"]] == [BAD]

    again = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", **env)  # reaps the killed run
    assert again.returncode in (0, 1), again.stderr
    assert held.read_bytes() == data and files_in(quarantine) == sorted(
        str(p.relative_to(quarantine)) for p in (held, Path(f"{held}.md5"), Path(f"{held}.quarantine.json")))

    source.with_name(f"{source.name}.md5").write_text(f"{hashlib.md5(data).hexdigest()}  {source.name}\n")
    fixed = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", **env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert target(drop, 1).read_bytes() == data and (drop.processed / BAD).read_bytes() == data
    assert files_in(quarantine) == []


def test_a_move_into_quarantine_that_does_not_happen_leaves_no_note(tmp_path: Path) -> None:
    drop, quarantine = quarantine_drop(tmp_path)
    env = with_quarantine(drop, quarantine)
    held = quarantine / drop.key / BAD
    held.parent.mkdir(parents=True)
    held.write_bytes(b"an earlier file of that name, already in quarantine\n")  # no note beside it
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", **env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (drop.path / BAD).exists() and held.read_bytes().startswith(b"an earlier file")
    assert not Path(f"{held}.quarantine.json").exists()  # no note names a file that did not move
