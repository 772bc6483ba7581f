"""The `dropsync` command line: one module per command group (plan, sync, status, keys, demo),
the group and its entry point in `main`, rendering in `console`, in-process runs in `runner`."""
