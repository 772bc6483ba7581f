"""The gpg binary: version check, recipient lookup, passphrase pipes, key wrapping and rotation."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dropsync_dagster.core.errors import ConfigError, DropsyncError, IntegrityError
from dropsync_dagster.core.fs.staging import write_atomic

MIN_VERSION = (2, 1)  # loopback pinentry, needed to feed a passphrase through a descriptor
NO_SYMKEY_CACHE_SINCE = (2, 2, 7)  # older gpg cannot keep symmetric passphrases out of the agent
PASSPHRASE = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"^gpg \(GnuPG[^)]*\) (\d+)\.(\d+)(?:\.(\d+))?", re.MULTILINE)
_UNUSABLE = set("rdei")  # revoked, disabled, expired, invalid (field 2 of --with-colons)
# Key stretching protects guessable passphrases; an archive's is 256 random bits, so the default
# (the agent's calibration, ~65 M SHA iterations, ~0.1-0.3 s on each encrypt and each decrypt)
# buys nothing. 65536 is the smallest count gpg 2.2 honours (below 65536 it silently uses the
# maximum). The packet stays iterated+salted S2K: `gpg --decrypt` restores it unchanged.
ARCHIVE_S2K = ("--s2k-mode", "3", "--s2k-digest-algo", "SHA256", "--s2k-count", "65536")
PIPE_SIZE = 1024 * 1024  # a pipe to or from gpg holding a whole 1 MiB chunk: both sides overlap instead of taking turns


@dataclass(frozen=True)
class Gpg:
    """A checked gpg binary and the keyring (GNUPGHOME) it works with."""

    binary: str
    version: tuple[int, int, int]
    gnupghome: str | None

    def command(self, *args: str) -> list[str]:
        """A gpg command line in batch mode against this keyring."""
        home = ["--homedir", self.gnupghome] if self.gnupghome else []
        return [self.binary, "--batch", "--no-tty", *home, *args]

    def symmetric_args(self, passphrase_fd: int) -> list[str]:
        """Options that read a symmetric passphrase from `passphrase_fd`, never caching it in the agent."""
        args = ["--pinentry-mode", "loopback", "--passphrase-fd", str(passphrase_fd)]
        if self.version >= NO_SYMKEY_CACHE_SINCE:
            args.append("--no-symkey-cache")
        return args

    def run(self, args: Sequence[str], what: str, stdin: bytes = b"") -> bytes:
        """Run gpg with `stdin` piped in; its stdout, or DropsyncError naming `what` and gpg's reason."""
        proc = subprocess.run(self.command(*args), input=stdin, capture_output=True, check=False)
        if proc.returncode != 0:
            raise DropsyncError(f"{what}: gpg failed: {last_line(proc.stderr)}")
        return proc.stdout


def find_gpg(gnupghome: str | None = None) -> Gpg:
    """The `gpg` on PATH, checked to be at least 2.1; missing or too old is a ConfigError."""
    binary = shutil.which("gpg")
    if binary is None:
        raise ConfigError("gpg not found on PATH: install GnuPG >= 2.1")
    return Gpg(binary, _version(binary), gnupghome)


@lru_cache(maxsize=8)
def _version(binary: str) -> tuple[int, int, int]:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"gpg at {binary} does not run: {exc}") from exc
    found = _VERSION.search(out.decode(errors="replace"))
    if found is None:
        raise ConfigError(f"gpg at {binary} reports no GnuPG version")
    version = (int(found[1]), int(found[2]), int(found[3] or 0))
    if version[:2] < MIN_VERSION:
        raise ConfigError(f"gpg at {binary} is {'.'.join(map(str, version))}: GnuPG >= 2.1 is required")
    return version


def check_gpg(gnupghome: str | None = None) -> str:
    """The version of the usable gpg (e.g. '2.2.40'); ConfigError when missing or older than 2.1."""
    return ".".join(map(str, find_gpg(gnupghome).version))


