"""The alert messages: a failed run, a drop reaching `failed`, held or quarantined files, a failed
audit. Each is one Alert whose key names the event, so it is sent once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from dropsync_dagster.core.stewardship.alerts import Alert, Mark
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


class StatusAlerts(NamedTuple):
    """What the status store's present state calls for."""

    alerts: list[Alert]  # messages built this time (events not met before)
    current: list[str]  # the key of every event present now
    marks: dict[str, Mark]  # drop -> its update time and held-files key, so its files are read once


def status_alerts(store: StatusStore, marks: Mapping[str, Mark]) -> StatusAlerts:
    """Failed drops and drops holding files; a drop's files are read only when the drop changed
    since `marks` saw it (a sensor tick must not read every held file every 30 seconds)."""
    alerts, current, seen = [], [], {}
    for doc in store.list():
        if doc.status == DropState.FAILED:
            alerts.append(drop_failed(doc))
            current.append(alerts[-1].key)
        elif doc.status == DropState.SYNCED and held_counts(doc):
            stamp, mark = doc.updated_at.isoformat() if doc.updated_at else "", marks.get(doc.id)
            if mark is None or mark.stamp != stamp:
                held = [(f.relpath, _label(f.model_extra or {})) for f in store.drop_files(doc.id)]
                alerts.append(files_held(doc, [(rel, label) for rel, label in held if label != SYNCED_LABEL]))
                mark = Mark(stamp=stamp, key=alerts[-1].key)
            seen[doc.id] = mark
            current.append(mark.key)
    return StatusAlerts(alerts, current, seen)


def _label(extra: dict) -> str:
    move, reason = extra.get("move"), extra.get("held_reason")
    return f"{move}:{reason}" if reason else str(move or "not moved")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
