"""Odd files in the drop: FIFOs, sockets, devices, unreadable entries, hostile names, bad sidecars."""

from __future__ import annotations

import os
import stat

from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.hostile.harness import Case
from dropsync_dagster_tests.hostile.scene import HOSTILE_REL, Scene

H = HOSTILE_REL
H6, H7 = fastq_relpath(phase="evil", read=6), fastq_relpath(phase="evil", read=7)
EVIL_DIR = os.path.dirname(H)  # scRNA/evil/2026-11-20/SEQ_ABCDE
PREFIX = "ABC_DEFGHI_S1_L001_"  # what the seed regex needs before the suffix group
SPECIAL = "FIFO, socket or device"
UNREADABLE = "unreadable file or folder (root without DAC capabilities)"
NAME = "hostile name"
SIDECAR = "bad .md5/.blake3 sidecar"


def named(suffix: str) -> str:
    """A drop-relative name the seed regex matches, with `suffix` as its `<suffix>` group."""
    return f"{EVIL_DIR}/{PREFIX}{suffix}.fastq.gz"


# --- special files -----------------------------------------------------------------------------

def fifo_source(s: Scene) -> None:
    s.fifo(H)


def socket_and_device(s: Scene) -> None:
    s.sock(H)
    path = s.path(H6)
    os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers


def fifo_sidecars(s: Scene) -> None:
    s.hostile()
    s.fifo(H + ".md5")
    s.hostile(H6)
    s.fifo(H6 + ".blake3")


def fifo_sentinel(s: Scene) -> None:
    s.path(".ready").unlink()
    s.fifo(".metadata_rsync_exitcode")


# --- unreadable (the CLI runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH) ------------------

def unreadable_file_and_sidecar(s: Scene) -> None:
    s.hostile().chmod(0)
    s.drop.add_file(H6, md5="correct")
    s.path(H6 + ".md5").chmod(0)
    s.no_dac = True


def unreadable_folder(s: Scene) -> None:
    s.hostile()
    s.path(EVIL_DIR).chmod(0)
    s.no_dac = True


def untraversable_folder(s: Scene) -> None:
    s.hostile()
    s.path(EVIL_DIR).chmod(0o644)  # listable, but no entry can be opened or stat'ed
    s.no_dac = True


# --- names ---------------------------------------------------------------------------------------

def long_rel(length: int) -> str:
    """A matching name of exactly `length` bytes."""
    return named("R5_" + "x" * (length - len(PREFIX) - len("R5_.fastq.gz")))


def long_name(length: int, good: bool):
    def arrange(s: Scene) -> None:
        rel = long_rel(length)
        assert len(os.path.basename(rel)) == length
        s.add(rel)
        if good:
            s.good.append(rel)
    return arrange


DEEP_REL = "scRNA/evil/" + "/".join(f"{i:02d}" + "d" * 218 for i in range(20)) + "/SEQ_ABCDE/" + PREFIX + "R5_001.fastq.gz"


