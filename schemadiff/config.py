"""The ``[tool.schemadiff]`` table of a project's pyproject.toml.

Example::

    [tool.schemadiff]
    archive = "schema/archive.sql"          # optional: the model `derive` splits

    [tool.schemadiff.services.cortex]
    tables = ["tenants", "users"]           # tables of the archive it owns
    desired = "schema/cortex.sql"           # its desired state
    migrations = "generated/cortex"         # its golang-migrate directory
    db_env = "CORTEX_DATABASE_URL"          # optional: env var with its live URL
    versions = "timestamp"                  # optional: "sequence" or "timestamp" (default: as the files are)
    exclude = ["django_*"]                  # optional: objects another tool owns; plan never touches them

Configuration is optional: without a pyproject.toml, or without a
``[tool.schemadiff]`` table in it, :func:`load_config` returns an empty
:class:`Config` and every command works from its flags. Relative paths are
resolved against the directory holding the pyproject.toml, so commands give
the same answer from any subdirectory.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dburl import redact
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

PYPROJECT = "pyproject.toml"

_SERVICE_KEYS = (
    "tables", "desired", "migrations", "db_env", "online", "require_sum", "backup", "versions", "exclude", "owners",
    "shadow_timeout", "derived",
)
_VERSION_SCHEMES = ("sequence", "timestamp")  # golang-migrate create's -seq, and its default
_TOP_KEYS = ("archive", "services")
# A service name appears in paths and messages; keep it to one plain word.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A table is `name` or `schema.name`, as PostgreSQL folds unquoted names.
_TABLE_NAME = re.compile(r"^(?:[a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*$")


@dataclass(frozen=True)
class Service:
    """One service: the tables it owns and where its files and database are."""

    name: str
    tables: list[str]
    desired: Path
    migrations: Path
    db_env: str | None = None
    online: bool = False  # generate rewrites risky statements into zero-downtime forms by default
    require_sum: bool = False  # apply refuses a directory without schemadiff.sum
    backup: Path | None = None  # apply pg_dumps the database here before a step that deletes data
    versions: str | None = None  # "sequence" or "timestamp"; None: follow the directory's files
    exclude: tuple[str, ...] = ()  # glob patterns of objects another tool owns (see schemadiff.scope)
    owners: bool = False  # compare and set object owners (off: owners differ between environments)
    # Seconds a statement of this service's SQL may run on the shadow server (0: no limit); None: the
    # default (schemadiff.shadow.server.load_timeout; SCHEMADIFF_SHADOW_TIMEOUT overrides it).
    shadow_timeout: float | None = None
    # False: the desired file is the service's own (adopted with `schemadiff dump`, or written by hand);
    # `derive` leaves it alone and the service owns no tables of the archive.
    derived: bool = True


@dataclass(frozen=True)
class Config:
    """The project's configuration; ``services`` is empty when there is none."""

    root: Path  # the directory of the pyproject.toml (or where the search began)
    archive: Path | None = None
    services: dict[str, Service] = field(default_factory=dict)
    path: Path | None = None  # the pyproject.toml read, if any

    def service(self, name: str) -> Service:
        """The service called ``name``, or a ConfigError naming the known ones."""
        try:
            return self.services[name]
        except KeyError:
            pass
        where = str(self.path) if self.path else "no pyproject.toml with [tool.schemadiff] was found"
        if self.services:
            known = ", ".join(sorted(self.services))
            raise ConfigError(
                f"unknown service {name!r}; the configured services are: {known} ({where})",
                "Use one of those names, or add [tool.schemadiff.services." + name + "] to pyproject.toml.",
            )
        raise ConfigError(
            f"unknown service {name!r}: no services are configured ({where})",
            "Add [tool.schemadiff.services." + name + "] to pyproject.toml, or pass the files as flags.",
        )


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in ``start`` or one of its parents."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / PYPROJECT
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path | None = None) -> Config:
    """Find pyproject.toml upward from ``start`` (default: cwd) and read it.

    The search stops at the first pyproject.toml: a project without a
    ``[tool.schemadiff]`` table gets an empty config rather than a parent
    directory's, which would belong to some other project.
    """
    start = Path.cwd() if start is None else Path(start)
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(root=start.resolve())
    return load_config_file(pyproject)


def load_config_file(pyproject: Path) -> Config:
    """Read the ``[tool.schemadiff]`` table of one pyproject.toml file."""
    pyproject = Path(pyproject).resolve()
    data = _read_toml(pyproject)
    root = pyproject.parent
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or "schemadiff" not in tool:
        return Config(root=root, path=pyproject)
    table = tool["schemadiff"]
    where = f"{pyproject}: [tool.schemadiff]"
    _require_table(table, where)
    _reject_unknown_keys(table, _TOP_KEYS, where)

    archive = None
    if "archive" in table:
        archive = root / _require_path(table["archive"], f"{where} archive")

    services: dict[str, Service] = {}
    raw_services = table.get("services", {})
    _require_table(raw_services, f"{where} services")
    for name, raw in raw_services.items():
        services[name] = _service(name, raw, root, pyproject)
    _reject_shared_tables(services, pyproject)
    return Config(root=root, archive=archive, services=services, path=pyproject)


