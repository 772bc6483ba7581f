#!/bin/sh
# Instance-wide pool limits of the production instance (deploy/dagster.yaml): at most this many
# steps in pool `labkey` (LabKey Server calls) and in pool `gpg` (encrypt + validate) run at once,
# across every run. Pools without a limit set here get `concurrency.pools.default_limit`.
# Idempotent; run it once after `dagster instance migrate`, and again to change a limit.
#
#   DAGSTER_HOME=/srv/dagster deploy/set-pool-limits.sh            # labkey 2, gpg 2
#   DAGSTER_HOME=/srv/dagster deploy/set-pool-limits.sh 4 1        # labkey 4, gpg 1
#
# Defaults can also come from DROPSYNC_POOL_LABKEY / DROPSYNC_POOL_GPG. `DAGSTER` names the CLI.
set -eu

labkey="${1:-${DROPSYNC_POOL_LABKEY:-2}}"
gpg="${2:-${DROPSYNC_POOL_GPG:-2}}"
dagster="${DAGSTER:-dagster}"

for value in "$labkey" "$gpg"; do
    case "$value" in
        ''|*[!0-9]*) echo "set-pool-limits: limit must be a whole number, got '$value'" >&2; exit 2 ;;
    esac
done
: "${DAGSTER_HOME:?set-pool-limits: DAGSTER_HOME is not set (the instance to configure)}"

"$dagster" instance concurrency set labkey "$labkey"
"$dagster" instance concurrency set gpg "$gpg"
"$dagster" instance concurrency get --all
