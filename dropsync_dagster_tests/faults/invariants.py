"""The one invariant checker every fault scenario ends with, after its re-run.

Whatever fault struck, once a re-run has finished:
- every original is byte-identical (to a content the test knows it had) in exactly one place:
  the drop (held, and named by the run) or the processed folder;
- every synced file is byte-identical in the repository, whose data files each carry a sidecar
  that `md5sum -c` / `b3sum -c` accept, and hold only bytes some original had;
- exactly one LabKey row per recorded file, pointing at an existing repository file;
- every archive generation restores with `gpg` + `tar` alone and matches its index and the
  originals; every synced file is in one;
- no temporary (`.dropsync-tmp`) anywhere, every published file has a single link;
- every synced file has a complete lineage document; the drop's status is `synced`.
All problems are collected and reported together, each naming its file.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from blake3 import blake3

from dropsync_dagster.core.status.files import file_id
from dropsync_dagster_tests.faults.archives import Restored, restore_all
from dropsync_dagster_tests.faults.world import World

TEMP_MARK = ".dropsync-tmp"
SIDECARS = (".md5", ".blake3")
_LINE = re.compile(r"(?P<hex>[0-9a-f]+)  (?P<name>[^\n\\]+)\n")


def check_invariants(world: World, final: subprocess.CompletedProcess[str], *, all_synced: bool = True,
                     seen: list[str] | None = None) -> None:
    """Assert every invariant after the re-run `final`; `all_synced`: it must have exited 0.
    `seen`: problems the scenario found in the faulted run, reported with the rest."""
    problems: list[str] = list(seen or [])
    expected_codes = (0,) if all_synced else (0, 1)
    if final.returncode not in expected_codes:
        problems.append(f"re-run exited {final.returncode} (expected {expected_codes}): {final.stderr.strip()[-600:]}")
    synced = _originals(world, final, problems)
    _repository(world, synced, problems)
    _temporaries_and_links(world, problems)
    rows = _labkey(world, synced, problems)
    generations = _archives(world, synced, problems)
    _lineage(world, synced, rows, generations, problems)
    doc = world.store().get(world.drop.key)
    if doc is None or doc.status != "synced":
        problems.append(f"drop {world.drop.key}: status {doc.status if doc else None!r}, expected 'synced'")
    summary = "\n".join(line.strip() for line in final.stdout.splitlines() if "held" in line or "run " in line)
    assert not problems, "invariants broken:\n- " + "\n- ".join(problems) + f"\n--- re-run said:\n{summary[-3000:]}"


def failed_run_problems(faulted: subprocess.CompletedProcess[str], *names: str) -> list[str]:
    """A run that failed: exit 3 and exactly one stderr line naming each of `names` (a path, a service)."""
    found = []
    lines = faulted.stderr.strip().splitlines()
    if faulted.returncode != 3:
        found.append(f"faulted run exited {faulted.returncode}, expected 3")
    if len(lines) != 1:
        found.append(f"faulted run wrote {len(lines)} stderr lines, expected one: {faulted.stderr.strip()[-800:]!r}")
    for name in names:
        if name not in faulted.stderr:
            found.append(f"faulted run's error does not name {name}: {faulted.stderr.strip()[-400:]!r}")
    return found


def matched(world: World) -> list[str]:
    """The originals the regex matches (data files, not sidecars), as known before any fault."""
    return [rel for rel in world.known if rel.endswith(".fastq.gz")]


def _originals(world: World, final: subprocess.CompletedProcess[str], problems: list[str]) -> dict[str, bytes]:
    """Each known original in exactly one place with a known content; returns synced rel -> bytes."""
    synced: dict[str, bytes] = {}
    for rel, versions in world.known.items():
        if rel in world.gone:
            continue
        places = [p for p in (world.drop.path / rel, world.drop.processed / rel) if p.is_file()]
        if len(places) != 1:
            problems.append(f"{rel}: found in {len(places)} places ({', '.join(map(str, places)) or 'none'})")
            continue
        data = places[0].read_bytes()
        if data not in versions:
            problems.append(f"{places[0]}: bytes differ from every content {rel} ever had")
        if rel.endswith(".fastq.gz"):
            if places[0].is_relative_to(world.drop.processed):
                synced[rel] = data
            elif final.returncode in (0, 1) and not any(rel in line and "held:" in line for line in final.stdout.splitlines()):
                problems.append(f"{rel}: still in the drop but the re-run does not name it as held")
    return synced


def _repository(world: World, synced: dict[str, bytes], problems: list[str]) -> None:
    """Repository and processed data files: known bytes and a sidecar the standard tool accepts."""
    every_version = {data for versions in world.known.values() for data in versions}
    for folder in (world.drop.repository, world.drop.processed):
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.endswith(SIDECARS) or TEMP_MARK in path.name:
                continue
            if path.read_bytes() not in every_version:
                problems.append(f"{path}: half-written or foreign bytes (no original ever had them)")
            sidecar_problem = verify_sidecar(path)
            if sidecar_problem:
                problems.append(sidecar_problem)
    targets = {data: path for path in world.drop.repository.rglob("*.fastq.gz") for data in [path.read_bytes()]}
    for rel, data in synced.items():
        if data not in targets:
            problems.append(f"{rel}: moved to processed but no repository file holds its bytes")


def verify_sidecar(path: Path) -> str | None:
    """None when `<path>.md5` or `<path>.blake3` exists and `md5sum -c` / `b3sum -c` accept it."""
    for suffix, tool in ((".md5", "md5sum"), (".blake3", "b3sum")):
        sidecar = path.with_name(path.name + suffix)
        if not sidecar.exists():
            continue
        if tool == "b3sum" and shutil.which("b3sum") is None:
            return _b3sum_check_in_python(sidecar)
        done = subprocess.run([tool, "-c", sidecar.name], cwd=sidecar.parent, capture_output=True, text=True)
        return None if done.returncode == 0 else f"{sidecar}: `{tool} -c` fails: {(done.stdout + done.stderr).strip()}"
    return f"{path}: no .md5 or .blake3 sidecar"


def _b3sum_check_in_python(sidecar: Path) -> str | None:
    """What `b3sum -c` checks, without b3sum: one `HEX  name` line, name in this folder, digest."""
    text = sidecar.read_text(encoding="utf-8")
    line = _LINE.fullmatch(text)
    if line is None or len(line["hex"]) != 64:
        return f"{sidecar}: not in b3sum's format: {text!r}"
    named = sidecar.parent / line["name"]
    if not named.is_file() or blake3(named.read_bytes()).hexdigest() != line["hex"]:
        return f"{sidecar}: b3sum -c would fail for {line['name']}"
    return None


def _b3sum_line(data: bytes, relpath: str) -> bytes:
    """The line `b3sum` prints for these bytes under the file's base name."""
    return f"{blake3(data).hexdigest()}  {Path(relpath).name}\n".encode()


