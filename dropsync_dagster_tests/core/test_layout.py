"""Layout rules (issue 10 item 3): repository and processed folders never equal, lie in or contain
the drop, a drop root or each other — refused before anything runs, naming both folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropsync_dagster.core.errors import ConfigError
from dropsync_dagster.core.drops.layout import check_layout, inside
from dropsync_dagster_tests.support.drops import fastq_relpath, make_drop, seed_config


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    names = {"root": "drops", "drop": "drops/run1", "repo": "repository", "proc": "processed"}
    made = {k: tmp_path / v for k, v in names.items()}
    for path in made.values():
        path.mkdir(parents=True, exist_ok=True)
    return made


def test_a_sound_layout_passes(folders: dict[str, Path]) -> None:
    check_layout(folders["drop"], [folders["root"]], folders["repo"], folders["proc"])


@pytest.mark.parametrize(("repo", "proc", "expected"), [
    ("drop", "proc", "repository_folder {drop} is the same folder as the drop folder {drop}"),
    ("drop/repository", "proc", "repository_folder {drop}/repository lies inside the drop folder {drop}"),
    ("root/repository", "proc", "repository_folder {root}/repository lies inside the drop root {root}"),
    ("base", "proc", "repository_folder {base} contains the drop folder {drop}"),
    ("repo", "drop", "processed_folder {drop} is the same folder as the drop folder {drop}"),
    ("repo", "drop/done", "processed_folder {drop}/done lies inside the drop folder {drop}"),
    ("repo", "root/other_drop", "processed_folder {root}/other_drop lies inside the drop root {root}"),
    ("repo", "root", "processed_folder {root} contains the drop folder {drop}"),
    ("repo", "repo", "processed_folder {repo} is the same folder as repository_folder {repo}"),
    ("repo", "repo/processed", "processed_folder {repo}/processed lies inside repository_folder {repo}"),
    ("proc/repository", "proc", "processed_folder {proc} contains repository_folder {proc}/repository"),
])
def test_each_overlap_is_refused_naming_both_folders(folders: dict[str, Path], repo: str, proc: str,
                                                      expected: str) -> None:
    base = folders["root"].parent
    names = {**{k: str(v) for k, v in folders.items()}, "base": str(base)}

    def path(spec: str) -> Path:
        head, _, tail = spec.partition("/")
        return Path(names[head]) / tail if tail else Path(names[head])

    with pytest.raises(ConfigError) as info:
        check_layout(folders["drop"], [folders["root"]], path(repo), path(proc))
    assert str(info.value) == expected.format(**names)


def test_the_drops_parent_counts_as_a_drop_root(tmp_path: Path) -> None:
    """A drop given by path outside the configured roots: its siblings are drops too."""
    drop, repo = tmp_path / "incoming" / "run1", tmp_path / "repository"
    with pytest.raises(ConfigError, match="processed_folder .*/incoming/run2 lies inside the drop root"):
        check_layout(drop, [], repo, tmp_path / "incoming" / "run2")


def test_inside() -> None:
    assert inside(Path("/a/b"), Path("/a")) and inside(Path("/a"), Path("/a"))
    assert not inside(Path("/ab"), Path("/a")) and not inside(Path("/a"), Path("/a/b"))


# Through planning: the defects of issue 10, each refused before anything runs.

@pytest.mark.parametrize(("key", "value", "needle"), [
    ("processed_folder", ".", "processed_folder {drop} is the same folder as the drop folder {drop}"),
    ("processed_folder", "../other_drop", "processed_folder {root}/other_drop lies inside the drop root {root}"),
    ("repository_folder", ".", "repository_folder {drop} is the same folder as the drop folder {drop}"),
    ("repository_folder", "repository", "repository_folder {drop}/repository lies inside the drop folder {drop}"),
])
def test_planning_refuses_the_reported_layouts(tmp_path: Path, key: str, value: str, needle: str) -> None:
    drop = make_drop(tmp_path)
    (drop.root / "other_drop").mkdir()
    drop.add_file(fastq_relpath())
    drop.write_config(seed_config(drop.repository, drop.processed, labkey=None, fields=None,
                                  field_parameters=None, **{key: value}))
    with pytest.raises(ConfigError) as info:  # allowed roots around everything would not stop these
        drop.plan(settings=drop.settings(DROPSYNC_ALLOWED_ROOTS=str(tmp_path)))
    assert str(info.value) == needle.format(drop=drop.path, root=drop.root)


def test_a_processed_folder_linked_to_the_drop_is_refused(tmp_path: Path) -> None:
    drop = make_drop(tmp_path)
    (drop.processed / "here").symlink_to(drop.path)
    drop.write_config(seed_config(drop.repository, drop.processed / "here", labkey=None, fields=None,
                                  field_parameters=None))
    with pytest.raises(ConfigError, match=f"processed_folder {drop.path} is the same folder as the drop folder"):
        drop.plan(settings=drop.settings(DROPSYNC_ALLOWED_ROOTS=str(tmp_path)))


def test_the_quarantine_folder_is_neither_repository_nor_processed_folder(tmp_path: Path) -> None:
    drop, quarantine = tmp_path / "drops/run_a", tmp_path / "data/quarantine"
    with pytest.raises(ConfigError, match=r"processed_folder .*/data/quarantine/processed lies inside DROPSYNC_QUARANTINE_DIR"):
        check_layout(drop, [tmp_path / "drops"], tmp_path / "data/repo", quarantine / "processed", quarantine)
    with pytest.raises(ConfigError, match=r"repository_folder .*/data contains DROPSYNC_QUARANTINE_DIR"):
        check_layout(drop, [tmp_path / "drops"], tmp_path / "data", tmp_path / "processed", quarantine)
    check_layout(drop, [tmp_path / "drops"], tmp_path / "data/repo", tmp_path / "data/processed", quarantine)
