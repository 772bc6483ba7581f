"""The alert messages: a failed run, a drop reaching `failed`, held or quarantined files, a failed
audit. Each is one Alert whose key names the event, so it is sent once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from dropsync_dagster.core.stewardship.alerts import Alert
from dropsync_dagster.core.status.document import DropDoc, DropState
from dropsync_dagster.core.status.store import StatusStore

SYNCED_LABEL = "moved"
MAX_LISTED = 20  # files named in one message; the rest are counted


def run_failed(run_id: str, job: str, drop: str | None, error: str) -> Alert:
    """A Dagster run failed."""
    where = f" (drop {drop})" if drop else ""
    return Alert(key=f"run:{run_id}", subject=f"dropsync: run of {job}{where} failed",
                 text=f"Run {run_id} of job {job}{where} failed: {_first_line(error)}")


def check_failed(run_id: str, asset: str, check: str, failures: Sequence[tuple[str | None, str]], last_id: int) -> Alert:
    """ERROR-severity evaluations of one check (an audit) failed in one run; `failures` are
    (partition — the drop — or None, why), `last_id` the newest evaluation's id (the event)."""
    drops = sorted({p for p, _ in failures if p})
    where = f" for {len(drops)} drop(s)" if drops else ""
    lines = [f"  {p or asset}: {_first_line(why) or 'see the run'}" for p, why in failures[:MAX_LISTED]]
    more = [f"  … and {len(failures) - MAX_LISTED} more"] if len(failures) > MAX_LISTED else []
    return Alert(key=f"check:{run_id}:{asset}:{check}:{last_id}", subject=f"dropsync: check {check} on {asset} failed{where}",
                 text="\n".join([f"Asset check {check} on {asset} failed (run {run_id}):", *lines, *more]))


def drop_failed(doc: DropDoc) -> Alert:
    """A drop reached `failed`: no run claims it until `dropsync reset`."""
    stamp = doc.updated_at.isoformat() if doc.updated_at else ""
    return Alert(key=f"failed:{doc.id}:{stamp}", subject=f"dropsync: drop {doc.id} failed",
                 text=f"Drop {doc.id} ({doc.path}) failed {doc.failure_count} times; last error: "
                      f"{_first_line(doc.last_error or 'none recorded')}. Fix the cause, then `dropsync reset {doc.id}`.")


def files_held(doc: DropDoc, files: Sequence[tuple[str, str]]) -> Alert:
    """Files of a drop held back or quarantined; `files` are (relative path, outcome label)."""
    labels = sorted(f"{label}={n}" for label, n in held_counts(doc).items())
    digest = hashlib.sha256("\n".join(sorted(f"{r}\t{l}" for r, l in files) or labels).encode()).hexdigest()[:16]
    listed = [f"  {rel}: {label}" for rel, label in sorted(files)[:MAX_LISTED]]
    more = [f"  … and {len(files) - MAX_LISTED} more"] if len(files) > MAX_LISTED else []
    return Alert(key=f"held:{doc.id}:{digest}", subject=f"dropsync: files held in drop {doc.id}",
                 text="\n".join([f"Drop {doc.id} ({doc.path}) holds back files ({', '.join(labels)}):",
                                 *listed, *more]))


def held_counts(doc: DropDoc) -> dict[str, int]:
    """The drop's last run's outcomes other than `moved` (held, exists, quarantined…), with counts."""
    return {label: n for label, n in (doc.counts or {}).items() if label != SYNCED_LABEL and n}


def status_alerts(store: StatusStore) -> list[Alert]:
    """The alerts the status store's present state calls for: failed drops, drops holding files."""
    out = []
    for doc in store.list():
        if doc.status == DropState.FAILED:
            out.append(drop_failed(doc))
        elif doc.status == DropState.SYNCED and held_counts(doc):
            held = [(f.relpath, _label(f.model_extra or {})) for f in store.files_of(doc.id)]
            out.append(files_held(doc, [(rel, label) for rel, label in held if label != SYNCED_LABEL]))
    return out


def _label(extra: dict) -> str:
    move, reason = extra.get("move"), extra.get("held_reason")
    return f"{move}:{reason}" if reason else str(move or "not moved")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
