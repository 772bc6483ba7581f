"""A drop's asset results on disk: one human-readable JSON document per drop and asset in the
state folder (`<state>/drops/<drop>/<asset>.json`), written atomically, parsed and validated
once per process, and refused when it belongs to another plan than the run's."""

from __future__ import annotations

import os
import tempfile
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from dropsync_dagster.core.errors import DropsyncError, RefusedError
from dropsync_dagster.core.results import private_state_dir

R = TypeVar("R", bound=BaseModel)
V = TypeVar("V")

RESULTS = "drops"  # `<state>/drops/<drop>/`: one folder per drop partition


def drop_folder(state_dir: Path, drop: str) -> Path:
    """The folder of one drop's results."""
    return state_dir / RESULTS / drop


def write_atomically(state_dir: Path, path: Path, chunks: Iterable[str], what: str) -> Path:
    """Write `chunks` to a temporary beside `path`, then rename it over `path`, so a reader never
    sees half a document; a failed write (disk full, read-only, permissions) names the file."""
    tmp = None
    try:
        private_state_dir(state_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.writelines(chunks)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise DropsyncError(f"cannot write {what} {path}: {exc.strerror or exc}") from exc
    return path


def one_line(exc: ValidationError) -> str:
    """A pydantic validation error as one line: the first problem's field and message, and how many more."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first["loc"]) or "document"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


class ParsedFiles(Generic[V]):
    """Parsed documents keyed by their file's identity (path, inode, size, mtime): a file is
    parsed once per process until it is replaced. Bounded: the least recently used go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.parses: Counter[str] = Counter()  # parses per file name, for tests and benchmarks
        self._values: OrderedDict[tuple[Any, ...], V] = OrderedDict()

    def get(self, path: Path, parse: Callable[[Path], V]) -> V:
        """The parsed document at `path` (FileNotFoundError when there is none)."""
        key = _identity(path)
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = parse(path)
        self.parses[path.name] += 1
        if _identity(path) == key:  # not replaced while it was read
            self._remember(key, value)
        return value

    def put(self, path: Path, value: V) -> None:
        """Remember what was just written to `path`, so the next reader in this process need not
        parse it (for frozen values only: a reader gets this very object)."""
        self._remember(_identity(path), value)

    def clear(self) -> None:
        """Forget every parsed document and count (tests)."""
        self._values.clear()
        self.parses.clear()

    def _remember(self, key: tuple[Any, ...], value: V) -> None:
        self._values[key] = value
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)


def _identity(path: Path) -> tuple[Any, ...]:
    st = path.stat()
    return str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


PARSED = ParsedFiles[BaseModel](size=32)


class ResultFiles:
    """The result documents of one drop's assets under `<state>/drops/<drop>/`."""

    def __init__(self, state_dir: Path, drop: str) -> None:
        self.state_dir = state_dir
        self.drop = drop

    def path(self, asset: str) -> Path:
        """The JSON document of `asset`'s result."""
        return drop_folder(self.state_dir, self.drop) / f"{asset}.json"

    def save(self, asset: str, result: BaseModel) -> Path:
        """Write `asset`'s result atomically. Not remembered for this process's readers: a result
        is a mutable model its step may go on changing (a progress record); they parse it once."""
        path = self.path(asset)
        try:
            write_atomically(self.state_dir, path, [result.model_dump_json(indent=1)], f"the {asset} result")
        except DropsyncError as exc:
            raise DropsyncError(f"{self.drop}: {exc}") from exc
        return path

    def read(self, asset: str, model: type[R]) -> R | None:
        """`asset`'s result, of whatever plan; None when the asset has not run for this drop.
        A document that does not validate is one line naming the file and the first problem."""
        path = self.path(asset)

        def parse(p: Path) -> BaseModel:
            try:
                return model.model_validate_json(p.read_bytes())
            except ValidationError as exc:
                raise DropsyncError(f"{self.drop}: the {asset} result at {p} is not valid: {one_line(exc)}; "
                                    f"materialise {asset} again") from None

        try:
            found = PARSED.get(path, parse)
        except FileNotFoundError:
            return None
        if not isinstance(found, model):  # the same file read earlier as another model
            found = parse(path)
        return found  # type: ignore[return-value]

    def load(self, asset: str, model: type[R], plan_id: str) -> R:
        """`asset`'s result for plan `plan_id`; missing, invalid or of another plan is one line."""
        result = self.read(asset, model)
        if result is None:
            raise DropsyncError(f"{self.drop}: no {asset} result at {self.path(asset)}; materialise {asset} first")
        found = getattr(result, "plan_id", None)
        if found != plan_id:
            raise RefusedError(f"{self.drop}: the {asset} result at {self.path(asset)} belongs to plan "
                               f"{found or 'unknown'}, not to this run's plan {plan_id}; materialise {asset} again")
        return result

    def load_if_current(self, asset: str, model: type[R], plan_id: str) -> R | None:
        """Like load, but None when `asset` has not run for plan `plan_id`."""
        result = self.read(asset, model)
        return result if result is not None and getattr(result, "plan_id", None) == plan_id else None
