"""The commands, as plain typed functions usable from Python.

``schemadiff.cli`` parses arguments, calls one of these and renders what it
returns; nothing here prints. Long steps report through ``status`` so the
CLI can show what is happening.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DestructiveChangeRefused

Status = Callable[[str], None]


def _no_status(_: str) -> None:
    pass


# --------------------------------------------------------------------------
# Inputs: which desired file, which migration directory, which database


@dataclass(frozen=True)
class Target:
    """What one plan or generate works on."""

    service: str | None
    desired: Path
    directory: Path | None  # the migration directory whose replay is the current state
    db_url: str | None  # a live database to compare with instead of the replay

    @property
    def label(self) -> str:
        return self.service or str(self.desired)


def resolve_targets(
    service: str | None,
    *,
    desired: Path | None = None,
    directory: Path | None = None,
    db: str | None = None,
    start: Path | None = None,
) -> list[Target]:
    """Turn a service name and/or explicit paths into targets.

    Explicit flags win over the configuration; without a service and without
    ``--desired`` every configured service is a target.
    """
    from .config import load_config

    config = load_config(start or Path.cwd())
    if service is None and desired is not None:
        return [Target(None, desired, directory, db)]
    if service is None:
        if not config.services:
            raise ConfigError(
                "no desired-state file given and no services configured",
                "Pass --desired FILE (and --dir DIR or --db URL), or configure [tool.schemadiff] in pyproject.toml.",
            )
        if db is not None and len(config.services) > 1:
            raise ConfigError("--db names one database: name the service it belongs to as well")
        names = list(config.services)
    else:
        names = [service]
    targets = []
    for name in names:
        svc = config.service(name)
        live = db or (os.environ.get(svc.db_env) if svc.db_env else None) or None
        targets.append(Target(name, desired or svc.desired, directory or svc.migrations, live))
    return targets


# --------------------------------------------------------------------------
# plan


@dataclass(frozen=True)
class TableSummary:
    table: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass
class PlanResult:
    target: Target
    source: str  # what the desired state was compared with, for humans
    changes: list  # list[diff.Change]

    @property
    def in_sync(self) -> bool:
        return not self.changes

    def summary(self) -> list[TableSummary]:
        return summarize(self.changes)


def summarize(changes: list) -> list[TableSummary]:
    """Group changes per table (objects outside tables under their own name)."""
    rows: dict[str, TableSummary] = {}
    for change in changes:
        group = change.table or f"{change.kind} {change.name}"
        row = rows.setdefault(group, TableSummary(group))
        if change.table and change.name == change.table and change.kind == "table":
            label = "table"
        elif change.table:
            label = f"{change.kind} {_short(change.name, change.table)}"
        else:
            label = change.kind
        bucket = {"create": row.added, "drop": row.removed}.get(change.action, row.changed)
        if label not in bucket:
            bucket.append(label)
    return list(rows.values())


def _short(name: str, table: str) -> str:
    prefix = table + "."
    if name.startswith(prefix):
        return name[len(prefix):]
    schema = table.split(".", 1)[0] + "."
    return name[len(schema):] if name.startswith(schema) else name


def plan(target: Target, *, shadow_url: str | None = None, status: Status = _no_status) -> PlanResult:
    """Compare the desired state with the replayed directory or a live database."""
    from .diff import diff_databases
    from .shadow import ShadowServer
    from .sqlfile import parse_file

    desired_statements = parse_file(target.desired, "desired-state file")
    shadow = ShadowServer.open(shadow_url, status)
    with shadow.temporary_database() as desired_url:
        _load_desired(desired_url, desired_statements, target, status)
        if target.db_url:
            from .dburl import redact, read_only

            status("Reading the live database")
            changes = diff_databases(read_only(target.db_url), desired_url)
            return PlanResult(target, f"live database {redact(target.db_url)}", changes)
        with _replayed_directory(shadow, target.directory, status) as (current_url, source):
            status("Comparing")
            changes = diff_databases(current_url, desired_url)
        return PlanResult(target, source, changes)


def _load_desired(url: str, statements, target: Target, status: Status) -> None:
    from .replay import load_statements

    status(f"Loading {target.desired}")
    load_statements(url, statements, "desired-state file")


@contextmanager
def _replayed_directory(shadow, directory: Path | None, status: Status) -> Iterator[tuple[str, str]]:
    """A shadow database holding the state the directory's migrations produce."""
    from .migrations import load_directory
    from .replay import replay_directory

    with shadow.temporary_database() as url:
        migrations = load_directory(directory) if directory is not None else None
        if migrations is None or not migrations.migrations:
            yield url, "an empty database (no migrations yet)"
            return
        status(f"Replaying {len(migrations.migrations)} migrations from {directory}")
        replay_directory(url, migrations)
        yield url, f"the {len(migrations.migrations)} migrations in {directory}"


# --------------------------------------------------------------------------
# generate


@dataclass
class GenerateResult:
    target: Target
    changes: list  # up changes; empty when nothing to do
    down_changes: list
    written: list[Path]
    version: int | None


