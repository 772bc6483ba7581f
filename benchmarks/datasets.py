"""Benchmark data sets: N files of a given size with incompressible content, and their clean-up."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from blake3 import blake3

MiB = 1024 * 1024
KiB = 1024
_CHUNK = 8 * MiB
REPO = Path(__file__).resolve().parents[1]
DEFAULT_BENCH_DIR = REPO / ".bench"  # git-ignored


def make_files(folder: Path, count: int, size: int, prefix: str = "f", seed: str = "dropsync-bench") -> list[Path]:
    """Write `count` files of `size` bytes under `folder`; content is BLAKE3 output stream (random
    to any compressor or dedup), distinct per file and reproducible from `seed`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for i in range(count):
        path = folder / f"{prefix}{i:05d}.bin"
        stream = blake3(f"{seed}/{folder.name}/{prefix}{i}".encode())
        with open(path, "wb") as out:
            for offset in range(0, size, _CHUNK):
                out.write(stream.digest(length=min(_CHUNK, size - offset), seek=offset))
        paths.append(path)
    return paths


def tree_bytes(folder: Path) -> int:
    """Total size of the regular files under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def remove_tree(folder: Path) -> None:
    """Delete a benchmark folder and flush the deletion, so the next timed run starts clean."""
    if folder.exists():
        shutil.rmtree(folder)
    os.sync()


def drop_caches_possible() -> bool:
    """True when this process could drop the page cache (writable /proc/sys/vm/drop_caches)."""
    return os.access("/proc/sys/vm/drop_caches", os.W_OK)


def machine() -> str:
    """One line naming the machine: cores, memory, kernel and the filesystem of the bench folder."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, Linux {os.uname().release}"


def filesystem_of(folder: Path) -> str:
    """The `df -T` type and device of `folder`."""
    out = subprocess.run(["df", "-T", str(folder)], capture_output=True, text=True, check=True).stdout
    fields = out.splitlines()[-1].split()
    return f"{fields[1]} on {fields[0]}"


def main() -> None:
    """Build a data set from the command line: `python -m benchmarks.datasets DIR COUNT SIZE_KIB`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("size_kib", type=int)
    args = parser.parse_args()
    paths = make_files(args.folder, args.count, args.size_kib * KiB)
    print(f"{len(paths)} files of {args.size_kib} KiB under {args.folder}")


if __name__ == "__main__":
    main()


# A drop's sync.yml sending every .bin file to the repository under its own name.
BIN_DROP_SYNC_YML = """\
drop_filename_filter: "**/*.bin"
drop_filename_regex: "(?P<name>.+)\\\\.bin"
repository_folder: {repository}
repository_filename: "<name>.bin"
processed_folder: {processed}
"""


def build_master(master: Path, groups: list[tuple[str, int, int]]) -> None:
    """The master copy of a drop: (subfolder, count, size) groups of incompressible files; reused."""
    if (master / ".built").exists():
        return
    remove_tree(master)
    for sub, count, size in groups:
        make_files(master / sub, count, size)
    (master / ".built").touch()
