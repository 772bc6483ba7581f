"""`encrypted_archive`: the drop as received, tar → gpg AES-256, key wrapped, validated by decryption."""

import dagster as dg

from dropsync_dagster.assets.ownership import held
from dropsync_dagster.assets.drop_asset import drop_asset
from dropsync_dagster.assets.event_metadata import check_result, drop_check, mib_per_s
from dropsync_dagster.core.steps.encrypted_archive import archive_drop, archive_problems
from dropsync_dagster.core.model import Plan
from dropsync_dagster.core.results import ArchiveStepResult, ChecksumsResult
from dropsync_dagster.resources.gpg import GpgResource
from dropsync_dagster.resources.status import StatusResource
from dropsync_dagster.resources.storage import StorageResource

ARCHIVE_CHECK = "archive_matches_checksums"
ARCHIVE_CHECK_DESCRIPTION = (
    "Proves that the drop's validated archive generations together hold every planned file with "
    "its BLAKE3, by decrypting and re-hashing them, not by gpg's exit code alone (passes with "
    "enabled=false when archives are off for the drop). Blocking: no original moves without it. "
    "When it fails: check gpg, the recipients' keys (DROPSYNC_GPG_RECIPIENTS, GNUPGHOME) and the "
    "archive folder, then materialise the drop again: a new generation is written, none overwritten."
)


@drop_asset(
    ArchiveStepResult,
    {"gpg"},
    [drop_check(ARCHIVE_CHECK, "encrypted_archive", ARCHIVE_CHECK_DESCRIPTION)],
    pool="gpg",
)
def encrypted_archive(
    context: dg.AssetExecutionContext, drop_manifest: Plan, drop_checksums: ChecksumsResult, storage: StorageResource,
    gpg: GpgResource, status: StatusResource,
) -> dg.MaterializeResult:
    """A new archive generation holding what earlier ones lack; disabled archives say why."""
    plan, checksums = drop_manifest, drop_checksums
    with held(context, status, storage, plan) as step:
        archived = archive_drop(plan, checksums, gpg.policy(storage.settings()), guard=step.guard)
    written = archived.written or {}
    metadata: dict[str, object] = {"enabled": archived.enabled, "why": archived.why}
    if archived.enabled:
        metadata.update({
            "generation": written.get("generation") or 0,
            "nothing_new": bool(written.get("nothing_to_archive")),
            "archive_path": dg.MetadataValue.path(str(written.get("archive_path") or "")),
            "archive_bytes": int(written.get("archive_size") or 0),
            "members": int(written.get("member_count") or 0),
            "wrapped_to": ", ".join(written.get("recipient_fingerprints") or []),
            "encrypt_MiB_per_s": mib_per_s(int(written.get("bytes_written") or 0), float(written.get("encrypt_seconds") or 0.0)),
            "validate_MiB_per_s": mib_per_s(int(written.get("bytes_written") or 0), float(written.get("validate_seconds") or 0.0)),
            "archived_files_total": len(archived.archived),
            "held_changed_since_plan": ", ".join(archived.changed) or "none",
        })
    return dg.MaterializeResult(
        value=archived,
        metadata=metadata,
        check_results=[check_result(ARCHIVE_CHECK, archive_problems(plan, checksums, archived), enabled=archived.enabled,
                                    drop=plan.drop)],
    )