def generate(
    name: str,
    target: Target,
    *,
    shadow_url: str | None = None,
    allow_destructive: bool = False,
    status: Status = _no_status,
) -> GenerateResult:
    """Write the next verified migration pair, or nothing when in sync."""
    from .diff import diff_databases
    from .hazards import destructive
    from .migration_writer import check_name, content_hash, next_version, render, write_pair
    from .migrations import load_directory, verify_sum, write_sum
    from .shadow import ShadowServer
    from .sqlfile import parse_file, read_text
    from .verify import verify_pair

    check_name(name)
    if target.directory is None:
        raise ConfigError("generate needs a migration directory: pass --dir DIR or name a configured service")
    desired_text = read_text(target.desired, "desired-state file")
    desired_statements = parse_file(target.desired, "desired-state file")
    directory = target.directory
    existing = load_directory(directory)
    if existing.migrations:
        # Never build on a directory whose files changed since they were generated.
        verify_sum(directory)

    shadow = ShadowServer.open(shadow_url, status)
    with shadow.temporary_database() as desired_url:
        _load_desired(desired_url, desired_statements, target, status)
        with _replayed_directory(shadow, directory, status) as (current_url, _source):
            status("Comparing")
            changes = diff_databases(current_url, desired_url)
            if not changes:
                return GenerateResult(target, [], [], [], None)
            refused = destructive(changes)
            if refused and not allow_destructive:
                listed = "\n".join(f"  - {c.action} {c.kind} {c.name}" for c in refused)
                raise DestructiveChangeRefused(
                    f"the migration would delete data; nothing was written:\n{listed}",
                    "Re-run with --allow-destructive if that is intended (or add a rename hint).",
                )
            down_changes = diff_databases(desired_url, current_url)
            sha = content_hash(desired_text)
            label = target.desired.name
            up_text = render(changes, direction="up", desired_label=label, desired_sha256=sha)
            down_text = render(down_changes, direction="down", desired_label=label, desired_sha256=sha)
            verify_pair(
                shadow,
                current_db=_dbname(current_url),
                desired_url=desired_url,
                up_sql=up_text,
                down_sql=down_text,
                status=status,
            )
    version = next_version(existing.versions)
    written = write_pair(directory, version, name, up_text, down_text)
    write_sum(directory)
    return GenerateResult(target, changes, down_changes, written, version)


def _dbname(url: str) -> str:
    from .dburl import database_name

    return database_name(url)


# --------------------------------------------------------------------------
# derive


def derive(*, check: bool = False, start: Path | None = None) -> list:
    """Derive each service's desired file from the archive; write unless ``check``.

    Returns the ``derive.DeriveResult`` list; ``changed`` tells which files
    were stale (and, without ``check``, have now been written).
    """
    from . import derive as derive_module
    from .config import load_config

    results = derive_module.derive_files(load_config(start or Path.cwd()))
    if not check:
        derive_module.write(results)
    return results


# --------------------------------------------------------------------------
# apply, status, force, hash: the runner


@dataclass(frozen=True)
class RunnerTarget:
    """One database and the migration directory it follows."""

    label: str
    directory: Path
    db_url: str


def resolve_runner_target(
    service: str | None,
    *,
    directory: Path | None = None,
    db: str | None = None,
    need_db: bool = True,
    start: Path | None = None,
) -> RunnerTarget:
    from .config import load_config

    config = load_config(start or Path.cwd())
    svc = None
    if service is not None:
        svc = config.service(service)
    elif directory is None and len(config.services) == 1:
        svc = next(iter(config.services.values()))
    elif directory is None:
        known = ", ".join(config.services) or "none configured"
        raise ConfigError(
            "name the service (or pass --dir DIR and --db URL)", f"Services: {known}."
        )
    directory = directory or svc.migrations
    url = db
    if url is None and svc is not None and svc.db_env:
        url = os.environ.get(svc.db_env) or None
    if url is None and need_db:
        where = f" or set {svc.db_env}" if svc is not None and svc.db_env else ""
        raise ConfigError(f"no database to migrate: pass --db URL{where}")
    return RunnerTarget(service or str(directory), directory, url or "")


def apply(target: RunnerTarget, *, to: int | None = None, down: int | None = None, baseline: int | None = None,
          dry_run: bool = False, lock_timeout: float | None = None, on_event=None):
    """Run pending migrations (see ``schemadiff.runner.apply``)."""
    from . import runner

    return runner.apply(
        target.db_url, target.directory, to=to, down=down, baseline=baseline, dry_run=dry_run,
        lock_timeout=runner.DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout, on_event=on_event,
    )


def status(target: RunnerTarget):
    from . import runner

    return runner.status(target.db_url, target.directory)


def force(target: RunnerTarget, version: int):
    from . import runner

    return runner.force(target.db_url, version, directory=target.directory)


def rehash(directory: Path) -> Path:
    """Rewrite the directory's sum file after a deliberate edit."""
    from .migrations import write_sum

    return write_sum(directory)
