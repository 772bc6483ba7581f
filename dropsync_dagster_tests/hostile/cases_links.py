"""Symlinks in the drop, and swaps/plants after planning through the test hooks (CONTRACTS.md)."""

from __future__ import annotations

import os
from shlex import quote as q

from dropsync_dagster_tests.support.drops import fastq_relpath
from dropsync_dagster_tests.hostile.harness import Case
from dropsync_dagster_tests.hostile.scene import GOOD_RELS, HOSTILE_REL, Scene

H = HOSTILE_REL
H2, H3, H4 = (fastq_relpath(phase="evil", read=n) for n in (6, 7, 8))
EVIL_TARGET_DIR = "scRNA/raw/evil/ABC_DEFGHI"
EVIL_TARGET = f"{EVIL_TARGET_DIR}/ABC_DEFGHI_SEQ_ABCDE_r1__R5_001.fastq.gz"
LINK = "symlink in the drop"
SWAP = "after-plan swap or plant"


ON_HOSTILE = ("DROPSYNC_HOOK_PATH", "*R5_001*")  # the hook's path names the hostile file (source or target)


def link_to(target: str):
    return lambda s: s.link(H, target.format(canary=s.canary))


def odd_links(s: Scene) -> None:
    s.link(H, s.canary / "missing.fastq.gz")
    s.link(H2, s.canary / "dir")
    s.link(H3, s.path(H4))
    s.link(H4, s.path(H3))


def link_folder_in_drop(s: Scene) -> None:
    s.path("scRNA").mkdir(exist_ok=True)
    os.symlink(s.canary / "dir", s.path("scRNA/evil"))


def link_inside_drop(s: Scene) -> None:
    s.link(H, os.path.relpath(s.path(GOOD_RELS[1]), s.path(H).parent))


def swap_for_link(hook: str):
    def arrange(s: Scene) -> None:
        src = s.hostile()
        s.vanished.add(H)
        s.hook(hook, f"rm -f {q(str(src))} && ln -s {q(str(s.secret))} {q(str(src))}")
    return arrange


def replace_same_size(s: Scene) -> None:
    src = s.hostile()
    data = bytes(b ^ 1 for b in src.read_bytes())  # same size, other bytes, a new inode
    staged = s.base / "replacement"
    staged.write_bytes(data)
    s.mutated.add(H)
    s.hook("hashed", f"cp {q(str(staged))} {q(str(src))}.new && mv -f {q(str(src))}.new {q(str(src))}")


def changed_after_plan(s: Scene) -> None:
    grows, fifo, gone = (q(str(s.hostile(rel))) for rel in (H, H2, H3))
    s.mutated.add(H)
    s.vanished.update({H2, H3})
    s.hook("planned", f"printf appended >> {grows}; rm -f {fifo} && mkfifo {fifo}; rm -f {gone}")


def modify_after_copy(s: Scene) -> None:
    src = s.hostile()
    s.mutated.add(H)
    s.hook("before_move", f"printf x >> {q(str(src))}", ON_HOSTILE)


def plant_in_processed(s: Scene) -> None:
    s.hostile()
    processed = s.scratch / "processed"
    s.hook("planned", f"mkdir -p {q(str(processed / 'scRNA'))} && ln -s {q(str(s.canary / 'outdir'))} "
                      f"{q(str(processed / 'scRNA/evil'))}")


def plant_in_repository(s: Scene) -> None:
    s.hostile()
    raw = s.scratch / "repository/scRNA/raw"
    s.hook("planned", f"mkdir -p {q(str(raw))} && ln -s {q(str(s.canary / 'outdir'))} {q(str(raw / 'evil'))}")


def link_at_target(s: Scene) -> None:
    s.hostile()
    s.hook("before_publish", f'ln -s {q(str(s.victim))} "$DROPSYNC_HOOK_PATH"', ON_HOSTILE)


def swap_target_folder(s: Scene) -> None:
    s.hostile()
    d = '"$(dirname "$DROPSYNC_HOOK_PATH")"'
    s.hook("before_publish", f'mv {d} {d}.moved && ln -s {q(str(s.canary / "outdir"))} {d}', ON_HOSTILE)


def link_at_processed(s: Scene) -> None:
    s.hostile()
    s.hook("before_move", f'mkdir -p "$(dirname "$DROPSYNC_HOOK_DEST")" && ln -s {q(str(s.victim))} "$DROPSYNC_HOOK_DEST"',
           ON_HOSTILE)


def swap_processed_folder(s: Scene) -> None:
    s.hostile()
    s.aside[H] = H.replace("/SEQ_ABCDE/", "/SEQ_ABCDE.moved/")
    d = '"$(dirname "$DROPSYNC_HOOK_DEST")"'
    s.hook("before_move", f'mkdir -p {d} && mv {d} {d}.moved && ln -s {q(str(s.canary / "outdir"))} {d}', ON_HOSTILE)


def md5_swapped_for_link(s: Scene) -> None:
    s.hostile()
    s.drop.add_file(H, s.path(H).read_bytes(), md5="correct")
    sidecar = s.path(H + ".md5")
    copy = s.canary / "copied.md5"
    copy.write_bytes(sidecar.read_bytes())
    s.vanished.add(H + ".md5")
    s.hook("planned", f"rm -f {q(str(sidecar))} && ln -s {q(str(copy))} {q(str(sidecar))}")


