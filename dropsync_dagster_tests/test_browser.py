"""The UI as a new user meets it: `make demo`, then `dagster-webserver` and `dagster-daemon` on
the demo's settings as `make dev` starts them (DAGSTER_HOME with the quick-start dagster.yaml,
settings only from the `.env` the demo wrote), driven by a real Chromium with the mouse.

Screenshots go to `.screenshots/` (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from dropsync_dagster.cli.demo import HELD_BACK, build
from dropsync_dagster.execution import RETRY_STRATEGY_TAG
from dropsync_dagster_tests.fixtures.dagster_procs import (
    BIN,
    REPO,
    Proc,
    Webserver,
    _location_loaded,  # the same check the deployment tests wait for
    free_port,
    wait_until,
)

CHROMIUM = "/usr/bin/chromium"  # Debian's: the test never downloads a browser of its own
SCREENSHOTS = REPO / ".screenshots"
NEW_DROP = "run_2026-11-27_NovaSeq"
NEW_KEY = f"demo-{NEW_DROP}"
# As the machine notes say: no sandbox as root, and no background connections to a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class DevUI:
    """A project folder after `make demo`, with the webserver and daemon of `make dev` on it."""

    project: Path
    home: Path
    web: Webserver
    daemon: Proc

    def instance(self) -> dg.DagsterInstance:
        """The instance both processes use (DAGSTER_HOME)."""
        from dagster._core.instance.ref import InstanceRef  # no public way to open one from a folder

        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium (`make test` installs it); missing: a skip, or a failure under CI."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def dev_ui() -> Iterator[DevUI]:
    """`make demo`, one more ready drop under the demo's root, then `make dev`'s two processes.

    The project folder is short (not pytest's tmp_path): gpg-agent puts its socket in the demo's
    GNUPGHOME, and a Unix socket path may not exceed 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="dsui-", dir="/tmp") as short:
        yield from _dev_ui(Path(short) / "project")


def _dev_ui(project: Path) -> Iterator[DevUI]:
    home = project / ".dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")  # as the Makefile does
    # Nothing from this process's settings: what the processes know, they read from .env.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPSYNC_", "DAGSTER_", "GNUPGHOME"))}
    env.update({"DAGSTER_HOME": str(home), "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"})
    demo = subprocess.run([str(BIN / "dropsync"), "demo"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert (project / ".env").is_file()
    build(project / ".demo", NEW_DROP)  # a new ready drop, with its own wrong .md5 file
    procs: list[Proc] = []
    try:
        workspace = str(REPO / "workspace.yaml")
        daemon = _start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], project, env, procs)
        port = free_port()
        web = _start("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
                     project, env, procs, Webserver, port=port)
        ui = DevUI(project, home, web, daemon)
        wait_until(lambda: _location_loaded(web), 120, "the webserver to load the code location", web)
        with ui.instance() as instance:
            wait_until(lambda: NEW_KEY in instance.get_dynamic_partitions("drops"), 120,
                       "the sensor's first tick to register the new drop", daemon)
        yield ui
    finally:
        for proc in reversed(procs):
            proc.stop()


def _start(name: str, args: list[str], cwd: Path, env: dict[str, str], procs: list[Proc], cls: type[Proc] = Proc,
           **kw: object) -> Proc:
    """A process in its own session, started in the project folder (where `.env` is read)."""
    log = cwd / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc = cls(name, popen, log, **kw)
    procs.append(proc)
    return proc


