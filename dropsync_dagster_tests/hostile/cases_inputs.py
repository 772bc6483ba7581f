"""Hostile metadata sources (CSV/Excel) and deployment settings."""

from __future__ import annotations

import io
import os
import zipfile

from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.hostile.harness import Case
from dropsync_dagster_tests.hostile.scene import Scene

METADATA = "metadata source"
SETTINGS = "deployment settings"
MANIFEST = "manifests/samples.csv"
GOOD_ROWS = b"Prefix,Name\nABC_DEFGHI_S1_L001,ok\n"
XYZ = fastq_relpath(phase="evil", lib="XYZ_HOSTIL", read=5)  # prefix XYZ_HOSTIL_S1_L001


def with_source(path: str = MANIFEST, kind: str = "csv", content: bytes | None = GOOD_ROWS):
    """A metadata-matched config (`<samples.Name>` in the target); `path` may use {canary}."""
    def arrange(s: Scene) -> None:
        rel = path.format(canary=s.canary)
        if content is not None:
            s.add(rel, content)
        s.config.update(
            metadata_sources=[{"name": "samples", "type": kind, "path": rel}],
            metadata_match={"key_template": "<prefix>", "search": [{"source": "samples", "field": "Prefix"}]},
            metadata_required=True,
            repository_filename="scRNA/raw/<phase>/<samples.Name>/<lib>_<seq>_r<run>__<suffix>.fastq.gz",
        )
    return arrange


def then(first, second):
    def arrange(s: Scene) -> None:
        first(s)
        second(s)
    return arrange


def link_manifest(target: str):
    def arrange(s: Scene) -> None:
        s.link(MANIFEST, target.format(canary=s.canary))
    return arrange


def fifo_manifest(s: Scene) -> None:
    s.fifo(MANIFEST)


def unreadable_manifest(s: Scene) -> None:
    s.path(MANIFEST).chmod(0)
    s.no_dac = True


def wide_csv() -> bytes:
    columns = 1_000_000
    header = "Prefix,Name," + ",".join(f"c{i}" for i in range(2, columns))
    return (header + "\nABC_DEFGHI_S1_L001,ok" + "," * (columns - 2) + "\n").encode()


def hostile_row(value: bytes):
    def arrange(s: Scene) -> None:
        s.add(XYZ)
        s.add(MANIFEST, GOOD_ROWS + b"XYZ_HOSTIL_S1_L001," + value + b"\n")
    return arrange


def zip_not_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "a zip, but no workbook inside")
    return buffer.getvalue()


def setting(name: str, value: str):
    def arrange(s: Scene) -> None:
        s.env[name] = value.format(scratch=s.scratch, base=s.base)
    return arrange


CASES = [
    Case("csv_outside_roots", METADATA, "a CSV outside the drop and the allowed roots is never read (the issue leaked it)",
         with_source("{canary}/secret.csv", content=None), 2, said=("samples",)),
    Case("csv_dotdot_out_of_drop", METADATA, "`..` out of the drop to a root-only CSV",
         with_source("../../../canary/secret.csv", content=None), 2, said=("samples",)),
    Case("csv_link_to_root_only", METADATA, "a manifest link leading to a root-only file outside the roots",
         then(with_source(content=None), link_manifest("{canary}/secret.csv")), 2, said=("samples",)),
    Case("csv_link_to_dev_zero", METADATA, "an endless device is no CSV: refused, never read",
         then(with_source(content=None), link_manifest("/dev/zero")), 2, said=("samples",)),
    Case("csv_fifo", METADATA, "a FIFO manifest is refused without blocking",
         then(with_source(content=None), fifo_manifest), 2, said=("samples",)),
    Case("csv_unreadable", METADATA, "EACCES on the manifest is one configuration line",
         then(with_source(), unreadable_manifest), 2, said=("samples",)),
    Case("csv_million_columns", METADATA, "a 1 M-column CSV is refused over the caps (it ran past 60 s)",
         with_source(content=wide_csv()), 2, said=("samples",)),
    Case("csv_nul_in_value", METADATA, "a NUL in a metadata value that lands in a path holds that file (was a traceback)",
         then(with_source(content=None), hostile_row(b"ev\0il")), 1, {XYZ: ("unsafe_path", "bad_name")}),
    Case("csv_value_with_dotdot", METADATA, "a metadata value `../..` in a target holds that file",
         then(with_source(content=None), hostile_row(b"../../../../outside")), 1, {XYZ: "unsafe_path"}),
    Case("xlsx_garbage", METADATA, "an .xlsx that is not a zip", with_source("manifests/s.xlsx", "excel", os.urandom(2048)),
         2, said=("samples",)),
    Case("xlsx_zip_not_workbook", METADATA, "a zip that is not a workbook (was a traceback)",
         with_source("manifests/s.xlsx", "excel", zip_not_workbook()), 2, said=("samples",)),
    Case("allowed_roots_slash", SETTINGS, "`/` would allow every write", setting("DROPSYNC_ALLOWED_ROOTS", "/"), 2,
         said=("DROPSYNC_ALLOWED_ROOTS",)),
    Case("allowed_roots_relative", SETTINGS, "a relative root depends on the working folder",
         setting("DROPSYNC_ALLOWED_ROOTS", "repository:processed"), 2, said=("DROPSYNC_ALLOWED_ROOTS",)),
    Case("allowed_roots_missing", SETTINGS, "a root that does not exist is a typo",
         setting("DROPSYNC_ALLOWED_ROOTS", "{scratch}/repositroy:{scratch}/processed"), 2,
         said=("DROPSYNC_ALLOWED_ROOTS",)),
    Case("drop_roots_missing", SETTINGS, "a drop root that does not exist", setting("DROPSYNC_DROP_ROOTS", "seq={base}/nope"),
         2, said=("DROPSYNC_DROP_ROOTS",)),
    Case("drop_roots_slash", SETTINGS, "`/` as a drop root makes every folder a drop", setting("DROPSYNC_DROP_ROOTS", "seq=/"),
         2, said=("DROPSYNC_DROP_ROOTS",)),
    Case("drop_roots_relative", SETTINGS, "a relative drop root", setting("DROPSYNC_DROP_ROOTS", "seq=drops"), 2,
         said=("DROPSYNC_DROP_ROOTS",)),
    Case("quiet_seconds_nan", SETTINGS, "nan compares false with everything", setting("DROPSYNC_QUIET_SECONDS", "nan"), 2,
         said=("DROPSYNC_QUIET_SECONDS",)),
    Case("quiet_seconds_inf", SETTINGS, "inf never elapses", setting("DROPSYNC_QUIET_SECONDS", "inf"), 2,
         said=("DROPSYNC_QUIET_SECONDS",)),
    Case("quiet_seconds_negative", SETTINGS, "a negative quiet period", setting("DROPSYNC_QUIET_SECONDS", "-5"), 2,
         said=("DROPSYNC_QUIET_SECONDS",)),
    Case("lease_seconds_nan", SETTINGS, "a nan lease never expires or always has", setting("DROPSYNC_LEASE_SECONDS", "nan"),
         2, said=("DROPSYNC_LEASE_SECONDS",)),
    Case("max_failures_negative", SETTINGS, "a negative failure budget", setting("DROPSYNC_MAX_FAILURES", "-1"), 2,
         said=("DROPSYNC_MAX_FAILURES",)),
]
