"""Hostile `sync.yml` files: YAML, regexes, folder layout, templated targets."""

from __future__ import annotations

import os

from dropsync_dagster_tests.support.drops import SEED_REGEX, fastq_relpath
from dropsync_dagster_tests.hostile.harness import Case
from dropsync_dagster_tests.hostile.scene import HOSTILE_REL, Scene, dump_yaml

H = HOSTILE_REL
YAML = "sync.yml (YAML)"
REGEX = "regex or glob"
LAYOUT = "folder layout"
TEMPLATE = "templated target"


def text(make):
    """Write `make(scene)` (text or bytes) as the drop's sync.yml."""
    def arrange(s: Scene) -> None:
        s.config_text = make(s)
    return arrange


def alias_bomb(s: Scene) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return dump_yaml(s.config) + "\n".join(lines) + "\n"


def duplicate_key(s: Scene) -> str:
    return dump_yaml(s.config) + f"repository_folder: {s.canary / 'outdir'}\n"


def padded_50mb(s: Scene) -> str:
    return dump_yaml(s.config) + ("#" + "x" * 1023 + "\n") * (50 * 1024)


def deep_nesting(s: Scene) -> str:
    return dump_yaml(s.config) + "deep: " + "[" * 100_000 + "]" * 100_000 + "\n"


def python_tag(s: Scene) -> str:
    return dump_yaml(s.config) + f"lookups: !!python/object/apply:os.system ['touch {s.canary}/pwned']\n"


def nul_in_template(s: Scene) -> str:
    return dump_yaml({**s.config, "repository_filename": "scRNA/raw/<phase>\0/<lib>_<seq>_r<run>__<suffix>.fastq.gz"})


def config_link(s: Scene) -> None:
    copy = s.canary / "sync.yml"
    copy.write_text(dump_yaml(s.config))
    os.symlink(copy, s.replace_config())


def config_fifo(s: Scene) -> None:
    os.mkfifo(s.replace_config())


def config_unreadable(s: Scene) -> None:
    s.write_config()
    s.drop.config_path.chmod(0)
    s.own_config = False
    s.no_dac = True


def regex(pattern: str, **extra: object):
    def arrange(s: Scene) -> None:
        s.config.update(drop_filename_regex=pattern, **extra)
    return arrange


def catastrophic(s: Scene) -> None:
    s.add("a" * 60 + "b")
    # Every template placeholder has an (optional, empty) group, so only the matching can fail.
    groups = "".join(f"(?P<{g}>x)?" for g in ("phase", "lib", "seq", "suffix"))
    s.config.update(drop_filename_filter="**/*", drop_filename_regex=f"^{groups}(a|aa)+$")


def glob_pathological(s: Scene) -> None:
    deep = "/".join(["a"] * 60) + "/x.txt"
    s.add(deep)
    s.config.update(drop_filename_filter="**/" * 12 + "*.fastq.gz")


def folders(allow_scratch: bool = True, **keys: str):
    """Set repository/processed folders; `{drop}`, `{root}`, `{scratch}`, `{canary}`, `{outside}` expand."""
    def arrange(s: Scene) -> None:
        if allow_scratch:  # only the layout rules may refuse, not the allowed roots
            s.env["DROPSYNC_ALLOWED_ROOTS"] = str(s.scratch)
        names = dict(drop=s.drop.path, root=s.drop.root, scratch=s.scratch, canary=s.canary, outside=s.outside,
                     repository=s.scratch / "repository", processed=s.scratch / "processed")
        s.config.update({k: v.format(**names) for k, v in keys.items()})
    return arrange


def repository_link_out(s: Scene) -> None:
    os.symlink(s.canary / "outdir", s.scratch / "repository" / "escape")
    s.config["repository_folder"] = str(s.scratch / "repository" / "escape")


def processed_link_to_drop(s: Scene) -> None:
    os.symlink(s.drop.path, s.scratch / "processed" / "via-link")
    s.config["processed_folder"] = str(s.scratch / "processed" / "via-link")


def lookup(value: str, filename: str | None = None):
    """Translate the hostile file's captured `phase` (evil) into `value`; good files keep theirs."""
    def arrange(s: Scene) -> None:
        s.hostile()
        s.config["lookups"] = {"phase": {"evil": value.format(canary=s.canary, outside=s.outside)}}
        if filename is not None:
            s.config["repository_filename"] = filename
    return arrange


T_DOTDOT, T_NUL, T_BACKSLASH = (fastq_relpath(phase=p, read=5) for p in ("evil", "evilnul", "evilbs"))


def odd_targets(s: Scene) -> None:
    for rel in (T_DOTDOT, T_NUL, T_BACKSLASH):
        s.hostile(rel)
    s.config["lookups"] = {"phase": {"evil": "../../../../outside", "evilnul": "ev\0il",
                                     "evilbs": "..\\..\\..\\..\\outside"}}


def group(name: str) -> str:
    """The seed regex with its first path component captured as `name`."""
    return SEED_REGEX.replace(r"[^\/]+\/", rf"(?P<{name}>[^\/]+)\/", 1)