def over_path_max(s: Scene) -> None:
    """Folders created one level at a time through descriptors: the full path exceeds PATH_MAX."""
    parts = DEEP_REL.split("/")
    fd = os.open(s.drop.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        os.write(out, b"@deep\nACGT\n+\nIIII\n")
        os.close(out)
    finally:
        os.close(fd)
    assert len(str(s.drop.path / DEEP_REL).encode()) > 4096


NON_UTF8_REL = os.fsdecode(os.fsencode(EVIL_DIR) + b"/" + PREFIX.encode() + b"R5_\xff\xfe.fastq.gz")


def synced_names(rels: tuple[str, ...]):
    def arrange(s: Scene) -> None:
        for rel in rels:
            s.add(rel)
            s.good.append(rel)
    return arrange


def synced_name(rel: str):
    return synced_names((rel,))


SHOWN_NAMES = (named("R5_\x1b]0;pwned\x07\x1b[2J\x1b[31mred"), f"{EVIL_DIR}/[bold red]x[/]{PREFIX}R6_[bold]y.fastq.gz")
ODD_NAMES = (named("R5_a\nb"), named("R6_a\\b"), named("R7_$(touch pwned);`id`'q\"-- -rf *"))


def non_utf8(s: Scene) -> None:
    s.add(NON_UTF8_REL, b"@bytes\nACGT\n+\nIIII\n")


# --- sidecars --------------------------------------------------------------------------------

MALFORMED_MD5 = {
    fastq_relpath(phase="evil", read=5): b"this is not a checksum\n",
    fastq_relpath(phase="evil", read=6): b"d41d8cd98f00b204e9800998ecf8427  x\n",  # 31 hex digits
    fastq_relpath(phase="evil", read=7): b"",
    fastq_relpath(phase="evil", read=8): b"\x00\xff\xfe\x00" * 64,
    fastq_relpath(phase="evil", read=9): b"%s  a\n%s  b\n" % ((b"0" * 32,) * 2),  # two entries
}


def md5_variants(s: Scene) -> None:
    for rel, content in MALFORMED_MD5.items():
        s.hostile(rel)
        s.path(rel + ".md5").write_bytes(content)


def md5_oversized(s: Scene) -> None:
    s.hostile()
    s.path(H + ".md5").write_bytes(b"d41d8cd98f00b204e9800998ecf8427e" * (10 * 1024 * 1024 // 32))


def md5_uppercase(s: Scene) -> None:
    s.drop.add_file(H, md5="correct")
    sidecar = s.path(H + ".md5")
    digest, name = sidecar.read_text().split("  ", 1)
    sidecar.write_text(f"{digest.upper()}  {name}")
    s.good.append(H)


def md5_not_regular(s: Scene) -> None:
    s.drop.add_file(H, md5="correct")
    sidecar = s.path(H + ".md5")
    copy = s.canary / "copied.md5"
    copy.write_bytes(sidecar.read_bytes())
    sidecar.unlink()
    os.symlink(copy, sidecar)
    s.hostile(H6)
    os.symlink("/dev/zero", s.path(H6 + ".md5"))
    s.hostile(H7)
    s.path(H7 + ".md5").mkdir()


def blake3_link(s: Scene) -> None:
    s.hostile()
    os.symlink(s.victim, s.path(H + ".blake3"))


CASES = [
    Case("fifo_as_source", SPECIAL, "a FIFO is never opened: held like every non-regular entry", fifo_source, 1,
         {H: "unsafe_path"}),
    Case("socket_and_device_as_sources", SPECIAL, "a socket and a character device (/dev/zero's numbers) named "
         "like data are held, never opened", socket_and_device, 1, {H: "unsafe_path", H6: "unsafe_path"}),
    Case("fifo_sidecars", SPECIAL, "a FIFO .md5 and a FIFO where the .blake3 goes: bad sidecars, never opened "
         "(opening would block)", fifo_sidecars, 1, {H: "bad_sidecar", H6: "bad_sidecar"}),
    Case("fifo_as_rsync_sentinel", SPECIAL,
         "a sentinel that is a FIFO never says 0: the drop is not ready, the run is refused without blocking",
         fifo_sentinel, 3),
    Case("unreadable_file_and_sidecar", UNREADABLE, "EACCES on one source, and on another's .md5: those files "
         "held, the rest syncs", unreadable_file_and_sidecar, 1, {H: "unreadable", H6: ("bad_sidecar", "unreadable")}),
    Case("unreadable_folder", UNREADABLE, "a folder that cannot be listed is held, the rest syncs", unreadable_folder,
         1, shown=("unreadable",)),
    Case("untraversable_folder", UNREADABLE, "a folder without search permission is held, the rest syncs",
         untraversable_folder, 1, shown=("unreadable",)),
    Case("name_250_bytes", NAME, "too long for its .blake3 sidecar and target (NAME_MAX 255)", long_name(250, False), 1,
         {long_rel(250): "bad_name"}),
    Case("name_242_bytes_fits", NAME, "the longest name whose target (+6) and target sidecar (+7) still fit syncs",
         long_name(242, True), 0),
    Case("path_over_path_max", NAME, "a matching file past PATH_MAX is held (it, or the folder that cannot be "
         "listed, as bad_name), never a crash nor silently skipped", over_path_max, 1, shown=("bad_name",)),
    Case("name_not_utf8", NAME, "bytes that are not UTF-8 are held (shown escaped)", non_utf8, 1, shown=("bad_name",)),
    Case("names_with_newline_backslash_shell", NAME, "a newline, a backslash, shell syntax: legal name bytes, "
         "synced (sidecars escape as md5sum/b3sum do)", synced_names(ODD_NAMES), 0),
    Case("names_with_escapes_and_markup", NAME, "terminal escapes and rich markup (a '[/]' across a folder and a "
         "name) in names: synced, printed escaped and literal, never interpreted", synced_names(SHOWN_NAMES), 0),
    Case("md5_malformed", SIDECAR, "five malformed sidecars, one file each: each file held, the drop goes on",
         md5_variants, 1, {rel: "bad_sidecar" for rel in MALFORMED_MD5}),
    Case("md5_oversized", SIDECAR, "10 MB is no sidecar: refused without slurping", md5_oversized, 1,
         {H: "bad_sidecar"}),
    Case("md5_uppercase_hex", SIDECAR, "an upper-case digest is the same MD5: synced", md5_uppercase, 0),
    Case("md5_not_a_regular_file", SIDECAR, "a sidecar that is a link (to a correct digest outside, to /dev/zero) "
         "or a folder: each file held, nothing read through it", md5_not_regular, 1,
         {H: "bad_sidecar", H6: "bad_sidecar", H7: "bad_sidecar"}),
    Case("blake3_symlink_to_outside", SIDECAR, "writing the .blake3 never follows a link at its name", blake3_link, 1,
         {H: "bad_sidecar"}),
]
