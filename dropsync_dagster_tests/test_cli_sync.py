"""`dropsync sync` as a subprocess: exit codes, interruption and re-run, already_synced moves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropsync_dagster_tests.support.drops import Drop, fastq_relpath, make_drop, seed_config

TARGET_DIR = "scRNA/raw/btki/ABC_DEFGHI"


def plain_drop(tmp_path: Path) -> Drop:
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.mark_ready()
    return drop


def dropsync(drop: Drop, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    full = {**os.environ, **drop.env(**env), "DAGSTER_HOME": str(drop.root.parent / "dagster_home")}
    full = {k: v for k, v in full.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "dropsync_dagster.cli", *args], env=full, capture_output=True, text=True, timeout=120
    )


def target(drop: Drop, read: int) -> Path:
    return drop.repository / TARGET_DIR / f"ABC_DEFGHI_SEQ_ABCDE_r1__R{read}_001.fastq.gz"


def test_exit_0_when_every_matched_file_syncs(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1), md5="correct")
    drop.add_file(fastq_relpath(read=2))
    drop.add_file("notes/readme.txt")  # outside the filter: ignored
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    assert target(drop, 1).read_bytes() == (drop.processed / fastq_relpath(read=1)).read_bytes()
    assert target(drop, 2).exists()
    assert "2 synced, 0 held back" in done.stdout


def test_exit_1_when_a_file_is_held_at_a_gate(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1), md5="wrong")
    drop.add_file(fastq_relpath(read=2))
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 1, done.stderr
    assert (drop.path / fastq_relpath(read=1)).exists()
    assert not target(drop, 1).exists()
    assert "held:md5_mismatch" in done.stdout


def test_exit_2_on_bad_config_with_one_line(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    drop.write_config(drop.config_path.read_text().replace("processed_folder", "procesed_folder"))
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "did you mean 'processed_folder'" in done.stderr


def test_exit_2_when_writing_is_not_allowed(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", DROPSYNC_ALLOWED_ROOTS=None)
    assert done.returncode == 2
    assert "DROPSYNC_ALLOWED_ROOTS" in done.stderr
    assert not any(drop.repository.iterdir())


def test_a_file_where_a_processed_folder_must_go_holds_the_original(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    (drop.processed / "scRNA").write_text("a file where a folder must go")
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    # Held `exists` (was: the run failed, exit 3): one blocked destination never fails the drop.
    assert done.returncode == 1, done.stderr
    assert "1 held back" in done.stdout
    assert (drop.path / fastq_relpath(read=1)).exists()
    assert target(drop, 1).exists()  # the verified copy stays


def test_target_blocked_by_a_file_is_a_conflict_not_a_crash(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    (drop.repository / "scRNA").write_text("a file where a folder must go")
    done = dropsync(drop, "plan", str(drop.path), "--json")
    assert done.returncode == 1, done.stderr
    assert [e["reason"] for e in json.loads(done.stdout)["entries"]] == ["target_conflict"]


def test_plan_only_without_do_it(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    done = dropsync(drop, "sync", str(drop.path))
    assert done.returncode == 0
    assert "would_copy" in done.stdout
    assert not any(drop.repository.iterdir())


def test_already_synced_continues_to_the_move(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    source = drop.add_file(fastq_relpath(read=1))
    target(drop, 1).parent.mkdir(parents=True)
    shutil.copyfile(source, target(drop, 1))  # a crash after publishing, before the move
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    assert "already_synced" in done.stdout
    assert not source.exists()
    assert (drop.processed / fastq_relpath(read=1)).exists()


def test_interrupted_run_then_rerun_completes(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    big = drop.add_file(fastq_relpath(read=1), os.urandom(1 << 20) * 192)  # 192 MiB
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it", "--yes"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(drop.repository.rglob("*dropsync-tmp*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target(drop, 1).exists() or target(drop, 1).stat().st_size == big.stat().st_size
    assert big.exists()  # the original never moved before its copy was verified
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    assert not list(drop.repository.rglob("*dropsync-tmp*"))
    assert (drop.processed / fastq_relpath(read=1)).stat().st_size == 192 << 20
    assert target(drop, 1).stat().st_size == 192 << 20


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    done = dropsync(drop, "sync", "--bogus")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["dropsync: No such option '--bogus'. (see dropsync --help)"]


def test_odd_files_are_held_and_the_good_ones_sync(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    drop.add_file(fastq_relpath(read=2))
    os.mkfifo(drop.path / f"{fastq_relpath(read=2)}.md5")  # a FIFO sidecar never hangs the run
    drop.add_file(fastq_relpath(read=3))
    (drop.path / f"{fastq_relpath(read=3)}.md5").write_bytes(b"\x00garbage\xff\n")
    bad = os.fsencode(drop.path / fastq_relpath(read=4)).replace(b"R4_001", b"R4_\xff01")
    Path(os.fsdecode(bad)).write_bytes(b"not utf-8")
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "1 synced, 3 held back" in done.stdout
    assert target(drop, 1).exists() and not (drop.path / fastq_relpath(read=1)).exists()
    assert (drop.path / fastq_relpath(read=3)).exists()


def status_doc(drop: Drop) -> dict:
    shown = dropsync(drop, "status", drop.key, "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)[0]


@pytest.mark.parametrize("sentinel", [None, "1"])
def test_a_drop_that_is_not_ready_is_refused_unless_readiness_is_ignored(tmp_path: Path, sentinel: str | None) -> None:
    """Defect (issue 11): readiness was checked only when the sensor first saw a drop; a CLI (or
    UI, backfill) run synced a drop whose files might still be arriving."""
    drop = make_drop(tmp_path)
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None, field_parameters=None))
    drop.add_file(fastq_relpath(read=1))
    if sentinel is not None:
        drop.mark_ready(rsync_exitcode=sentinel)  # the transfer failed
    refused = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert refused.returncode == 3
    assert len(refused.stderr.strip().splitlines()) == 1 and "is not ready" in refused.stderr
    assert "--ignore-readiness" in refused.stderr
    assert not any(drop.repository.iterdir()) and (drop.path / fastq_relpath(read=1)).exists()
    forced = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes", "--ignore-readiness")
    assert forced.returncode == 0, forced.stderr
    assert target(drop, 1).exists()
    assert "ignored by" in status_doc(drop)["readiness_override"]


def test_sigterm_stops_the_run_cleanly_and_a_rerun_finishes(tmp_path: Path) -> None:
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1), os.urandom(1 << 20) * 192)  # 192 MiB: the copy takes a while
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it", "--yes"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(drop.repository.rglob("*dropsync-tmp*")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3
    assert len(stderr.strip().splitlines()) == 1 and "stopped (SIGTERM or Ctrl-C)" in stderr
    assert not list(drop.repository.rglob("*dropsync-tmp*"))  # its temporaries are gone
    assert (drop.path / fastq_relpath(read=1)).exists()
    doc = status_doc(drop)
    assert (doc["status"], doc["failure_count"], doc["lease_expires_at"]) == ("pending", 0, None)  # released
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
    assert done.returncode == 0, done.stderr
    assert (drop.processed / fastq_relpath(read=1)).stat().st_size == 192 << 20


def test_a_recipient_missing_from_the_keyring_is_exit_2_and_not_counted(tmp_path: Path) -> None:
    """Defect (issue 11): exit 3, counted towards `failed`, and a Python class path in the line."""
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    keyring = tmp_path / "empty-gnupg"
    keyring.mkdir(mode=0o700)
    done = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes",
                    GNUPGHOME=str(keyring), DROPSYNC_GPG_RECIPIENTS="nobody@dropsync.test")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "nobody@dropsync.test" in done.stderr
    assert "dropsync_dagster." not in done.stderr and "Error:" not in done.stderr
    doc = status_doc(drop)
    assert doc["failure_count"] == 0 and doc["status"] == "pending"
    assert not any(drop.repository.iterdir())


def test_a_refused_run_leaves_the_live_runs_plan_alone(tmp_path: Path) -> None:
    """Defect (issue 11): a refused run's drop_manifest overwrote the live run's frozen plan before
    its claim was checked; the live run then ended with every file held:not_verified."""
    drop = plain_drop(tmp_path)
    drop.add_file(fastq_relpath(read=1))
    drop.add_file(fastq_relpath(read=2))
    gate = tmp_path / "gate"
    gate.mkdir()
    stall = f"touch {gate}/stalled; while [ ! -e {gate}/go ]; do sleep 0.05; done"
    env = {**os.environ, **drop.env(), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "DROPSYNC_TEST_HOOKS": json.dumps({"hashed": stall})}
    live = subprocess.Popen([sys.executable, "-m", "dropsync_dagster.cli", "sync", str(drop.path), "--do-it", "--yes"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (gate / "stalled").exists():
            time.sleep(0.05)
        manifest = drop.settings().state_dir / "drops" / drop.key / "drop_manifest.json"
        frozen = manifest.read_bytes()
        drop.add_file(fastq_relpath(read=3))  # the refused run would plan a third file
        refused = dropsync(drop, "sync", str(drop.path), "--do-it", "--yes")
        assert refused.returncode == 3 and "is claimed by run" in refused.stderr
        assert manifest.read_bytes() == frozen
    finally:
        (gate / "go").touch()
    out, err = live.communicate(timeout=180)
    assert live.returncode == 0, err
    assert "2 synced, 0 held back" in out
    assert all((drop.processed / fastq_relpath(read=r)).exists() for r in (1, 2))
