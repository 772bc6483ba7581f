"""Reading `sync.yml` text as YAML, bounded: it may be hostile or carelessly edited.

- a regular file of at most CONFIG_LIMIT bytes (a FIFO cannot hang, a 50 MB file is refused
  by its size before it is parsed), of at most MAX_NODES nodes (counted on libyaml's event
  stream before anything is built: a megabyte of `[a,a,a,…]` is refused in a fraction of a second);
- aliases: one that refers to itself is refused, and all aliases together may add at most
  ALIAS_BUDGET nodes (a "billion laughs" file is refused before anything walks it);
- a key repeated in one mapping is an error naming both lines (YAML would keep the last one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dropsync_dagster.core.drops.small_files import read_regular
from dropsync_dagster.core.errors import ConfigError

CONFIG_LIMIT = 1 << 20  # 1 MiB: real sync.yml files are a few kilobytes
MAX_NODES = 100_000  # a real sync.yml has hundreds; a large lookups table a few thousand
ALIAS_BUDGET = 10_000  # nodes that aliases may add in all
_MERGE = "tag:yaml.org,2002:merge"
# libyaml is ~10x faster than the pure-Python parser and limits nesting to 1000 levels itself.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_config_text(path: Path) -> str:
    """The text of a `sync.yml`: a regular file (no link, FIFO or device), UTF-8, size-capped."""
    data = read_regular(path, CONFIG_LIMIT, str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (at byte offset {exc.start})") from None


def parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node tree (for line numbers); one ConfigError line otherwise."""
    loader = _Loader(text)
    try:
        _count_nodes(path, text)
        root = loader.get_single_node()
        if root is not None:
            _Walk(path).visit(root, ())
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: YAML syntax error: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()
    return data, root


def _count_nodes(path: Path, text: str) -> None:
    """Refuse a document of more than MAX_NODES nodes, reading only as far as that (YAML errors
    propagate to the caller's handler)."""
    loader = _Loader(text)
    try:
        nodes = 0
        while loader.check_event():
            if isinstance(loader.get_event(), yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise ConfigError(f"{path}: more than {MAX_NODES} YAML nodes")
    finally:
        loader.dispose()


@dataclass
class _Walk:
    """One pass over the node graph: each node's own children once, aliases costed, keys checked."""

    path: Path
    seen: set[int] = field(default_factory=set)
    open: set[int] = field(default_factory=set)
    sizes: dict[int, int] = field(default_factory=dict)
    alias_nodes: int = 0

    def visit(self, node: yaml.Node, where: tuple) -> None:
        """Check `node`; a node met again is an alias and costs its whole expanded size."""
        if id(node) in self.open:
            self._fail(node, where, "a YAML alias refers to a node that contains it (recursive alias)")
        if id(node) in self.seen:
            self.alias_nodes += self._size(node)
            if self.alias_nodes > ALIAS_BUDGET:
                self._fail(node, where, f"YAML aliases expand to more than {ALIAS_BUDGET} nodes")
            return
        self.seen.add(id(node))
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self._check_keys(node, where)
            for key, value in node.value:
                self.visit(key, where)
                self.visit(value, (*where, key.value if isinstance(key, yaml.ScalarNode) else "?"))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.visit(item, (*where, i))
        self.open.discard(id(node))

    def _size(self, node: yaml.Node) -> int:
        """Nodes in `node` with aliases expanded (no cycles: visit refused those first)."""
        size = self.sizes.get(id(node))
        if size is None:
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            size = 1
            for child in children:
                size += self._size(child)
                if size > ALIAS_BUDGET:
                    break  # already too many; the exact count does not matter
            self.sizes[id(node)] = size
        return size

    def _check_keys(self, node: yaml.MappingNode, where: tuple) -> None:
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
                continue  # `<<: *base` then overriding a merged key is what merge keys are for
            identity = (key.tag, key.value)
            if identity in first:
                self._fail(key, (*where, key.value), f"duplicate key (first on line {first[identity]}); "
                                                     "YAML would silently keep the last one")
            first[identity] = key.start_mark.line + 1

    def _fail(self, node: yaml.Node, where: tuple, message: str) -> None:
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in where).replace(".[", "[")
        raise ConfigError(f"{self.path}:{node.start_mark.line + 1}: {dotted + ': ' if dotted else ''}{message}")