def blake3_link_after_plan(s: Scene) -> None:
    src = s.hostile()
    s.hook("planned", f"ln -s {q(str(s.victim))} {q(str(src))}.blake3")


def hardlink_at_temp(s: Scene) -> None:
    s.hostile()
    folder = s.scratch / "repository" / EVIL_TARGET_DIR
    folder.mkdir(parents=True)
    os.link(s.victim, folder / f".{os.path.basename(EVIL_TARGET)}.dropsync-tmp")
    s.good.append(H)
    s.nlink_free.add("canary/victim.txt")


def hardlink_at_sidecar_temp(s: Scene) -> None:
    src = s.hostile()
    os.link(s.victim, src.with_name(f".{src.name}.blake3.dropsync-tmp"))
    s.good.append(H)
    s.nlink_free.add("canary/victim.txt")


CASES = [
    Case("link_to_outside_file", LINK, "a link's bytes live outside the drop: held, never read",
         link_to("{canary}/plain.fastq.gz"), 1, {H: "unsafe_path"}),
    Case("link_to_root_only_file", LINK, "a link to a root-only file must never publish it world-readable",
         link_to("{canary}/secret.fastq.gz"), 1, {H: "unsafe_path"}),
    Case("link_to_dev_zero", LINK, "an endless device behind a link: held, never read (no hang)",
         link_to("/dev/zero"), 1, {H: "unsafe_path"}),
    Case("links_dangling_to_folder_and_loop", LINK, "a dangling link, a link to a folder, two links pointing at "
         "each other (ELOOP): each held", odd_links, 1, {H: "unsafe_path", H2: "unsafe_path", H3: "unsafe_path",
                                                      H4: "unsafe_path"}),
    Case("link_to_file_in_drop", LINK, "a second name for a drop file would sync its bytes twice: held like every link",
         link_inside_drop, 1, {H: "unsafe_path"}),
    Case("linked_folder_in_drop", LINK, "a folder link is never descended: the canary's files are no candidates",
         link_folder_in_drop, 0),
    Case("source_swapped_for_link_after_plan", SWAP, "the read is not the planned file (it became a link)",
         swap_for_link("planned"), 1, {H: "changed_since_plan"}),
    Case("source_swapped_for_link_after_hashing", SWAP, "the copy re-reads the source: it must be the hashed file",
         swap_for_link("hashed"), 1, {H: "changed_since_plan"}),
    Case("source_replaced_same_size_after_hashing", SWAP, "same size, new inode and bytes: not the planned file",
         replace_same_size, 1, {H: "changed_since_plan"}),
    Case("sources_grow_vanish_or_become_fifo_after_plan", SWAP, "not the planned file: size differs, gone, or not "
         "regular any more (opened non-blocking, never hangs); each held, the drop goes on", changed_after_plan, 1,
         {H: "changed_since_plan", H2: "changed_since_plan", H3: "changed_since_plan"}),
    Case("source_modified_after_copy", SWAP, "an original changed after its verified copy is never moved",
         modify_after_copy, 1, {H: "changed_after_copy"}),
    Case("link_planted_in_processed_after_plan", SWAP, "moves are confined when they happen, not only when planned",
         plant_in_processed, 1, {H: "unsafe_path"}),
    Case("link_planted_in_repository_after_plan", SWAP, "publishing is confined when it happens",
         plant_in_repository, 1, {H: "unsafe_path"}),
    Case("link_planted_at_target_before_publish", SWAP,
         "publish never overwrites or follows what sits at the target (target_conflict; unsafe_path also fair)",
         link_at_target, 1, {H: ("target_conflict", "unsafe_path")}),
    Case("target_folder_swapped_for_link_before_publish", SWAP,
         "never through the link: published into the folder that was resolved (renamed, still in the repository) "
         "or held; one odd file never fails the drop", swap_target_folder, (0, 1), {H: ("unsafe_path", None)}),
    Case("link_planted_at_processed_name_before_move", SWAP,
         "a move never goes through a link at its destination (exists; unsafe_path also fair)",
         link_at_processed, 1, {H: ("exists", "unsafe_path")}),
    Case("processed_folder_swapped_for_link_before_move", SWAP,
         "never through the link: the original lands in the folder that was resolved (renamed, still in processed) "
         "or is held", swap_processed_folder, (0, 1), {H: ("unsafe_path", None)}),
    Case("md5_sidecar_swapped_for_link_after_plan", SWAP, "a symlinked sidecar is a bad sidecar, whenever it appears",
         md5_swapped_for_link, 1, {H: "bad_sidecar"}),
    Case("blake3_link_planted_after_plan", SWAP, "writing the .blake3 never follows a link planted at its name",
         blake3_link_after_plan, 1, {H: "bad_sidecar"}),
    Case("hardlink_at_repository_temp_name", SWAP,
         "temporaries are created O_EXCL under run-unique names: a planted hard link is never truncated; the file syncs",
         hardlink_at_temp, 0),
    Case("hardlink_at_sidecar_temp_name", SWAP,
         "the .blake3 temporary beside the source is exclusive too: the linked file is never truncated",
         hardlink_at_sidecar_temp, 0),
]
