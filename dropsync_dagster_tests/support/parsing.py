"""A test that counts parses starts as a new run process does: nothing parsed yet in this one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dropsync_dagster.core.plan import frozen
from dropsync_dagster.core.result_files import PARSED


def forget_parsed() -> None:
    """Forget every parsed plan and result, and the parse counts, as a new process would start."""
    PARSED.clear()
    frozen.PARSED_PLANS.clear()


@pytest.fixture(autouse=True)
def new_process() -> Iterator[None]:
    """Each test of a module that imports this fixture starts, and leaves, with nothing parsed."""
    forget_parsed()
    yield
    forget_parsed()
