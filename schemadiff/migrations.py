"""A golang-migrate migration directory and its integrity sum.

File names follow golang-migrate: ``<version>_<description>.<up|down>.<ext>``
(``^([0-9]+)_(.*)\\.(down|up)\\.(.*)$``), versions compare as integers, and any
other file in the directory (our ``schemadiff.sum``, a README) is ignored.

The sum file ``schemadiff.sum`` follows Atlas's ``atlas.sum``: one running
SHA-256 is fed each migration file's name then its bytes, in version order,
and after every file its base64 digest is written as ``<name> h1:<digest>``.
Because each line covers every file before it, editing, removing or
inserting any file changes the line of that file and all lines after it; the
first line ``h1:<digest>`` is a SHA-256 over all (name, line digest) pairs so
that the sum file itself cannot be edited unnoticed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import shlex
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import MigrationDirectoryError
from .execute import Script, has_comment_line, script_from_text
from .sqlfile import MAX_SQL_FILE_BYTES, Statement

Direction = Literal["up", "down"]

SUM_FILE = "schemadiff.sum"

# golang-migrate's own pattern (source/parse.go), matched as Go's regexp
# matches it: `$` is the end of the name (Python's `$` also matches before a
# final newline, so `\Z`), `.` never matches a newline, `[0-9]` is ASCII only.
_FILE_NAME = re.compile(r"^([0-9]+)_(.*)\.(down|up)\.(.*)\Z")
# Names a person meant as a migration but golang-migrate skips, read after
# _normalised: wrong separator (`2-add.up.sql`), wrong case (`.UP.sql`), no
# direction (`2_add.sql`), no extension (`2_add.up`), another tool's scheme
# (Flyway's `V2__add.sql`), and, through _normalised, spaces around the name,
# a sign (`+2_add.up.sql`) or digits other than ASCII ones (`٢_add.up.sql`).
_LOOKS_LIKE_MIGRATION = re.compile(
    r"^v?[0-9]+(?:[^0-9].*\.sql|.*[._ -](?:up|down)(?:[._ -].*)?)\Z", re.IGNORECASE | re.DOTALL
)
# golang-migrate stores versions as uint64 and its PostgreSQL driver in a
# bigint column: anything above bigint's maximum cannot be recorded.
MAX_VERSION = 2**63 - 1

def _hash_hint(directory: Path) -> str:
    # The directory named, so the command works whatever the configuration
    # (a bare `schemadiff hash` must name the service when there are several).
    return (f"If the change is intended, run `schemadiff hash --dir {shlex.quote(str(directory))}` to record the"
            " directory as it is now.")


@dataclass(frozen=True)
class MigrationFile:
    """One ``.up`` or ``.down`` file.

    Its bytes are read once, on the first :meth:`read_bytes`, and kept: the
    sum check, the checksums recorded in ``schemadiff_history``, the parse
    and the run all see the same content, so a file edited while ``apply``
    runs cannot pass the check in one form and run in another. Load the
    directory again (:func:`load_directory`) to see later edits.
    """

    version: int
    description: str
    direction: Direction
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def read_bytes(self) -> bytes:
        """The file's bytes, as first read; MigrationDirectoryError when unreadable, not a regular file, or
        above the size bound.

        The bound is ``schemadiff.sqlfile.MAX_SQL_FILE_BYTES``, as for every SQL file schemadiff reads.
        """
        return self._content

    @functools.cached_property
    def _content(self) -> bytes:
        # cached_property keeps only a value: a failed read raises again on the next call.
        try:
            if not stat.S_ISREG(self.path.stat().st_mode):
                raise MigrationDirectoryError(f"migration file {self.path} is not a regular file")
            with self.path.open("rb") as handle:
                data = handle.read(MAX_SQL_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
        except OSError as exc:
            raise MigrationDirectoryError(f"cannot read migration file {self.path}: {exc}") from None
        if len(data) > MAX_SQL_FILE_BYTES:
            raise MigrationDirectoryError(
                f"migration file {self.path} is larger than {MAX_SQL_FILE_BYTES} bytes, the most schemadiff reads"
                " from an SQL file; nothing was run",
                "Split it into several migrations.",
            )
        return data

    def checksum(self) -> str:
        """SHA-256 of the file's bytes (hex), as recorded in ``schemadiff_history``."""
        return hashlib.sha256(self.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Migration:
    """One version: its up file and, if written, its down file."""

    version: int
    description: str
    up: MigrationFile | None
    down: MigrationFile | None

    def file(self, direction: Direction) -> MigrationFile | None:
        return self.up if direction == "up" else self.down

    @property
    def label(self) -> str:
        return f"{self.version}_{self.description}"


@dataclass(frozen=True)
class MigrationDirectory:
    """The migrations of a directory, sorted by version.

    ``ignored`` lists files that look like migrations but do not match
    golang-migrate's pattern, so neither tool runs them (callers warn).
    """

    path: Path
    migrations: tuple[Migration, ...]
    ignored: tuple[Path, ...] = ()

    @property
    def versions(self) -> list[int]:
        return [m.version for m in self.migrations]

    @property
    def latest(self) -> int | None:
        return self.migrations[-1].version if self.migrations else None

    def get(self, version: int) -> Migration | None:
        for migration in self.migrations:
            if migration.version == version:
                return migration
        return None

    def __contains__(self, version: object) -> bool:
        return isinstance(version, int) and self.get(version) is not None

    def previous(self, version: int) -> int | None:
        """The highest version below ``version``, or None below the first."""
        below = [v for v in self.versions if v < version]
        return below[-1] if below else None

    def files(self) -> list[MigrationFile]:
        """Every migration file, in the order the sum covers them."""
        found = [f for m in self.migrations for f in (m.up, m.down) if f is not None]
        return sorted(found, key=lambda f: (f.version, f.name))


def _normalised(name: str) -> str:
    """``name`` as a person reads it: Unicode digits as ASCII ones, no surrounding space or sign."""
    digits = "".join(str(unicodedata.decimal(char)) if unicodedata.decimal(char, None) is not None else char
                     for char in unicodedata.normalize("NFKC", name))
    return digits.strip().lstrip("+")


def looks_like_migration(name: str) -> bool:
    """Whether a file golang-migrate's pattern skips was probably meant as a migration (callers warn).

    Hidden files (``.name``) and editors' lock and autosave files
    (``#name#``, ``.#name``) are not: they are no one's migration.
    """
    if name.startswith((".", "#")) or _FILE_NAME.match(name):
        return False
    return bool(_LOOKS_LIKE_MIGRATION.match(_normalised(name)))


def ignored_reason(name: str) -> str:
    """Why golang-migrate skips ``name``, in a few words, for the warning about it."""
    if "\n" in name or "\r" in name:
        return "a line break in the name"
    if name != name.strip():
        return "spaces around the name"
    if name.startswith("+"):
        return "a sign before the version"
    if any(char.isdigit() and not char.isascii() for char in name):
        return "digits that are not ASCII 0-9"
    if re.search(r"(?i)\.(up|down)\.", name) and not re.search(r"\.(up|down)\.", name):
        return "upper-case UP/DOWN (golang-migrate's pattern is lower-case)"
    if re.search(r"\.(up|down)\Z", name):
        return "no extension after .up/.down (golang-migrate needs NNN_name.up.EXT)"
    if re.match(r"(?i)v[0-9]", name):
        return "another tool's naming (a V before the version)"
    if not re.match(r"[0-9]+_", name):
        return "no _ right after the version"
    return "no .up. or .down. before the extension"


def parse_file_name(name: str) -> tuple[int, str, Direction] | None:
    """``(version, description, direction)`` of a migration file name, else None."""
    match = _FILE_NAME.match(name)
    if not match:
        return None
    direction: Direction = "up" if match[3] == "up" else "down"
    return int(match[1]), match[2], direction


def load_directory(path: str | Path, *, must_exist: bool = False) -> MigrationDirectory:
    """Read a migration directory.

    A missing directory has no migrations unless ``must_exist`` (then it
    raises :class:`MigrationDirectoryError`: a typo in ``--dir`` must not read
    as "no migrations yet"). Raises as well for a file golang-migrate would
    run but schemadiff will not: an extension other than ``.sql`` (an editor
    backup ``1_a.up.sql~`` matches golang-migrate's pattern and would be
    applied by it), version 0, a version above bigint, a duplicate.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise MigrationDirectoryError(f"migration directory {root} is a file, not a directory")
    if must_exist and not root.is_dir():
        raise MigrationDirectoryError(
            f"migration directory not found: {root}",
            "Check --dir (or the service's `migrations` setting); nothing was read or written."
            " To start a new directory, run `schemadiff generate NAME --create-dir`.",
        )
    by_version: dict[int, dict[str, MigrationFile]] = {}
    ignored: list[Path] = []
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        match = _FILE_NAME.match(entry.name)
        if entry.is_dir() and not entry.is_symlink():
            continue  # golang-migrate's file source skips directories too (DirEntry.IsDir)
        if match is None:
            if looks_like_migration(entry.name):
                ignored.append(entry)
            continue
        if not entry.is_file():
            # golang-migrate lists it (a symbolic link to a directory or to nothing, a FIFO)
            # and fails or hangs reading it; schemadiff would skip it: the two would disagree.
            raise MigrationDirectoryError(
                f"{entry}: its name is a migration's, but it is not a regular file (a broken symbolic link,"
                " a link to a directory, a FIFO...); golang-migrate would try to run it, so schemadiff"
                " refuses the directory",
                "Remove it or replace it with the migration file; nothing was run.",
            )
        if match[4] != "sql":
            raise MigrationDirectoryError(
                f"{entry}: a migration file must end in .up.sql or .down.sql, not .{match[3]}.{match[4]}"
                " (an editor backup or a copy?); golang-migrate would run it as version"
                f" {int(match[1])}, so schemadiff refuses the directory",
                "Remove the file, or rename it to end in .sql if it is a migration; nothing was run.",
            )
        version, description, direction = int(match[1]), match[2], ("up" if match[3] == "up" else "down")
        if version == 0:
            raise MigrationDirectoryError(
                f"{entry}: version 0 is reserved for 'no migration applied'",
                "Number migrations from 1 (rename the file).",
            )
        if version > MAX_VERSION:
            raise MigrationDirectoryError(
                f"{entry}: version {version} is above {MAX_VERSION}, the largest a bigint"
                " (golang-migrate's version column) can hold",
                "Renumber the file with a smaller version; nothing was run.",
            )
        files = by_version.setdefault(version, {})
        if direction in files:
            raise MigrationDirectoryError(
                f"duplicate {direction} migration for version {version} in {root}:"
                f" {files[direction].name} and {entry.name}",
                "Each version has at most one .up and one .down file: renumber or remove one.",
            )
        files[direction] = MigrationFile(version, description, direction, entry)  # type: ignore[arg-type]
    migrations = []
    for version in sorted(by_version):
        files = by_version[version]
        up, down = files.get("up"), files.get("down")
        description = (up or down).description  # type: ignore[union-attr]
        migrations.append(Migration(version, description, up, down))
    return MigrationDirectory(root, tuple(migrations), tuple(ignored))


# --- the integrity sum -------------------------------------------------------


@dataclass(frozen=True)
class SumFile:
    """The content of ``schemadiff.sum``: a total and one running digest per file."""

    total: str
    entries: tuple[tuple[str, str], ...]  # (file name, base64 running digest)

    def render(self) -> str:
        lines = [f"h1:{self.total}"] + [f"{name} h1:{digest}" for name, digest in self.entries]
        return "\n".join(lines) + "\n"


def compute_sum(directory: MigrationDirectory) -> SumFile:
    running = hashlib.sha256()
    entries = []
    for file in directory.files():
        running.update(file.name.encode("utf-8"))
        running.update(file.read_bytes())
        entries.append((file.name, _b64(running.copy().digest())))
    return SumFile(_total(entries), tuple(entries))


def write_sum(path: str | Path) -> Path:
    """Record the directory as it is now in its ``schemadiff.sum``."""
    directory = load_directory(path)
    if not directory.path.is_dir():
        raise MigrationDirectoryError(f"migration directory {directory.path} does not exist")
    target = directory.path / SUM_FILE
    content = compute_sum(directory).render()
    temporary = target.with_name(f".{SUM_FILE}.tmp")
    try:  # write then rename: a crash never leaves a half-written sum
        temporary.write_text(content, encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        raise MigrationDirectoryError(f"cannot write {target}: {exc}") from None
    return target


def read_sum(path: str | Path) -> SumFile | None:
    """The directory's sum file, or None when it has none."""
    target = Path(path) / SUM_FILE
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationDirectoryError(f"cannot read {target}: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith("h1:"):
        raise MigrationDirectoryError(f"{target} is malformed: the first line must be h1:<sum>",
                                      _hash_hint(Path(path)))
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        name, _, digest = line.rpartition(" h1:")
        if not name or not digest:
            raise MigrationDirectoryError(f"{target}:{number} is malformed: expected '<file> h1:<sum>'",
                                          _hash_hint(Path(path)))
        entries.append((name, digest))
    return SumFile(lines[0][3:], tuple(entries))


def verify_sum(path: str | Path | MigrationDirectory) -> bool:
    """Check the directory against its sum file.

    ``path``: the directory, or one already loaded (:func:`load_directory`),
    whose files are then checked as that load read them: the caller runs
    the very bytes that were checked. Returns True when verified and False
    when the directory has no sum file (a hand-written directory:
    unchecked, the caller should say so). Raises
    :class:`MigrationDirectoryError` naming what changed otherwise.
    """
    directory = path if isinstance(path, MigrationDirectory) else load_directory(path)
    recorded = read_sum(directory.path)
    if recorded is None:
        return False
    sum_path = directory.path / SUM_FILE
    if _total(list(recorded.entries)) != recorded.total:
        raise MigrationDirectoryError(f"{sum_path} was edited by hand: its total does not match its lines",
                                      _hash_hint(directory.path))
    actual = compute_sum(directory)
    if actual == recorded:
        return True
    raise MigrationDirectoryError(_describe_change(directory, recorded, actual), _hash_hint(directory.path))


def _describe_change(directory: MigrationDirectory, recorded: SumFile, actual: SumFile) -> str:
    where = directory.path
    recorded_names = [name for name, _ in recorded.entries]
    actual_names = {name for name, _ in actual.entries}
    missing = [name for name in recorded_names if name not in actual_names]
    if missing:
        return f"migration file removed from {where} (listed in {SUM_FILE}): {', '.join(missing)}"
    added = [name for name, _ in actual.entries if name not in set(recorded_names)]
    if added:
        recorded_versions = [parse_file_name(n) for n in recorded_names]
        latest = max((p[0] for p in recorded_versions if p), default=0)
        below = [n for n in added if (p := parse_file_name(n)) and p[0] < latest]
        if below:
            return (
                f"migration file added out of order in {where}: {', '.join(below)}"
                f" is below the latest recorded version {latest}; databases past it would never run it"
            )
        return f"migration file added to {where} but not recorded in {SUM_FILE}: {', '.join(added)}"
    # Same names: the first differing running digest is the first edited file.
    for (name, digest), (_, now) in zip(recorded.entries, actual.entries):
        if digest != now:
            return f"migration file edited after it was recorded in {SUM_FILE}: {where / name}"
    return f"{SUM_FILE} in {where} does not match the directory"  # pragma: no cover - order changed


def _total(entries: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    total = hashlib.sha256()
    for name, digest in entries:
        total.update(name.encode("utf-8"))
        total.update(digest.encode("ascii", "replace"))
    return _b64(total.digest())


def _b64(raw: bytes) -> str:
    return base64.standard_b64encode(raw).decode("ascii")


# --- what a file needs to run ------------------------------------------------

# An up or down file that deliberately runs nothing says so with this line.
EMPTY_MARKER = "-- schemadiff:empty"


@dataclass(frozen=True)
class MigrationScript:
    """A parsed migration file and how it must run.

    ``script`` is what :class:`schemadiff.execute.Session` runs: its
    statements and whether they run in one transaction (with the version
    update) or statement by statement under the dirty protocol, with the
    reason (the first statement that forbids a transaction).
    ``unintended_empty``: the file has no statement (empty or only comments)
    and no ``-- schemadiff:empty`` line saying that is deliberate.
    """

    file: MigrationFile
    checksum: str  # SHA-256 (hex) of exactly the bytes parsed here
    script: Script = field(repr=False)
    # No statement and no EMPTY_MARKER line: the runner refuses to record it as applied.
    unintended_empty: bool = False

    @property
    def statements(self) -> tuple[Statement, ...]:
        return self.script.statements

    @property
    def transactional(self) -> bool:
        return self.script.transactional

    @property
    def reason(self) -> str | None:
        return self.script.reason


def read_script(file: MigrationFile) -> MigrationScript:
    """Parse a migration file and decide how it runs (``schemadiff.execute``'s rule); syntax errors raise here."""
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationDirectoryError(f"migration file {file.path} is not UTF-8: {exc}") from None
    script = script_from_text(text, str(file.path), file.name)
    # golang-migrate runs an empty file as a no-op and records the version:
    # a file saved before its SQL was pasted would read as done.
    empty = not script.statements and not has_comment_line(text, EMPTY_MARKER)
    return MigrationScript(file, hashlib.sha256(raw).hexdigest(), script, empty)
