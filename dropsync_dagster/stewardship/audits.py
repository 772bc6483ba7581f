"""Scheduled fixity audits: asset checks on the repository copies and the archive, per drop.

`fixity_audit` runs only these checks, for one drop partition; the schedule built by
`fixity_audit_schedule(audit)` launches one run per registered drop at the deployment's
DROPSYNC_AUDIT_CRON (default daily at 03:00) re-reading DROPSYNC_AUDIT_SAMPLE of the files
(default all of them, least recently verified first).
"""

import dagster as dg

from dropsync_dagster.assets.event_metadata import check_result, drop_check
from dropsync_dagster.core.stewardship.settings import AuditSettings
from dropsync_dagster.core.stewardship.verify import DropAudit, audit_drop, parse_fraction
from dropsync_dagster.partitions import drops
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

REPOSITORY_FIXITY = "repository_fixity"
ARCHIVE_FIXITY = "archive_fixity"
PARTITION_TAG = "dagster/partition"
AUDIT_JOB = "fixity_audit"

REPOSITORY_DESCRIPTION = (
    "Fixity audit: re-reads the drop's repository copies from disk (not the page cache) and "
    "compares BLAKE3 (and MD5 where recorded) with the lineage. When it fails: the listed copies "
    "are missing or rotted — restore them with `dropsync restore DROP --files GLOB`."
)
ARCHIVE_DESCRIPTION = (
    "Fixity audit: decrypts every archive generation of the drop, checks gpg's integrity code and "
    "re-hashes each member against its members index and the lineage. When it fails: the listed "
    "generation is damaged or gone — re-archive the drop from its repository copies."
)


class AuditConfig(dg.Config):
    """How much of the drop one audit re-reads."""

    sample: float = 1.0  # fraction of repository copies and archive generations, least recently verified first
    archives: bool = True  # decrypt the archive generations (the keyring must hold a recipient's secret key)


@dg.multi_asset_check(
    specs=[drop_check(REPOSITORY_FIXITY, "repository_copies", REPOSITORY_DESCRIPTION, blocking=False),
           drop_check(ARCHIVE_FIXITY, "encrypted_archive", ARCHIVE_DESCRIPTION, blocking=False)],
    name="fixity_checks",
    pool="gpg",
    can_subset=True,  # results only in the audit's own job, and the archive's only when it was audited
)
def fixity_checks(context: dg.AssetCheckExecutionContext, config: AuditConfig, storage: StorageResource,
                  gpg: GpgResource, status: StatusResource):
    """Audit the run's drop; a copy that differs or is missing fails its check (ERROR), naming it."""
    if context.run.job_name != AUDIT_JOB:
        return  # a Materialize of the assets in the UI selects their checks too: the audit is not due
    drop = context.run.tags[PARTITION_TAG]
    settings = storage.settings()
    seed = int((context.run.root_run_id or context.run.run_id).replace("-", "")[:8], 16)  # one sample per run and its re-executions
    audit = audit_drop(status.store(settings), drop, sample=parse_fraction(config.sample, "sample"), seed=seed,
                       archives=gpg.policy(settings) if config.archives else None)
    yield _result(REPOSITORY_FIXITY, "repository_copies", audit, "repository", files_reread=audit.repository_files,
                  files_recorded=audit.repository_total)
    if config.archives:
        yield _result(ARCHIVE_FIXITY, "encrypted_archive", audit, "archive",
                      generations=", ".join(map(str, audit.generations)) or "none", members_rehashed=audit.archive_members)


def _result(name: str, asset: str, audit: DropAudit, where: str, **metadata: object) -> dg.AssetCheckResult:
    result = check_result(name, [f.line() for f in audit.found(where)], drop=audit.drop, seed=audit.seed, **metadata)
    return result._replace(asset_key=dg.AssetKey(asset))


fixity_audit = dg.define_asset_job(
    AUDIT_JOB,
    selection=dg.AssetSelection.checks(fixity_checks),
    description="Re-read one drop's repository copies and archive generations and compare them with the lineage.",
)


def fixity_audit_schedule(audit: AuditSettings) -> dg.ScheduleDefinition:
    """The audit's schedule at the deployment's cron: one run per registered drop, each a partition
    of its own, re-reading the deployment's sample."""

    @dg.schedule(name="fixity_audit_schedule", cron_schedule=audit.cron, job=fixity_audit,
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def _schedule(context: dg.ScheduleEvaluationContext):
        when = context.scheduled_execution_time.isoformat()
        for drop in context.instance.get_dynamic_partitions(drops.name):
            yield dg.RunRequest(
                run_key=f"{drop}@{when}",
                tags={PARTITION_TAG: drop},  # the check-only job has no partitions of its own: the tag names the drop
                run_config={"ops": {"fixity_checks": {"config": {"sample": audit.sample, "archives": audit.archives}}}},
            )

    return _schedule