def _temporaries_and_links(world: World, problems: list[str]) -> None:
    """No temporary anywhere in the world; published files (repository, processed, archive) single-linked."""
    for path in world.base.rglob(f"*{TEMP_MARK}*"):
        problems.append(f"temporary left: {path}")
    for folder in (world.drop.repository, world.drop.processed, world.archive_dir, world.key_dir):
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_nlink != 1:
                problems.append(f"{path}: {path.stat().st_nlink} links (a temporary or second name points at it)")


def _labkey(world: World, synced: dict[str, bytes], problems: list[str]) -> dict[str, dict]:
    """One row per recorded file; returns repository path -> its row."""
    rows = world.rows()
    by_path: dict[str, list[dict]] = {}
    for row in rows:
        for path in (row.get("Path_To_Synced_Data") or "").splitlines():
            by_path.setdefault(path, []).append(row)
    for name, count in Counter(row.get("Name") for row in rows).items():
        if count != 1:
            problems.append(f"LabKey: {count} rows named {name!r}")
    for path, found in by_path.items():
        if len(found) != 1 or len(found[0]["Path_To_Synced_Data"].splitlines()) != len(set(found[0]["Path_To_Synced_Data"].splitlines())):
            problems.append(f"LabKey: {path} recorded {len(found)} times ({[r['RowId'] for r in found]})")
        if not Path(path).is_file():
            problems.append(f"LabKey: row {found[0]['RowId']} points at {path}, which is not in the repository")
    targets = {data: str(path) for path in world.drop.repository.rglob("*.fastq.gz") for data in [path.read_bytes()]}
    for rel, data in synced.items():
        target = targets.get(data)
        if target is not None and target not in by_path:
            problems.append(f"LabKey: {rel} was moved but no row records {target}")
    return {path: found[0] for path, found in by_path.items()}