CASES = [
    Case("yaml_alias_bomb", YAML, "nine levels of nine aliases (387 M nodes): bounded expansion, one line",
         text(alias_bomb), 2, said=("sync.yml",), command="plan"),
    Case("yaml_recursive_alias", YAML, "a list that contains itself", text(lambda s: dump_yaml(s.config) + "x: &x [*x]\n"),
         2, said=("sync.yml",), command="plan"),
    Case("yaml_duplicate_key", YAML, "a second repository_folder must not silently win",
         text(duplicate_key), 2, said=("repository_folder",)),
    Case("yaml_50_mb", YAML, "a sync.yml over the size cap is refused before parsing", text(padded_50mb), 2,
         said=("sync.yml",), command="plan"),
    Case("yaml_binary", YAML, "random bytes are no configuration", text(lambda s: os.urandom(4096)), 2,
         said=("sync.yml",), command="plan"),
    Case("yaml_deep_nesting", YAML, "100,000 nested lists: no RecursionError traceback",
         text(deep_nesting), 2, said=("sync.yml",), command="plan"),
    Case("yaml_python_tag", YAML, "python object tags are never constructed", text(python_tag), 2,
         said=("sync.yml",)),
    Case("yaml_empty", YAML, "an empty file names no keys", text(lambda s: ""), 2, said=("sync.yml",), command="plan"),
    Case("yaml_nul_in_template", YAML, "a template with a NUL byte can never render a path",
         text(nul_in_template), 2, said=("repository_filename",), command="plan"),
    Case("sync_yml_symlink", YAML, "sync.yml must be the drop's own regular file, not a link out", config_link, 2,
         said=("sync.yml",)),
    Case("sync_yml_fifo", YAML, "a FIFO sync.yml is refused without blocking", config_fifo, 2, said=("sync.yml",)),
    Case("sync_yml_unreadable", YAML, "EACCES on sync.yml is one configuration line", config_unreadable, 2,
         said=("sync.yml",)),
    Case("regex_catastrophic", REGEX, "(a|aa)+$ on 60 a's and a b (exponential in re and regex): bounded in time, a configuration error",
         catastrophic, 2, said=("drop_filename_regex",), command="plan"),
    Case("regex_invalid", REGEX, "an unbalanced group", regex("(?P<lib>"), 2, said=("drop_filename_regex",),
         command="plan"),
    Case("regex_huge_repeat", REGEX, "a repetition count past the engine's limit (OverflowError)",
         regex("x{99999999999}"), 2, said=("drop_filename_regex",), command="plan"),
    Case("regex_group_run", REGEX, "a captured <run> would fight the sequence number", regex(group("run")), 2,
         said=("run",), command="plan"),
    Case("regex_group_hash", REGEX, "a captured <hash> would fight the content hash", regex(group("hash")), 2,
         said=("hash",), command="plan"),
    Case("regex_group_today", REGEX, "a captured <today> would fight the plan's date", regex(group("today")), 2,
         said=("today",), command="plan"),
    Case("glob_pathological", REGEX, "twelve nested ** on a 60-deep path: matched in linear time (the good files plan) "
         "or, as issue 10 rules for pathological patterns, one configuration line naming the filter",
         glob_pathological, (0, 2), said=("drop_filename_filter",), command="plan"),
    Case("processed_is_drop", LAYOUT, "`processed_folder: .` would move originals onto themselves (issue: deleted)",
         folders(processed_folder="."), 2, said=("processed_folder",)),
    Case("processed_inside_drop", LAYOUT, "processed inside the drop feeds originals back into it",
         folders(processed_folder="./done"), 2, said=("processed_folder",)),
    Case("processed_is_other_drop", LAYOUT, "`../other_drop` injects files into another drop",
         folders(processed_folder="../other_drop"), 2, said=("processed_folder",)),
    Case("processed_is_drop_root", LAYOUT, "processed equal to the drop root makes new drops",
         folders(processed_folder="{root}"), 2, said=("processed_folder",)),
    Case("processed_link_to_drop", LAYOUT, "a link inside an allowed root that resolves to the drop",
         processed_link_to_drop, 2, said=("processed_folder",)),
    Case("repository_is_drop", LAYOUT, "repository equal to the drop: re-runs would move repository copies",
         folders(repository_folder="."), 2, said=("repository_folder",)),
    Case("repository_inside_drop", LAYOUT, "repository inside the drop", folders(repository_folder="./repo"), 2,
         said=("repository_folder",)),
    Case("repository_contains_drop", LAYOUT, "repository containing the drop root (and the drop)",
         folders(repository_folder="{scratch}"), 2, said=("repository_folder",)),
    Case("processed_is_repository", LAYOUT, "processed equal to the repository",
         folders(processed_folder="{repository}", repository_folder="{repository}"), 2,
         said=("processed_folder|repository_folder",)),
    Case("processed_inside_repository", LAYOUT, "processed inside the repository",
         folders(processed_folder="{repository}/processed"), 2, said=("processed_folder",)),
    Case("processed_outside_roots_via_dotdot", LAYOUT, "`..` walks out of the allowed roots",
         folders(False, processed_folder="../../../outside"), 2, said=("processed_folder",)),
    Case("repository_outside_roots_via_link", LAYOUT, "a link inside an allowed root that leads out of it",
         repository_link_out, 2, said=("repository_folder",)),
    Case("targets_dotdot_nul_backslash_via_lookups", TEMPLATE, "rendered `..`, a NUL, `..\\..` (Windows-made names, "
         "treated as `..`): each stops its file only", odd_targets, 1,
         {T_DOTDOT: "unsafe_path", T_NUL: ("unsafe_path", "bad_name"), T_BACKSLASH: "unsafe_path"}),
    Case("target_absolute_via_lookup", TEMPLATE, "a rendered absolute path stops that file only",
         lookup("{outside}", "<phase>/<lib>/<lib>_<seq>_r<run>__<suffix>.fastq.gz"), 1, {H: "unsafe_path"}),
]
