"""`dropsync verify`: a fixity audit of repository copies (and archives) against their lineage."""

from __future__ import annotations

import secrets
import sys

import click

from dropsync_dagster.cli.console import shown
from dropsync_dagster.core.drops.discovery import key_of
from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.stewardship.verify import audit_drop, parse_fraction
from dropsync_dagster.deployment import deployment_from_env


@click.command()
@click.argument("drops", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Audit every registered drop.")
@click.option("--sample", default="1", metavar="FRACTION", help="Audit this fraction of files, least recently verified first.")
@click.option("--seed", type=int, default=None, help="Seed of the sample (default: random, printed).")
@click.option("--archives", is_flag=True, help="Also decrypt every archive generation and re-hash its members.")
def verify(drops: tuple[str, ...], every: bool, sample: str, seed: int | None, archives: bool) -> None:
    """Re-read repository copies from disk and compare them with their lineage digests."""
    if not drops and not every:
        raise click.UsageError("name a DROP or give --all")
    fraction = parse_fraction(sample, "--sample")
    seed = secrets.randbelow(2**31) if seed is None else seed
    deployment = deployment_from_env()
    settings = deployment.settings
    store = deployment.status_store()
    keys = [d.id for d in store.list()] if every else [key_of(settings, d) for d in drops]
    unknown = [key for key in keys if not every and store.get(key) is None]
    if unknown:
        raise ConfigError(f"{unknown[0]}: no status document (not registered yet)")
    policy = deployment.archive if archives else None
    failed = 0
    for key in keys:
        audit = audit_drop(store, key, sample=fraction, seed=seed, archives=policy)
        for finding in audit.findings:
            click.echo(shown(finding.line()))
        failed += len(audit.findings)
        gens = f", archive generations {','.join(map(str, audit.generations)) or 'none'} ({audit.archive_members} members)" if archives else ""
        click.echo(f"{key}: {audit.repository_files} of {audit.repository_total} repository copies re-read{gens}, "
                   f"{len(audit.findings)} differ or are missing (seed {seed})")
    sys.exit(1 if failed else 0)