def recipient_fingerprints(recipients: Sequence[str], gnupghome: str | None = None) -> list[str]:
    """Primary fingerprints of the recipients' encryption keys; missing/ambiguous is a ConfigError."""
    gpg = find_gpg(gnupghome)
    if not recipients:
        raise ConfigError("DROPSYNC_GPG_RECIPIENTS: no recipient configured")
    fingerprints: list[str] = []
    for recipient in recipients:
        proc = subprocess.run(
            gpg.command("--with-colons", "--fixed-list-mode", "--list-keys", "--", recipient),
            capture_output=True, check=False,
        )
        usable = _encryption_keys(proc.stdout.decode(errors="replace")) if proc.returncode == 0 else []
        if not usable:
            raise ConfigError(
                f"DROPSYNC_GPG_RECIPIENTS: no usable encryption key for '{recipient}' in keyring {_home(gpg)}"
            )
        if len(usable) > 1:
            raise ConfigError(f"DROPSYNC_GPG_RECIPIENTS: '{recipient}' matches {len(usable)} keys; use a fingerprint")
        if usable[0] not in fingerprints:
            fingerprints.append(usable[0])
    return fingerprints


def _encryption_keys(colons: str) -> list[str]:
    """Fingerprints of valid primary keys that can encrypt, from `--with-colons` output."""
    keys: list[str] = []
    wanted = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            # Field 12 in capitals is the whole key's capability: 'E' means some subkey encrypts.
            wanted = fields[1] not in _UNUSABLE and "E" in fields[11] and "D" not in fields[11]
        elif fields[0] == "fpr" and wanted:
            keys.append(fields[9])
            wanted = False
        elif fields[0] == "sub":
            wanted = False
    return keys


def _home(gpg: Gpg) -> str:
    return gpg.gnupghome or "the default keyring (GNUPGHOME, else ~/.gnupg)"  # gpg reads its own default


def widen_pipe(fd: int) -> None:
    """Grow the pipe behind `fd` to PIPE_SIZE bytes. With Linux's default 64 KiB a 1 MiB write waits
    for gpg to drain it, and gpg then waits while we read and hash the next chunk. Where the
    per-user pipe-buffer limit refuses (EPERM) the pipe keeps its size: slower, never wrong."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except PermissionError:
        return


@contextmanager
def passphrase_fd(passphrase: str) -> Iterator[int]:
    """A pipe's read end holding `passphrase` (no newline), for `--passphrase-fd`; never a file."""
    read_end, write_end = os.pipe()
    try:
        # 64 bytes always fit the pipe buffer, so writing before gpg starts cannot block.
        os.write(write_end, passphrase.encode("ascii"))
    finally:
        os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)


def wrap_key(gpg: Gpg, passphrase: str, fingerprints: Sequence[str], name: str) -> bytes:
    """`passphrase` public-key encrypted to every fingerprint (one message all of them can open)."""
    args = ["--trust-model", "always", "--encrypt"]
    for fpr in fingerprints:
        args += ["--recipient", fpr]
    return gpg.run(args, f"wrapping key {name}", stdin=passphrase.encode("ascii"))


def unwrap_key(key_file: Path, gnupghome: str | None = None) -> str:
    """Decrypt a wrapped key with a secret key of the keyring; the hex passphrase it holds."""
    gpg = find_gpg(gnupghome)
    passphrase = gpg.run(["--decrypt", str(key_file)], f"unwrapping {key_file}").decode("ascii", "replace")
    if not PASSPHRASE.fullmatch(passphrase):
        raise IntegrityError(f"{key_file}: does not hold a 64-hex-digit passphrase")
    return passphrase


def rewrap_key(key_file: Path, recipients: Sequence[str], gnupghome: str | None = None) -> list[str]:
    """Re-wrap an archive key to a new recipient set, replacing `key_file` atomically; the archive is untouched."""
    key_file = Path(key_file)
    fingerprints = recipient_fingerprints(recipients, gnupghome)
    passphrase = unwrap_key(key_file, gnupghome)
    write_atomic(key_file, wrap_key(find_gpg(gnupghome), passphrase, fingerprints, key_file.name), mode=0o600)
    return fingerprints


def last_line(stderr: bytes) -> str:
    """The last non-empty line of gpg's stderr: its reason for failing."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
