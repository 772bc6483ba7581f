"""The failure line the CLI prints (and the run's status records) says what failed in words:
a failed blocking check by its name and first problem, never a Python class path."""

from __future__ import annotations

import dagster as dg

from dropsync_dagster.assets.event_metadata import check_result
from dropsync_dagster.core.errors import without_class_paths
from dropsync_dagster.cli.runner import first_failure


def _run(asset: dg.AssetsDefinition) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], raise_on_error=False, instance=dg.DagsterInstance.ephemeral())


def test_a_failed_blocking_check_is_named_with_its_first_problem() -> None:
    @dg.asset(check_specs=[dg.AssetCheckSpec("targets_inside", asset="plan", blocking=True)])
    def plan() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=[check_result("targets_inside", ["/r/x: outside /r", "/r/y: outside /r"])])

    line = first_failure(_run(plan))
    assert line == "step plan failed: blocking check targets_inside failed: /r/x: outside /r (and 1 more problem)"


def test_no_class_path_reaches_the_failure_line() -> None:
    @dg.asset
    def fetch() -> None:
        raise RuntimeError("while writing: requests.exceptions.ConnectionError: refused")

    assert first_failure(_run(fetch)) == "step fetch failed: RuntimeError: while writing: ConnectionError: refused"


def test_dagster_class_path_prefixes_are_stripped() -> None:
    text = "dagster._core.errors.DagsterInvariantViolationError: the run is gone"
    assert without_class_paths(text) == "the run is gone"
    assert without_class_paths("file a.b.fastq: json.decoder.JSONDecodeError: bad") == "file a.b.fastq: JSONDecodeError: bad"
