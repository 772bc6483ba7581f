"""`python -m dropsync_dagster.cli`."""

from dropsync_dagster.cli import main

main()
