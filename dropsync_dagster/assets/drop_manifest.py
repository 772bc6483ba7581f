"""`drop_manifest`: the frozen plan. Materialising it alone is the dry run."""

import dagster as dg

from dropsync_dagster.core.testhooks import hook

from dropsync_dagster.assets.ownership import claim_plan, dry_run, ready_or_override, return_quarantined
from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import (
    SHOWN_ROWS,
    check_result,
    counts_metadata,
    drop_check,
    held_metadata,
    markdown_table,
    plan_metadata,
    tally,
)
from dropsync_dagster.core.integrity.checks import target_problems
from dropsync_dagster.core.syncyml.schema import CONFIG_NAME, load_config
from dropsync_dagster.core.archive.gpg import recipient_fingerprints
from dropsync_dagster.core.held import held_files
from dropsync_dagster.core.labkey.planning import plan_drop
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.plan.frozen import prune_plans
from dropsync_dagster.core.plan.report import labkey_create_rows, labkey_diff_rows
from dropsync_dagster.core.drops.registry import locate
from dropsync_dagster.core.stewardship.quarantine_return import returned_docs
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.labkey import LabKeyResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

TARGETS_CHECK = "targets_unique_and_inside_repository"
TARGETS_CHECK_DESCRIPTION = (
    "Proves that every file going ahead has a target of its own, inside the repository folder "
    "(symlinks resolved). Blocking: nothing is copied while it fails. When it fails: fix "
    "`repository_filename` (or the variables it uses) in the drop's sync.yml so that the listed "
    "targets differ and stay inside the repository, then materialise the drop again."
)


@drop_asset(
    Plan,
    {"python", "yaml"},
    [drop_check(TARGETS_CHECK, "drop_manifest", TARGETS_CHECK_DESCRIPTION)],
)
def drop_manifest(
    context: dg.AssetExecutionContext, storage: StorageResource, gpg: GpgResource, labkey: LabKeyResource,
    status: StatusResource,
) -> dg.MaterializeResult:
    """The drop's plan from its sync.yml: variables, metadata, targets, gates, reasons and LabKey
    write actions (with the update diffs and planned creates), frozen as JSON Lines."""
    settings = storage.settings()
    folder = locate(status.store(settings), settings, context.partition_key)
    override = ready_or_override(context, storage, folder.key, str(folder.path))
    config = load_config(folder.path / CONFIG_NAME)
    policy = gpg.policy(settings)
    if policy.decide(config.archive).enabled:
        # A recipient missing from the keyring is a configuration error before any work starts.
        recipient_fingerprints(policy.recipients, policy.gnupghome)
    plan = plan_drop(folder, config, settings, labkey.client)
    hook("planned", drop=plan.drop)
    claim_plan(context, status, storage, plan, override)  # before the plan is written: refused runs write nothing
    returned, finished = [], []
    if not dry_run(context):  # holding the drop: quarantine first, then earlier runs' frozen plans go
        returned, finished = return_quarantined(context, status, storage, folder)
        prune_plans(settings.state_dir, folder.key)
    if returned:  # quarantined originals whose corrected sidecar arrived are back in the drop: plan them too
        status.store(settings).put_files(folder.key, returned_docs(returned))
    if returned or finished:  # ... and files whose cut-short move into quarantine was finished left it
        plan = plan_drop(folder, config, settings, labkey.client)
        claim_plan(context, status, storage, plan, override)
    metadata = {**plan_metadata(plan), **held_metadata(held_files(plan))}
    if plan.labkey_configured:
        metadata.update(counts_metadata(tally([str(e.write_action) for e in plan.entries if e.matched]), "write_action/"))
        # The UI shows the first rows; counts are in write_action/*, everything in the plan JSON.
        metadata["labkey_update_diffs"] = markdown_table(labkey_diff_rows(plan, SHOWN_ROWS))
        metadata["labkey_planned_creates"] = markdown_table(labkey_create_rows(plan, SHOWN_ROWS))
    return dg.MaterializeResult(
        value=plan,  # frozen by the IO manager (resources/drop_results.py)
        metadata=metadata,
        check_results=[check_result(TARGETS_CHECK, target_problems(plan), drop=plan.drop)],
    )