def _read_toml(path: Path) -> dict[str, Any]:
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise ConfigError(
            f"cannot read {path}: Python {sys.version_info.major}.{sys.version_info.minor} has no TOML reader",
            "Install tomli (pip install tomli) or use Python 3.11 or later.",
        )
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", "Fix the file and run the command again.") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _service(name: str, raw: Any, root: Path, pyproject: Path) -> Service:
    where = f"{pyproject}: [tool.schemadiff.services.{name}]"
    if not _SERVICE_NAME.match(name):
        raise ConfigError(
            f"{where}: invalid service name {name!r}",
            "Use letters, digits, '_', '-' or '.', starting with a letter or digit.",
        )
    _require_table(raw, where)
    _reject_unknown_keys(raw, _SERVICE_KEYS, where)
    for key in ("desired", "migrations"):
        if key not in raw:
            raise ConfigError(f"{where}: missing {key!r}", f"Add {key} = \"...\" (a path relative to {root}).")

    tables = raw.get("tables", [])
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise ConfigError(f"{where} tables: expected a list of table names, got {_describe(tables)}")
    for table in tables:
        if not _TABLE_NAME.match(table):
            raise ConfigError(
                f"{where} tables: invalid table name {table!r}",
                "Write a table as name or schema.name, lower-case, as PostgreSQL stores unquoted names.",
            )
    duplicates = sorted({t for t in tables if tables.count(t) > 1})
    if duplicates:
        raise ConfigError(f"{where} tables: listed more than once: {', '.join(duplicates)}")

    db_env = raw.get("db_env")
    if db_env is not None and (not isinstance(db_env, str) or not _ENV_NAME.match(db_env)):
        # Someone may paste the URL itself here: never echo it with its password.
        shown = _describe(redact(db_env) if isinstance(db_env, str) else db_env)
        raise ConfigError(
            f"{where} db_env: expected an environment variable name, got {shown}",
            "For example db_env = \"CORTEX_DATABASE_URL\"; the URL itself belongs in the environment, not here.",
        )

    online = raw.get("online", False)
    if not isinstance(online, bool):
        raise ConfigError(f"{where} online: expected true or false, got {_describe(online)}")
    owners = raw.get("owners", False)
    if not isinstance(owners, bool):
        raise ConfigError(f"{where} owners: expected true or false, got {_describe(owners)}")
    derived = raw.get("derived", True)
    if not isinstance(derived, bool):
        raise ConfigError(f"{where} derived: expected true or false, got {_describe(derived)}")
    if not derived and tables:
        raise ConfigError(
            f"{where}: derived = false, yet tables lists tables of the archive",
            "A service whose desired file is its own (derived = false) owns no archive tables: remove its"
            " `tables`, or drop `derived = false` to derive its file from the archive.",
        )

    shadow_timeout = raw.get("shadow_timeout")
    if shadow_timeout is not None and (
        isinstance(shadow_timeout, bool) or not isinstance(shadow_timeout, (int, float))
        or not 0 <= shadow_timeout < float("inf")
    ):
        raise ConfigError(
            f"{where} shadow_timeout: expected a number of seconds (0: no limit), got {_describe(shadow_timeout)}",
            "For example shadow_timeout = 600: how long one statement of the desired file or a migration may run"
            " on the shadow server.",
        )

    require_sum = raw.get("require_sum", False)
    if not isinstance(require_sum, bool):
        raise ConfigError(f"{where} require_sum: expected true or false, got {_describe(require_sum)}")
    backup = raw.get("backup")
    backup_dir = root / _require_path(backup, f"{where} backup") if backup is not None else None

    versions = raw.get("versions")
    if versions is not None and versions not in _VERSION_SCHEMES:
        raise ConfigError(
            f"{where} versions: expected \"sequence\" or \"timestamp\", got {_describe(versions)}",
            "sequence numbers files 000001, 000002...; timestamp uses the UTC time (20260131120000), as"
            " golang-migrate create does without -seq. Leave it out to follow the directory's files.",
        )

    exclude = raw.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(p, str) and p for p in exclude):
        raise ConfigError(
            f"{where} exclude: expected a list of name patterns, got {_describe(exclude)}",
            'For example exclude = ["django_*", "public.auth_*"] (globs on name or schema.name).',
        )

    return Service(
        exclude=tuple(exclude),
        versions=versions,
        name=name,
        tables=list(tables),
        online=online,
        require_sum=require_sum,
        backup=backup_dir,
        owners=owners,
        shadow_timeout=shadow_timeout,
        derived=derived,
        desired=root / _require_path(raw["desired"], f"{where} desired"),
        migrations=root / _require_path(raw["migrations"], f"{where} migrations"),
        db_env=db_env,
    )


def _reject_shared_tables(services: Mapping[str, Service], pyproject: Path) -> None:
    owners: dict[str, str] = {}
    for service in services.values():
        for table in service.tables:
            key = table if "." in table else f"public.{table}"
            if key in owners:
                raise ConfigError(
                    f"{pyproject}: table {table!r} is listed by both services {owners[key]!r} and {service.name!r}",
                    "A table lives in exactly one service's database; list it under one of them.",
                )
            owners[key] = service.name


def _require_table(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {_describe(value)}")


def _require_path(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a path (a non-empty string), got {_describe(value)}")
    return Path(value)


def _reject_unknown_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    # A misspelt key ("table", "migration") silently ignored would make the
    # tool run with defaults the user did not choose.
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            f"The allowed keys are: {', '.join(allowed)}.",
        )


def _describe(value: Any) -> str:
    kind = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "a list", dict: "a table"}
    return f"{kind.get(type(value), type(value).__name__)} ({value!r})"