def _archives(world: World, synced: dict[str, bytes], problems: list[str]) -> list[Restored]:
    """Every generation restores and matches its index and the originals; synced files are archived."""
    generations = restore_all(world.archive_dir, world.key_dir, world.drop.key,
                              world.gpg.single_homes[world.gpg.recipients[1]])
    for gen in generations:
        index = gen.index.get("members", {})
        if set(index) != set(gen.members):
            problems.append(f"{gen.archive}: members {sorted(gen.members)} differ from its index {sorted(index)}")
        for rel, data in gen.members.items():
            if rel.endswith(".blake3") and rel not in world.known:  # a sidecar dropsync wrote in the drop
                data_rel = rel.removesuffix(".blake3")
                if data_rel in world.gone:  # its file was deleted by the test: nothing to describe
                    continue
                if not any(data == _b3sum_line(g.members[data_rel], data_rel) for g in generations if data_rel in g.members):
                    problems.append(f"{gen.archive}: sidecar member {rel} describes no archived version of {data_rel}")
            elif data not in world.known.get(rel, []):
                problems.append(f"{gen.archive}: member {rel} holds bytes the original never had")
            if rel in index and index[rel]["blake3"] != blake3(data).hexdigest():
                problems.append(f"{gen.archive}: member {rel} does not match its index digest")
    for rel, data in synced.items():
        if not any(gen.members.get(rel) == data for gen in generations):
            problems.append(f"{rel}: moved to processed but no archive generation holds these bytes")
    return generations


def _lineage(world: World, synced: dict[str, bytes], rows: dict[str, dict], generations: list[Restored],
             problems: list[str]) -> None:
    """Each synced file's lineage document: source, checksums, target, archive, LabKey row, processed."""
    store = world.store()
    for rel, data in synced.items():
        doc = store.get_file(file_id(world.drop.key, rel))
        if doc is None:
            problems.append(f"{rel}: moved but has no lineage document")
            continue
        digest = blake3(data).hexdigest()
        missing = []
        if doc.source != str(world.drop.path / rel):
            missing.append(f"source {doc.source!r}")
        if doc.checksums.get("source", {}).get("blake3") != digest:
            missing.append("source blake3")
        if rel + ".md5" in world.known and doc.checksums.get("source", {}).get("md5") != hashlib.md5(data).hexdigest():
            missing.append("source md5")
        if doc.checksums.get("repository", {}).get("blake3") != digest:
            missing.append("repository blake3")
        if doc.target is None or not Path(doc.target).is_file() or Path(doc.target).read_bytes() != data:
            missing.append(f"target {doc.target!r}")
        if doc.processed != str(world.drop.processed / rel):
            missing.append(f"processed {doc.processed!r}")
        if doc.archive is None or not any(
                g.generation == doc.archive.generation and g.members.get(rel) == data for g in generations):
            missing.append(f"archive {doc.archive!r}")
        row = rows.get(doc.target or "")
        if row is None or str(doc.labkey_row_id) != str(row["RowId"]):
            missing.append(f"labkey_row_id {doc.labkey_row_id!r} (row {row and row['RowId']})")
        if missing:
            problems.append(f"{rel}: lineage incomplete or wrong: {', '.join(missing)}")
