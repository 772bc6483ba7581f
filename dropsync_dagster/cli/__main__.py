"""`python -m dropsync_dagster.cli`."""

from dropsync_dagster.cli.main import main

main()
