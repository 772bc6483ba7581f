"""`archived_originals`: originals move to the processed folder only when every gate held."""

import dagster as dg

from dropsync_dagster.assets.ownership import held
from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import (
    check_result,
    counts_metadata,
    drop_check,
    drop_state_metadata,
    held_metadata,
    tally,
)
from dropsync_dagster.core.integrity.checks import original_problems
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.steps.labkey_records import recorded_files
from dropsync_dagster.core.integrity.lineage import MOVES, MoveIntents, as_outcomes, confirm_intents, intended_moves, lineage_docs
from dropsync_dagster.core.steps.archived_originals import move_originals
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ArchiveStepResult, ChecksumsResult, CopiesResult, LabKeyResult, OriginalsResult
from dropsync_dagster.core.stewardship.quarantine import quarantine_docs, quarantined
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

ARCHIVED_ORIGINALS = "archived_originals"  # this asset, whose result the step writes before marking the drop synced
ORIGINALS_CHECK = "originals_accounted_for"
ORIGINALS_CHECK_DESCRIPTION = (
    "Proves that every matched file is in exactly one place: moved to the processed folder with "
    "its checksum intact, or still in the drop with a reason. Fails with ERROR when a file is "
    "lost, in both places or altered: compare the drop, the processed folder and `dropsync lineage`. "
    "Fails with WARN (not blocking) while files are held back, listing them with their reasons: "
    "fix the cause (e.g. re-transfer a file whose .md5 does not match) and materialise the drop again."
)


@drop_asset(
    OriginalsResult,
    {"python"},
    [drop_check(ORIGINALS_CHECK, "archived_originals", ORIGINALS_CHECK_DESCRIPTION, blocking=False)],
)
def archived_originals(
    context: dg.AssetExecutionContext, drop_manifest: Plan, drop_checksums: ChecksumsResult,
    repository_copies: CopiesResult, encrypted_archive: ArchiveStepResult, labkey_records: LabKeyResult | None,
    storage: StorageResource, status: StatusResource,
) -> dg.MaterializeResult:
    """Move each original whose copy is verified (and recorded/archived where required)."""
    plan, checksums, copies, archive, labkey = drop_manifest, drop_checksums, repository_copies, encrypted_archive, labkey_records
    # Only files whose validated archive copy matches their checksum may leave the drop.
    hashed = {r: c.digests.blake3 for r, c in checksums.files.items() if c.digests is not None}
    archived = {r for r, b3 in archive.archived.items() if hashed.get(r) == b3}
    # Where the drop writes LabKey rows, only files whose row this plan's write-back confirmed move.
    recorded, row_ids = recorded_files(plan, labkey), labkey.row_ids() if labkey is not None else None
    with held(context, status, storage, plan) as step:
        store = step.store
        earlier = step.results.read(MOVES, MoveIntents)  # of any plan
        if earlier is not None:  # a run that died mid-move: its lineage says `intended` until confirmed
            confirm_intents(store, earlier)
        intents = intended_moves(plan, checksums, copies, recorded=recorded,
                                 archived=archived if archive.enabled else None)
        # Write-ahead: what the moves will do is recorded (state folder, then lineage) before any is done.
        step.record(MOVES, intents)
        store.put_files(plan.drop, lineage_docs(plan, checksums, copies, archive, as_outcomes(intents), row_ids=row_ids))
        originals = move_originals(
            plan, checksums, copies, storage.settings(),
            recorded=recorded, archived=archived if archive.enabled else None, guard=step.guard,
        )
        lineage = lineage_docs(plan, checksums, copies, archive, originals, row_ids=row_ids)
        store.put_files(plan.drop, lineage)
        in_quarantine = quarantined(storage.settings().quarantine_dir, plan.drop)
        store.put_files(plan.drop, quarantine_docs(in_quarantine))
        outcomes = tally([m.label for m in originals.files.values()])
        step.record(ARCHIVED_ORIGINALS, originals)  # on disk before the drop says synced (the IO manager writes it again)
        doc = store.mark_synced(plan.drop, step.owner, outcomes)
    held_back = held_files(plan, checksums, copies, labkey, originals)
    return dg.MaterializeResult(
        value=originals,
        metadata={
            "files": len(originals.files),
            **counts_metadata(outcomes, "outcome/"),
            **held_metadata(held_back),
            "quarantined_files": len(in_quarantine),
            **drop_state_metadata(doc, plan, lineage),
        },
        check_results=[check_result(ORIGINALS_CHECK, original_problems(plan, originals, checksums),
                                    [f"{h.file}: held back ({h.reason})" for h in held_back], drop=plan.drop)],
    )
