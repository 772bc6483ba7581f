"""Restore an archive generation with nothing but `gpg` and `tar`, as its owner would."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

GENERATION = re.compile(r"(?P<drop>.+)\.g(?P<gen>[1-9][0-9]*)\.tar\.gpg")


@dataclass(frozen=True)
class Restored:
    """One generation: its number, the members index it published, and the bytes tar gave back."""

    generation: int
    archive: Path
    index: dict
    members: dict[str, bytes]


def restore_all(archive_dir: Path, key_dir: Path, drop: str, gnupghome: str) -> list[Restored]:
    """Every published generation of `drop`, decrypted with the owner's secret key only."""
    found = []
    for archive in sorted(archive_dir.iterdir()):
        match = GENERATION.fullmatch(archive.name)
        if match is None or match["drop"] != drop:
            continue
        gen = int(match["gen"])
        index = archive_dir / f"{drop}.g{gen}.members.json"
        key = key_dir / f"{drop}.g{gen}.key.gpg"
        found.append(Restored(gen, archive, json.loads(index.read_text()), _restore(archive, key, gnupghome)))
    return found


def _restore(archive: Path, key: Path, gnupghome: str) -> dict[str, bytes]:
    """`gpg --decrypt KEY | gpg --passphrase-fd 0 --decrypt ARCHIVE | tar -x`, members read back."""
    unwrapped = subprocess.run(["gpg", "--batch", "--homedir", gnupghome, "--decrypt", str(key)],
                               capture_output=True, check=False)
    assert unwrapped.returncode == 0, f"{key}: gpg cannot unwrap it: {unwrapped.stderr.decode(errors='replace')}"
    passphrase = unwrapped.stdout
    with tempfile.TemporaryDirectory(prefix="restore-") as out, tempfile.TemporaryFile() as gpg_err:
        gpg = subprocess.Popen(
            ["gpg", "--batch", "--homedir", gnupghome, "--pinentry-mode", "loopback", "--passphrase-fd", "0",
             "--decrypt", str(archive)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=gpg_err)
        tar = subprocess.Popen(["tar", "-x", "-C", out], stdin=gpg.stdout, stderr=subprocess.PIPE)
        assert gpg.stdin is not None and gpg.stdout is not None
        gpg.stdin.write(passphrase)
        gpg.stdin.close()
        gpg.stdout.close()
        tar_err = tar.communicate()[1]
        gpg.wait()
        gpg_err.seek(0)
        assert gpg.returncode == 0, f"{archive}: gpg cannot decrypt it: {gpg_err.read().decode(errors='replace')}"
        assert tar.returncode == 0, f"{archive}: tar cannot read it: {tar_err.decode(errors='replace')}"
        root = Path(out)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