def test_materialise_a_new_drop_from_the_asset_graph(chromium: str, dev_ui: DevUI) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        # A new browser's first visit opens Dagster's newsletter dialog over the page: skip it.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click(force=True))
        # The drop group's own graph (the global lineage shows each group collapsed to a box).
        page.goto(f"{dev_ui.web.url}/locations/dropsync_dagster/asset-groups/dropsync")
        materialize = page.get_by_role("button", name="Materialize all…")
        try:
            expect(page.get_by_text("archived_originals").first).to_be_visible()
        except AssertionError:
            page.screenshot(path=SCREENSHOTS / "0-asset-graph-failed.png")  # what the page showed instead
            raise
        page.screenshot(path=SCREENSHOTS / "1-asset-graph.png")

        dialog = _pick_partition(page, materialize, NEW_KEY)
        dialog.get_by_text("Launch runs to materialize 6 assets").click()  # closes the partition menu
        page.screenshot(path=SCREENSHOTS / "2-launch-dialog.png")
        dialog.get_by_role("button", name="Launch 1 run").click()

        with dev_ui.instance() as instance:
            run = wait_until(lambda: _finished_ui_run(instance), 180, f"the UI's run of {NEW_KEY}",
                             dev_ui.daemon, dev_ui.web, every=1.0)
            engine = [e.message or "" for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
        assert run.status == dg.DagsterRunStatus.SUCCESS, dev_ui.daemon.tail()
        assert run.job_name == "__ASSET_JOB"
        assert run.tags[RETRY_STRATEGY_TAG] == "ALL_STEPS"
        assert any(m.startswith("Executing steps in process") for m in engine), engine

        page.goto(f"{dev_ui.web.url}/runs/{run.run_id}")
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "3-run.png")

        page.goto(f"{dev_ui.web.url}/assets/archived_originals?view=events&partition={NEW_KEY}")
        held = page.get_by_role("cell", name=HELD_BACK, exact=True).first
        expect(held).to_be_visible()
        reason = page.get_by_role("cell", name="md5_mismatch: expected md5").first
        expect(reason).to_be_visible()
        table = held.locator("xpath=ancestor::table[1]").bounding_box()
        assert table["x"] + table["width"] <= 1440, f"the held files' table is wider than the screen: {table}"
        expect(page.get_by_text("drop_status")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "4-archived-originals.png")
        page.get_by_text("lineage_command").scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "5-drop-status-and-lineage.png")

        page.goto(f"{dev_ui.web.url}/assets/drop_manifest?view=events&partition={NEW_KEY}")
        expect(page.get_by_text("copy_plan")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "7-plan.png")

        page.goto(f"{dev_ui.web.url}/assets/archived_originals?view=checks")
        expect(page.get_by_text("originals_accounted_for").first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=SCREENSHOTS / "6-checks.png")
        browser.close()


def _finished_ui_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """The run the UI launched for the new drop, once it has finished."""
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": NEW_KEY, "dagster/from_ui": "true"}))
    return next((r for r in runs if r.is_finished), None)


def _pick_partition(page, materialize, key: str):  # noqa: ANN001, ANN202 (playwright types, imported lazily)
    """Open the launch dialog, open its partition picker and tick `key`.

    Dagster's newsletter dialog may pop up over it at any moment of a new browser's first visit
    (seen once in four runs), and a click on the picker may not land or open it while the dialog
    still renders (seen in about one run in four): each attempt after the first starts from a
    freshly loaded page. A failure names what the dialog showed and each attempt's wait, since CI
    keeps no screenshot; retries that recovered are written beside the screenshots."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    # The picker's trigger: a popover button that reads "Select a partition or create one" while empty.
    picker = dialog.locator('[aria-haspopup="dialog"]').first
    picker_count = dialog.locator('[aria-haspopup="dialog"]').count
    search = page.get_by_placeholder("Filter partitions")  # the open picker's search field
    errors: list[str] = []
    shown = ""
    for attempt in range(4):
        skip = page.get_by_role("button", name="Skip")
        if skip.is_visible():
            skip.click(force=True)
        try:
            if not dialog.is_visible():
                materialize.click(timeout=20_000)
            item = page.get_by_role("menuitem", name=key)
            for _ in range(5):  # a click while the dialog still renders may open no picker: click again
                if item.is_visible():
                    break
                picker.click(timeout=10_000)
                try:
                    item.wait_for(timeout=4_000)
                except PlaywrightTimeout as closed:
                    errors.append(f"picker open: {search.is_visible()}; {str(closed).splitlines()[0]}")
            item.click(timeout=20_000)
            if errors:  # kept beside the screenshots, for the next person to see what the retries were for
                (SCREENSHOTS / "launch-dialog-retries.txt").write_text("\n".join(errors) + "\n")
            return dialog
        except PlaywrightTimeout as timeout:
            log = [line.strip() for line in str(timeout).splitlines()[1:] if line.strip().startswith("-")]
            errors.append(f"{str(timeout).splitlines()[0]} {' | '.join(log[:1] + log[-2:])} "
                          f"(pickers: {picker_count()})")
            page.screenshot(path=SCREENSHOTS / f"launch-dialog-retry-{attempt}.png")
            shown = dialog.inner_text(timeout=5_000) if dialog.is_visible() else "(no launch dialog open)"
            # Start the next attempt from a freshly loaded page: the dialog's partitions come from
            # the page's cached queries, and what kept the clicks from landing goes with it.
            page.reload()
            expect(page.get_by_text("archived_originals").first).to_be_visible()
    raise AssertionError(f"could not tick {key} in the launch dialog's partition picker; it last showed: {shown[:800]!r}; "
                         f"the attempts: {errors}")
