"""Small filesystems for disk-full faults: a tmpfs mounted over a world's folder, filled on cue.

Mounting needs root (CI runs as root). Where it is not allowed, the scenario is skipped with the
reason, except under CI=true, where it fails: CI must run every fault."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

FILLER = "zz-disk-filler"


class SmallDisks:
    """Mounts made by one test, all unmounted at its end."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def mount(self, folder: Path, size: str = "8m") -> None:
        """A tmpfs of `size` over the (empty) `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs on {folder}: {done.stderr.strip()} (needs root)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        self.mounted.append(folder)

    def unmount_all(self) -> None:
        """Unmount in reverse order (lazily: a killed run may still hold a file open)."""
        for folder in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(folder)], check=True)
        self.mounted.clear()


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its filesystem is full; returns the filler file."""
    filler = folder / FILLER
    block = b"\0" * (1 << 16)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            os.write(fd, block)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return filler


def free(filler: Path) -> None:
    """Give the space back."""
    filler.unlink()
