"""The command line: parse arguments, call ``schemadiff.command``, render.

This is the only module that knows about typer and rich. ``run(args, out,
err)`` takes its streams, so tests drive the CLI in-process and read what a
user would see; ``main()`` is the console-script entry point.

Exit codes (also in README and ``--help``):
  0  success; plan: in sync; derive --check: files up to date
  1  error: nothing was written or applied (the message says what to do)
  2  plan: changes pending; derive --check: derived files are stale
  130 interrupted (Ctrl-C, SIGTERM or SIGHUP); temporary databases are dropped
"""

# No ``from __future__ import annotations`` here: typer reads every command's
# annotations at each start, and evaluating them from strings costs a CLI
# process about 60 ms (of its start-up) each time.

import contextlib
import gc
import io
import json
import math
import os
import re
import shlex
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table

from .errors import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CommandError, ExistingRowsBlock, Interrupted

EXIT_CODES_HELP = (
    "Exit codes: 0 success (plan: in sync), 1 error (nothing written or applied; apply names what it committed first),"
    " 2 changes pending (plan) or stale files (derive --check), 130 interrupted."
)

app = typer.Typer(
    name="schemadiff",
    help="Declarative PostgreSQL schema management: desired-state SQL in, reviewed golang-migrate migrations out.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class _Session:
    """The streams and flags of one ``run``; commands render through it."""

    out: Console
    err: Console
    debug: bool = False
    _live: object = None  # the spinner while ``working`` runs on a terminal
    json_command: str | None = None  # set when --format json was asked for: errors are written as JSON too
    json_written: bool = False  # the one envelope of this run is out: a later error must not print a second
    code: int | None = None  # the exit code, once the outcome is decided (a later signal does not change it)

    def status(self, message: str) -> None:
        if self._live is not None:
            # rich's spinner makes its own Text (not render_str): visible here, or BEL and CR would vanish.
            self._live.update(f"[dim]{escape(visible(message))}…[/dim]")

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """A spinner on stderr while long steps run (only on a terminal)."""
        if not self.err.is_terminal:
            yield
            return
        with self.err.status("[dim]Starting…[/dim]") as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None


_session: _Session | None = None


def _s() -> _Session:
    assert _session is not None, "commands run through schemadiff.cli.run"
    return _session


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("schemadiff")
        except PackageNotFoundError:  # running from a source tree that was never installed
            from . import __version__ as number
        _s().out.file.write(f"schemadiff {number}\n")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors (also accepted after the command).")
    ] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = None,
) -> None:
    _s().debug = _s().debug or debug


# ---------------------------------------------------------------------------
# Shared options

ServiceArg = Annotated[
    # "\\[" : typer renders help with rich, which would take [tool.schemadiff] for a style tag and drop it.
    Optional[str], typer.Argument(help="Service from \\[tool.schemadiff] in pyproject.toml (default: all).")
]
GenerateServiceArg = Annotated[
    Optional[str],
    typer.Argument(help="Service from \\[tool.schemadiff] in pyproject.toml (required when several are configured)."),
]
def _path_option(value: Optional[str]) -> Optional[Path]:
    # Path("") is the current directory: an unset variable in a pipeline
    # (`--dir "$MIGRATIONS"`) must not silently mean "here".
    if value is None:
        return None
    if not value.strip():
        raise typer.BadParameter("is empty; give a path (use . for the current directory)")
    return Path(value)


def _seconds_option(value: Optional[float]) -> Optional[float]:
    # Python's float() takes "nan", "inf" and negatives: none is a wait.
    # NaN compares false with everything, so a deadline never arrives.
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a number of seconds; give 0 or more (e.g. 60)")
    return value


def _url_option(value: Optional[str]) -> Optional[str]:
    # libpq reads "" as "all from the environment" (PGHOST, PGDATABASE... or
    # the local socket): an unset variable in a pipeline (`--db "$DATABASE_URL"`)
    # must not silently mean whatever database that is.
    if value is not None and not value.strip():
        raise typer.BadParameter("is empty; give a database URL")
    return value


DesiredOpt = Annotated[
    Optional[str],
    typer.Option("--desired", help="Desired-state SQL file (default: the service's).", callback=_path_option),
]
DirOpt = Annotated[
    Optional[str], typer.Option("--dir", help="Migration directory (default: the service's).", callback=_path_option)
]
OwnersOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--owners/--no-owners",
        help="Compare and set object owners (OWNER TO). Default: the service's `owners` setting, else off"
        " (owners usually differ between environments).",
        show_default=False,
    ),
]
DbOpt = Annotated[
    Optional[str],
    typer.Option("--db", help="Live database URL (default: the service's environment variable).", show_default=False,
                 callback=_url_option),
]
ShadowOpt = Annotated[
    Optional[str],
    typer.Option(
        "--shadow",
        envvar="SCHEMADIFF_SHADOW_URL",
        help="Existing PostgreSQL (with pgvector) for temporary databases; default: the embedded server.",
        show_default=False,
    ),
]


ExcludeOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--exclude",
        help="Leave objects matching this glob alone (name or schema.name; repeatable), with the service's"
        " exclude list.",
        show_default=False,
    ),
]
SchemaOpt = Annotated[
    Optional[list[str]],
    typer.Option("--schema", help="Manage only this schema (repeatable; default: every schema).", show_default=False),
]


class PlanFormat(str, Enum):
    text = "text"
    sql = "sql"
    json = "json"


# ---------------------------------------------------------------------------
# plan


@app.command()
def plan(
    service: ServiceArg = None,
    desired: DesiredOpt = None,
    directory: DirOpt = None,
    db: DbOpt = None,
    shadow: ShadowOpt = None,
    output_format: Annotated[PlanFormat, typer.Option("--format", help="text, sql or json.")] = PlanFormat.text,
    exclude: ExcludeOpt = None,
    schema: SchemaOpt = None,
    owners: OwnersOpt = None,
) -> None:
    """Show what would change to reach the desired state. Exit 0 in sync, 2 changes pending, 1 error."""
    from . import command

    session = _s()
    if directory is not None and db is not None:
        raise CommandError("--dir and --db are alternatives: compare with a migration directory or a live database")
    targets = command.resolve_targets(
        service, desired=desired, directory=directory, db=db, exclude=tuple(exclude or ()),
        schemas=tuple(schema or ()), owners=owners,
    )
    if output_format is PlanFormat.sql and len(targets) > 1:
        # Two databases' scripts in one stream would be one script to a reader (or to psql).
        raise CommandError(
            "plan --format sql prints one database's script: name the service",
            f"Configured services: {', '.join(t.label for t in targets)}. Run it once per service.",
        )
    results = []
    failed: list[tuple[str, CommandError]] = []
    with session.working():
        for target in targets:
            try:
                results.append(command.plan(target, shadow_url=shadow, status=session.status))
            except Interrupted:
                raise
            except CommandError as exc:
                if len(targets) == 1:
                    raise
                # A CI drift check over several services reports each one, not only those before a failure.
                failed.append((target.label, exc))
    problems = [problem for result in results for problem in result.row_problems]
    block: CommandError | None = None
    if failed:
        block = CommandError(
            f"plan failed for {len(failed)} of {len(targets)} services:\n"
            + "\n".join(f"  - {label}: {exc.message}" for label, exc in failed)
            + ("\nand the plan fails on the live database's rows:\n" + "\n".join(f"  - {p}" for p in problems)
               if problems else ""),
            "\n".join(dict.fromkeys(f"{label}: {exc.hint}" for label, exc in failed if exc.hint)) or None,
        )
    elif problems:
        block = ExistingRowsBlock(
            "the plan fails on the live database's rows:\n" + "\n".join(f"  - {p}" for p in problems),
            "Change the desired file as each line says; a migration generated from it as it is would fail there.",
        )
    if output_format is PlanFormat.json:
        # One envelope: the plans, and the error beside them (not a second document after them).
        error = None if block is None else {
            "type": type(block).__name__, "message": block.message, "hint": block.hint,
            "exit_code": block.exit_code,
        }
        _write_json("plan", [_plan_json(result) for result in results], error)
    elif output_format is PlanFormat.sql:
        from .command import describe

        for result in results:
            for change in result.changes:
                _write_exact(change.sql.rstrip() + "\n")
            if result.unexpressed:  # no SQL to print: the reason goes where errors go
                session.err.print(_unexpressed_text(result), markup=False)
            # stdout stays SQL for psql; what a reviewer must not miss goes where people look.
            for change in result.changes:
                if change.hazards:
                    statement = " ".join(change.sql.split())
                    session.err.print(f"warning: {', '.join(describe(change))}: {statement[:200]}", markup=False)
            for suggestion in result.probable_renames:
                session.err.print(f"probable rename: {suggestion}", markup=False)
    else:
        for result in results:
            _render_plan(result)
    for result in results:
        for note in result.notes:
            session.err.print(f"[yellow]warning:[/yellow] {escape(note)}")
    if block is not None:
        raise block
    if any(r.unexpressed for r in results):
        # Differences no migration can be generated for: an error, not pending changes.
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_OK if all(r.in_sync for r in results) else EXIT_CHANGES)


_SUMMARY_HEADERS = ("Table", "Added", "Removed", "Changed", "Hazards")


def _print_summary(out: Console, rows, hazards_by_group: dict[str, set[str]]) -> None:
    """The per-table summary: a table where every name fits in its column, else one block per table.

    A name is never cut ("posts_created_…") nor folded mid-name: a wrapped
    identifier reads as two, and a copied one is wrong. rich wraps cells at
    spaces and folds only a word longer than its column, so the table is
    used when each column can be as wide as its longest word; otherwise
    (long names at 80 columns) each table gets a block whose lines break
    between names only.
    """
    cells = [
        (row.table, ", ".join(row.added), ", ".join(row.removed), ", ".join(row.changed),
         sorted(hazards_by_group.get(row.table, ())))
        for row in rows
    ]
    needed = [
        max([len(header)] + [max((len(word) for word in _words(_plain(cell[i]))), default=0) for cell in cells])
        for i, header in enumerate(_SUMMARY_HEADERS)
    ]
    # rich's box: a border left of each column and one at the end; one space of padding each side but the edges.
    # rich breaks lines at every space, inside a quoted "my table" too: such a name gets the blocks.
    spaced = any(" " in word for cell in cells for text in cell for word in _words(_plain(text)))
    if not spaced and sum(needed) + 2 * len(needed) - 2 + len(needed) + 1 <= out.width:
        table = Table(show_lines=False, pad_edge=False)
        for header, width in zip(_SUMMARY_HEADERS, needed):
            table.add_column(header, min_width=width, overflow="fold")
        for cell in cells:
            table.add_row(*(escape(text) for text in cell[:4]), _hazard_markup(cell[4]))
        out.print(table)
        return
    for number, cell in enumerate(cells):
        if number:
            out.print()
        out.print(f"[bold]{escape(cell[0])}[/bold]", soft_wrap=True)
        for label, items in (("added", cell[1]), ("removed", cell[2]), ("changed", cell[3])):
            if items:
                for line in _wrap_words(f"  {label}: ", items, out.width):
                    out.print(escape(line), soft_wrap=True)
        if cell[4]:
            # Hazard labels have no identifiers: styled whole, one label per line when they do not fit.
            prefix = "  hazards: "
            lines = _wrap_words(prefix, ", ".join(cell[4]), out.width)
            if len(lines) == 1:
                out.print(escape(prefix) + _hazard_markup(cell[4]), soft_wrap=True)
            else:
                for index, label in enumerate(cell[4]):
                    head = prefix if index == 0 else " " * len(prefix)
                    comma = "," if index < len(cell[4]) - 1 else ""
                    out.print(escape(head) + _hazard_markup([label]) + comma, soft_wrap=True)


# A word for line breaking: a run of non-spaces, a double-quoted identifier
# counted whole with any spaces it holds.
_WORD = re.compile(r'(?:"(?:[^"]|"")*"|[^\s"])+')


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _plain(cell) -> str:
    return ", ".join(cell) if isinstance(cell, list) else cell


def _wrap_words(prefix: str, text: str, width: int) -> list[str]:
    """``prefix`` then ``text`` broken into lines of ``width`` between words only (see ``_words``).

    A word longer than a line gets a line of its own and runs past the
    width (the terminal may wrap it; its text stays whole). Continuation
    lines are indented under the first word.
    """
    indent = " " * len(prefix)
    lines, line, empty = [], prefix, True
    for word in _words(text):
        if not empty and len(line) + 1 + len(word) > width:
            lines.append(line)
            line, empty = indent, True
        line += ("" if empty else " ") + word
        empty = False
    lines.append(line)
    return lines


def _hazard_markup(labels, prefix: str = "") -> str:
    """Hazard labels styled by severity: data loss and broken clients white on red, the rest yellow."""
    from .command import SEVERE

    if not labels:
        return ""
    parts = []
    for label in labels:
        severe = label.split(" ", 1)[0] in SEVERE
        parts.append(f"[bold white on red]{escape(label)}[/]" if severe else f"[yellow]{escape(label)}[/yellow]")
    return escape(prefix) + ", ".join(parts)


def _unexpressed_text(result) -> str:
    lines = "\n".join(f"  - {line}" for line in result.unexpressed)
    return (
        f"{result.target.label}: not in sync. schemadiff finds nothing to change, but pg_dump --schema-only of the"
        f" desired and the current state differ, and schemadiff cannot express these differences yet:\n{lines}\n"
        "Write the migration by hand (then run `schemadiff hash`); please report the case."
    )


def _shown_path(path) -> str:
    """A path as the user would type it: relative to the working directory when below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --format json: one envelope for every command and every outcome, so a
# pipeline parses one shape. Bump JSON_VERSION on an incompatible change.
JSON_VERSION = 1


def _envelope(command: str, results: list, error: dict | None = None) -> dict:
    return {"schemadiff": JSON_VERSION, "command": command, "results": results, "error": error}


def _write_json(command: str, results: list, error: dict | None = None) -> None:
    session = _s()
    session.out.file.write(json.dumps(_envelope(command, results, error), indent=2) + "\n")
    session.json_written = True


def _plan_json(result) -> dict:
    from .command import lock_duration

    return {
        "service": result.target.service,
        "desired": _shown_path(result.target.desired),
        "compared_with": result.compared_with,
        "in_sync": result.in_sync,
        "unexpressed": result.unexpressed,
        "notes": result.notes,
        "summary": [
            {"table": row.table, "added": row.added, "removed": row.removed, "changed": row.changed}
            for row in result.summary()
        ],
        "probable_renames": [
            {"kind": r.kind, "old": r.old, "new": r.new, "hint": r.hint, "write_in": r.write_in, "message": str(r)}
            for r in result.probable_renames
        ],
        "errors": result.row_problems,
        "changes": [
            {
                "sql": c.sql,
                "action": c.action,
                "kind": c.kind,
                "name": c.name,
                "table": c.table,
                "hazards": list(c.hazards),
                "lock": lock_duration(c),
                "lock_mode": c.lock.value if c.lock else None,
                "locked_relation": c.relation,
                "other_locks": [{"relation": lock.relation, "mode": lock.mode.value} for lock in c.also_locks],
                "statement": c.statement,
                "transactional": c.transactional,
            }
            for c in result.changes
        ],
    }


def _render_plan(result) -> None:
    out = _s().out
    title = f"{escape(_shown_path(result.target.desired))} vs {escape(result.source)}"
    if result.target.service:
        title = f"[bold]{escape(result.target.service)}[/bold]: {title}"
    out.print(title)
    if result.unexpressed:
        out.print("[red]" + escape(_unexpressed_text(result)) + "[/red]\n")
        return
    if result.in_sync:
        out.print("[green]In sync: nothing to change.[/green]\n")
        return
    from .command import describe

    hazards_by_group: dict[str, set[str]] = {}
    for change in result.changes:
        group = change.table or f"{change.kind} {change.name}"
        hazards_by_group.setdefault(group, set()).update(describe(change))
    _print_summary(out, result.summary(), hazards_by_group)
    if out.is_terminal:
        from rich.syntax import Syntax

        # Hazard markers are printed as text, not as SQL comments, which the
        # highlighter would dim: the dangerous lines must be the loudest.
        for change in result.changes:
            if change.hazards:
                out.print(_hazard_markup(describe(change), prefix="-- ! "))
            out.print(Syntax(change.sql.rstrip(), "sql", theme="ansi_dark", background_color="default", word_wrap=True))
    else:  # a log or a pipe shows no colours: lexing the SQL would only cost time
        lines = []
        for change in result.changes:
            marker = f"-- ! {', '.join(describe(change))}\n" if change.hazards else ""
            lines.append(marker + change.sql.rstrip())
        out.print("\n".join(lines), markup=False)
    for suggestion in result.probable_renames:
        out.print(f"[yellow]probable rename:[/yellow] {escape(str(suggestion))}")
    out.print(f"[yellow]{len(result.changes)} statement(s) pending.[/yellow]\n")


# ---------------------------------------------------------------------------
# generate


@app.command()
def generate(
    name: Annotated[str, typer.Argument(help="Migration name, e.g. add_user_avatar.")],
    service: GenerateServiceArg = None,
    desired: DesiredOpt = None,
    directory: DirOpt = None,
    shadow: ShadowOpt = None,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="Allow changes that delete data (drops, narrowing types).")
    ] = False,
    allow_fails_on_existing_rows: Annotated[
        bool,
        typer.Option(
            "--allow-fails-on-existing-rows",
            help="Accept statements that fail on a table holding rows (a NOT NULL column added without a"
            " default), for tables known to be empty.",
        ),
    ] = False,
    online: Annotated[
        Optional[bool],
        typer.Option(
            "--online/--no-online",
            help="Rewrite risky statements into zero-downtime forms (CONCURRENTLY, NOT VALID + VALIDATE,"
            " lock timeouts), in as many files as that takes. Default: the service's `online` setting, else off.",
            show_default=False,
        ),
    ] = None,
    create_dir: Annotated[
        bool, typer.Option("--create-dir", help="Create the migration directory if it does not exist yet.")
    ] = False,
    exclude: ExcludeOpt = None,
    schema: SchemaOpt = None,
    owners: OwnersOpt = None,
) -> None:
    """Write the next verified migration pair NNNNNN_NAME.up.sql / .down.sql."""
    from . import command

    session = _s()
    targets = command.resolve_targets(
        service, desired=desired, directory=directory, exclude=tuple(exclude or ()), schemas=tuple(schema or ()),
        owners=owners,
    )
    if len(targets) != 1:
        raise CommandError(
            "generate writes one service's migration: name the service",
            f"Configured services: {', '.join(t.label for t in targets)}.",
        )
    with session.working():
        result = command.generate(
            name,
            targets[0],
            shadow_url=shadow,
            allow_destructive=allow_destructive,
            allow_fails_on_existing_rows=allow_fails_on_existing_rows,
            online=targets[0].online if online is None else online,
            create_directory=create_dir,
            status=session.status,
        )
    for note in result.notes:
        session.err.print(f"[yellow]warning:[/yellow] {escape(note)}")
    if not result.written:
        session.out.print(
            f"{escape(result.target.label)}: in sync with {escape(_shown_path(result.target.desired))}; nothing written."
        )
        return
    for path in result.written:
        session.out.print(f"wrote {escape(_shown_path(path))}")
    files = len(result.written) // 2  # an up and a down file per migration
    session.out.print(
        f"[green]Verified:[/green] up reaches the desired state and down returns:"
        f" {result.up_statements} statement(s) up in {files} migration(s)."
    )


# ---------------------------------------------------------------------------
# dump


@app.command()
def dump(
    service: Annotated[
        Optional[str], typer.Argument(help="Service whose database to read (its environment variable), and exclude list.")
    ] = None,
    db: DbOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.", dir_okay=False)
    ] = None,
    shadow: ShadowOpt = None,
    exclude: ExcludeOpt = None,
    schema: SchemaOpt = None,
) -> None:
    """Write an existing database's schema as a desired-state file (adopting a database an ORM built)."""
    from . import command

    session = _s()
    targets = command.resolve_targets(
        service, desired=Path("-"), db=db, exclude=tuple(exclude or ()), schemas=tuple(schema or ())
    ) if service else None
    url = db if db is not None else (targets[0].db_url if targets else None)
    if not url:
        raise CommandError(
            "dump needs a database: pass --db URL" + (" or set the service's environment variable" if service else ""),
        )
    scope = targets[0].scope if targets else command.scope_of(exclude or (), schema or ())
    with session.working():
        result = command.dump(url, scope=scope, shadow_url=shadow, status=session.status)
    if output is None:
        _write_exact(result.text)
        return
    command.write_text_file(output, result.text)
    session.err.print(f"wrote {escape(_shown_path(output))} ({result.statements} statement(s) from {escape(result.source)})")


# ---------------------------------------------------------------------------
# new


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Migration name, e.g. backfill_post_slugs.")],
    service: Annotated[
        Optional[str], typer.Argument(help="Service from pyproject.toml (optional when only one is configured).")
    ] = None,
    directory: DirOpt = None,
    create_dir: Annotated[
        bool, typer.Option("--create-dir", help="Create the migration directory if it does not exist yet.")
    ] = False,
) -> None:
    """Write an empty numbered pair for a data migration or backfill, and record it in schemadiff.sum."""
    from . import command

    target = command.resolve_runner_target(service, directory=directory, need_db=False)
    result = command.new_migration(name, target, create_directory=create_dir)
    session = _s()
    for path in result.written:
        session.out.print(f"wrote {escape(_shown_path(path))}")
    hash_command = f"schemadiff hash --dir {shlex.quote(str(target.directory))}"
    session.out.print(f"Write the SQL in both files, then run `{escape(hash_command)}` to record them.")


# ---------------------------------------------------------------------------
# derive


@app.command()
def derive(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 2 when a derived file is stale.")] = False,
) -> None:
    """Write each service's desired-state file from the archive (pyproject.toml: tool.schemadiff.archive)."""
    from . import command

    session = _s()
    results = command.derive(check=check)
    stale = [r for r in results if r.changed]
    for result in results:
        if check:
            state = "[red]stale[/red]" if result.changed else "up to date"
        else:
            state = "written" if result.changed else "unchanged"
        session.out.print(f"{escape(str(result.path))}: {state}")
    if check and stale:
        session.err.print("Run `schemadiff derive` and commit the result.")
        raise typer.Exit(EXIT_CHANGES)


# ---------------------------------------------------------------------------
# apply, status, force, hash

RunnerServiceArg = Annotated[
    Optional[str], typer.Argument(help="Service from pyproject.toml (optional when only one is configured).")
]
RunnerDbOpt = Annotated[
    Optional[str],
    typer.Option("--db", help="Database URL (default: the service's environment variable).", show_default=False,
                 callback=_url_option),
]


@app.command()
def apply(
    service: RunnerServiceArg = None,
    db: RunnerDbOpt = None,
    directory: DirOpt = None,
    to: Annotated[Optional[int], typer.Option("--to", help="Move to this version, up or down (0: none applied).")] = None,
    down: Annotated[Optional[int], typer.Option("--down", help="Revert the last N applied migrations.")] = None,
    baseline: Annotated[
        Optional[int], typer.Option("--baseline", help="Adopt an unversioned database: record VERSION as applied.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run; touch nothing.")] = False,
    lock_timeout: Annotated[
        Optional[float], typer.Option("--lock-timeout", help="Seconds to wait for another migrator (default 60).",
                                      callback=_seconds_option)
    ] = None,
    allow_destructive: Annotated[
        bool,
        typer.Option(
            "--allow-destructive",
            help="Go down through files that delete or may delete data (drops, TRUNCATE, DELETE, UPDATE, DO,"
            " CALL) without asking.",
        ),
    ] = False,
    allow_out_of_order: Annotated[
        bool,
        typer.Option("--allow-out-of-order", help="Run files added below the current version that never ran."),
    ] = False,
    require_sum: Annotated[
        bool, typer.Option("--require-sum", help="Refuse a directory without schemadiff.sum.")
    ] = False,
    backup: Annotated[
        Optional[str],
        typer.Option(
            "--backup", help="pg_dump the database into this directory before any step that deletes data.",
            callback=_path_option,
        ),
    ] = None,
    allow_drift: Annotated[
        bool,
        typer.Option(
            "--allow-drift",
            help="Run files whose recorded starting schema differs from the live one, and baseline a schema"
            " that differs from the replayed directory.",
        ),
    ] = False,
    shadow: ShadowOpt = None,
) -> None:
    """Apply pending migrations in version order (golang-migrate compatible)."""
    from . import command

    if to is not None and down is not None:
        raise CommandError("--to and --down are alternatives: give one")
    target = command.resolve_runner_target(service, directory=directory, db=db)
    _run_migrations(
        target, to=to, down=down, baseline=baseline, dry_run=dry_run, lock_timeout=lock_timeout,
        allow_destructive=allow_destructive, allow_out_of_order=allow_out_of_order, require_sum=require_sum,
        backup=backup, confirm=_confirm_destructive, allow_drift=allow_drift, shadow_url=shadow,
    )


def _confirm_destructive(steps) -> bool:
    """Ask on a terminal before going down through files that delete data (golang-migrate's down asks too).

    Never asks when stdin is not a terminal: an unattended pipeline gets the refusal and its hint.
    """
    session = _s()
    if not (sys.stdin.isatty() and session.err.is_terminal):
        return False
    session.err.print("[yellow]Going down runs statements that delete data:[/yellow]")
    for step in steps:
        for line in step.deletes_data:
            session.err.print(f"  {escape(line)}")
    session.err.print(escape("Continue? [y/N] "), end="")  # unescaped, rich reads "[y/N]" as a style and drops it
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def _run_migrations(target, **options) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from . import command
    from .command import redact

    session = _s()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=session.err, transient=True, disable=not session.err.is_terminal,
    )
    task = None

    def on_event(event) -> None:
        nonlocal task
        if isinstance(event, command.FilesIgnored):
            for path in event.files:
                session.err.print(
                    f"[yellow]warning:[/yellow] {escape(_file_shown(path))} looks like a migration but does not"
                    f" match golang-migrate's NNNNNN_name.up.sql / .down.sql pattern ({_ignored_reason(path)}):"
                    " neither tool will run it."
                )
        elif isinstance(event, command.RunsDifferentlyUnderGolangMigrate):
            _golang_migrate_warning(event)
        elif isinstance(event, command.BackupWritten):
            session.out.print(f"backup written: {escape(str(event.path))} (restore with pg_restore; see README)")
        elif isinstance(event, command.SumUnchecked):
            session.err.print(
                f"[yellow]warning:[/yellow] {escape(str(event.directory))} has no schemadiff.sum; edits to its"
                f" files cannot be detected (run `{escape('schemadiff hash --dir ' + shlex.quote(str(event.directory)))}`"
                " to start checking)."
            )
        elif isinstance(event, command.LockWaiting):
            holder = f" held by {event.holder.describe()}" if event.holder else ""
            session.err.print(f"waiting for the migration lock{escape(holder)}…")
        elif isinstance(event, command.DownChangedSinceApplied):
            session.err.print(
                f"[yellow]warning:[/yellow] {escape(event.name)} changed since version {event.version} was applied"
                " (it is not the down file that was there then)."
            )
        elif isinstance(event, command.ChangedSinceApplied):
            session.err.print(
                f"[yellow]warning:[/yellow] {escape(event.name)} changed since it was applied (version {event.version})."
            )
        elif isinstance(event, command.LockYielded):
            who = ", ".join(w.describe() for w in event.waiters) or "another session"
            session.err.print(
                f"{escape(who)} waited for the migration lock before an index build; letting it go first"
                " (a concurrent build would deadlock with its wait)…"
            )
        elif isinstance(event, command.LockWaiterCanceled):
            who = f"pid {event.waiter.pid}" + (
                f" ({event.waiter.application_name})" if event.waiter.application_name else ""
            )
            session.err.print(
                f"[yellow]warning:[/yellow] {escape(who)} began waiting for the migration lock while"
                f" {escape(event.step.name)} built an index concurrently; its wait was canceled (it would have"
                " deadlocked with the build). It ran nothing: run it again."
            )
        elif isinstance(event, command.Baselined):
            session.out.print(f"baselined at version {event.version} (nothing run)")
        elif isinstance(event, command.MigrationStarted):
            if task is None:
                task = progress.add_task("migrating", total=None)
            progress.update(task, description=f"{event.step.direction} {event.step.name}")
        elif isinstance(event, command.MigrationFinished):
            if task is not None:
                progress.advance(task)

    confirm = options.get("confirm")
    if confirm is not None:

        def confirm_paused(steps) -> bool:
            # The progress display redraws its line ten times a second: running, it would erase the question.
            progress.stop()
            try:
                return confirm(steps)
            finally:
                progress.start()

        options["confirm"] = confirm_paused
    try:
        with progress:
            result = command.apply(target, on_event=on_event, **options)
    except KeyboardInterrupt:  # a second signal while the runner reported the first
        raise Interrupted(
            "interrupted; the database's state was not read", "Run `schemadiff status` before trying again."
        ) from None
    where = redact(target.db_url)
    if result.dry_run:
        if not result.schedule:
            session.out.print(f"{escape(where)}: nothing to run (version {_v(result.final_version)}).")
        for step in result.schedule:
            kind = "" if step.transactional else " (statement by statement: not transactional)"
            session.out.print(f"would run {escape(step.name)}{kind}")
            for line in step.deletes_data:
                session.out.print(f"  [red]deletes-data[/red] {escape(line)}")
        if result.schedule:
            session.out.print(f"would move {escape(where)} from version {_v(result.start_version)} to {_v(result.final_version)}")
        return
    if not result.applied:
        session.out.print(f"{escape(where)}: up to date at version {_v(result.final_version)}.")
        return
    # Aligned columns printed as one block of plain text: a rich Table measured every cell (0.26 s for 500
    # files, half the runner's own overhead per file), and plain lines keep long names whole at 80 columns.
    rows = [("Migration", "Direction", "Time")] + [
        (applied.step.name, applied.step.direction, f"{applied.duration_ms} ms") for applied in result.applied
    ]
    width = max(len(name) for name, _, _ in rows)
    session.out.print(
        "\n".join(f"{name:<{width}}  {direction:<9}  {took}" for name, direction, took in rows),
        markup=False, highlight=False, soft_wrap=True,
    )
    # golang-migrate's words: "up" applies a migration, "down" rolls it back.
    ups = sum(1 for applied in result.applied if applied.step.direction == "up")
    downs = len(result.applied) - ups
    counts = ", ".join(
        f"{count} migration(s) {verb}" for count, verb in ((ups, "applied"), (downs, "rolled back")) if count
    )
    session.out.print(
        f"[green]{escape(where)}: version {_v(result.start_version)} -> {_v(result.final_version)},"
        f" {counts}.[/green]"
    )


def _file_shown(path: Path) -> str:
    """A file's path with its name quoted when it holds spaces, line breaks or other invisible characters."""
    name = path.name
    plain = name.isprintable() and name == name.strip()
    return str(path) if plain else str(path.parent / repr(name))


def _ignored_reason(path: Path) -> str:
    from .command import ignored_reason

    return escape(ignored_reason(path.name))


def _v(version) -> str:
    return "none" if version is None else str(version)


class StatusFormat(str, Enum):
    text = "text"
    json = "json"


@app.command()
def status(
    service: RunnerServiceArg = None,
    db: RunnerDbOpt = None,
    directory: DirOpt = None,
    output_format: Annotated[StatusFormat, typer.Option("--format", help="text or json.")] = StatusFormat.text,
) -> None:
    """Current version, dirty flag, and each migration's state."""
    from . import command

    session = _s()
    target = command.resolve_runner_target(service, directory=directory, db=db)
    report = command.status(target)
    if output_format is StatusFormat.json:
        _write_json("status", [{
            "service": target.label,
            "database": report.database,
            "directory": str(target.directory),
            "version": report.version,
            "dirty": report.dirty,
            "dirty_reason": report.dirty_reason,
            "latest": report.latest,
            "sum_verified": report.sum_verified,
            "migrations": [
                {"version": row.version, "name": row.name, "state": row.state,
                 "applied_at": row.applied_at.isoformat(timespec="seconds") if row.applied_at else None}
                for row in report.migrations
            ],
        }])
        return
    state = "[red]dirty[/red]" if report.dirty else "clean"
    session.out.print(f"{escape(report.database)}: version {_v(report.version)} ({state}), latest file {_v(report.latest)}")
    if report.dirty and report.dirty_reason:
        session.out.print(f"[red]{escape(report.dirty_reason)}[/red]")
    if not report.sum_verified:
        session.out.print("[yellow]no schemadiff.sum: file edits cannot be detected[/yellow]")
    for path in report.ignored:
        session.out.print(
            f"[yellow]ignored (not golang-migrate's file pattern: {_ignored_reason(path)}):[/yellow]"
            f" {escape(_file_shown(path))}"
        )
    table = Table("Version", "File", "State", "Applied at")
    colours = {
        "applied": "green", "pending": "yellow", "missing_file": "red", "changed": "red", "dirty": "red",
        "never_applied": "red",
    }
    labels = {
        "missing_file": "missing file", "changed": "changed since applied",
        "never_applied": "never applied (added below the current version)",
    }
    for row in report.migrations:
        colour = colours.get(row.state, "white")
        table.add_row(
            str(row.version), escape(row.name), f"[{colour}]{labels.get(row.state, row.state)}[/{colour}]",
            row.applied_at.isoformat(timespec="seconds") if row.applied_at else "",
        )
    session.out.print(table)


# ignore_unknown_options: `force -1` (golang-migrate's "no version") is a
# number, not an unknown option; real options are still parsed.
@app.command(context_settings={"ignore_unknown_options": True})
def force(
    version: Annotated[str, typer.Argument(help="Version to record (-1: none).")],
    service: RunnerServiceArg = None,
    db: RunnerDbOpt = None,
    directory: DirOpt = None,
) -> None:
    """Set the version and clear dirty, running nothing (golang-migrate's force)."""
    from . import command

    session = _s()
    number = _force_version(version, service)
    target = command.resolve_runner_target(service, directory=directory, db=db)
    result = command.force(target, number)
    stored = result.previous.row
    was = stored if stored is not None and stored < -1 else result.previous.version  # a row no migration names
    session.out.print(
        f"forced version {_v(result.version)} (was {_v(was)}"
        f"{', dirty' if result.previous.dirty else ''}); nothing was run."
    )


def _force_version(version: str, service: str | None) -> int:
    """``force``'s VERSION as a number; swapped arguments (``force cortex 3``) get the right order as the hint."""
    try:
        return int(version)
    except ValueError:
        pass
    if service is not None and service.lstrip("-").isdigit():
        raise CommandError(
            f"force takes the version first, then the service: {version!r} is not a version",
            f"Run `schemadiff force {service} {shlex.quote(version)}`.",
        )
    raise CommandError(
        f"invalid version {version!r}: force takes a whole number (-1: no version recorded)",
        "Run `schemadiff force VERSION [SERVICE]`, e.g. `schemadiff force 3` (see `schemadiff status`).",
    )


@app.command("hash")
def hash_(service: RunnerServiceArg = None, directory: DirOpt = None) -> None:
    """Rewrite the migration directory's schemadiff.sum after a deliberate edit."""
    from . import command

    target = command.resolve_runner_target(service, directory=directory, need_db=False)
    path = command.rehash(target.directory)
    _s().out.print(f"wrote {escape(str(path))}")
    for difference in command.golang_migrate_differences(target.directory):
        _golang_migrate_warning(difference)


def _golang_migrate_warning(event) -> None:
    """A file golang-migrate would run differently: recorded as it is, but said (``hash`` and ``apply``)."""
    hint = f" {event.hint}" if event.hint else ""
    _s().err.print(
        f"[yellow]warning:[/yellow] {escape(event.message)}; `schemadiff apply` runs it its own way, so the two"
        f" runners cannot stand in for each other on this file.{escape(hint)}"
    )


# ---------------------------------------------------------------------------
# server

server_app = typer.Typer(
    help="The embedded shadow server: status, createdb (a scratch database to try apply), stop, clean.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


def _size(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"


@server_app.command("status")
def server_status() -> None:
    """Show whether the embedded server runs, from which installation, and the space it holds."""
    from . import command

    state = command.server_status()
    out = _s().out
    if state.pid is None:
        out.print(f"embedded shadow server: not running (data directory {escape(str(state.pgdata))})")
    else:
        out.print(f"embedded shadow server: running, pid {state.pid}, data directory {escape(str(state.pgdata))}")
        out.print(f"installation: {escape(str(state.binary.parent.parent)) if state.binary else 'unknown'}")
        if state.problem:
            out.print(f"[yellow]stale[/yellow]: {escape(state.problem)}; the next run restarts it")
    out.print(f"disk: {_size(state.disk_bytes)}")
    if state.memory_directory is not None:
        out.print(f"memory: {_size(state.memory_bytes)} in {escape(str(state.memory_directory))}")
    else:
        out.print("memory: none")
    out.print("a database to try apply on: `schemadiff server createdb NAME` makes one and prints its URL")


@server_app.command("createdb")
def server_createdb(
    name: Annotated[str, typer.Argument(help="Database name, e.g. cortex_dev.")],
) -> None:
    """Make a scratch database on the embedded server to try apply, and print its URL (throwaway: no fsync)."""
    from . import command

    session = _s()
    with session.working():
        scratch = command.server_createdb(name, status=session.status)
    # The URL alone on stdout, for `export CORTEX_DATABASE_URL=$(schemadiff server createdb cortex_dev)`.
    _write_exact(scratch.url + "\n")
    what = "created" if scratch.created else "already exists:"
    session.err.print(f"{what} database {escape(scratch.name)} on the embedded server (throwaway: fsync is off,"
                      " and `schemadiff server clean` deletes it)")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the embedded server; the next run starts it again (its data stays)."""
    from . import command

    stopped = command.server_stop()
    _s().out.print("stopped the embedded shadow server" if stopped else "the embedded shadow server was not running")


@server_app.command("clean")
def server_clean() -> None:
    """Stop the embedded server and delete its data and in-memory databases (all throwaway)."""
    from . import command

    removed = command.server_clean()
    if not removed:
        _s().out.print("nothing to clean")
    for path in removed:
        _s().out.print(f"removed {escape(str(path))}")


# ---------------------------------------------------------------------------
# Entry points


def run(args: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the CLI with ``args``, writing to ``out``/``err``; return the exit code.

    Ctrl-C or SIGTERM (turned into KeyboardInterrupt by ``main``) returns
    130 with one line whenever it arrives: before the command started
    (imports, reading the arguments), during it, or while a failure is
    reported (then the failure's own code: the command had already ended).
    """
    global _session
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    previous = _session
    try:
        return _run(args, out, err)
    except KeyboardInterrupt:
        session = _session if _session is not previous else None
        if session is not None and session.code is not None:
            return session.code  # the outcome was decided (and being reported) when the signal came
        with contextlib.suppress(BaseException):  # a second signal while this line is written changes nothing
            err.write(f"interrupted: {INTERRUPTED_BEFORE_WRITING}\n")
            err.flush()
        return EXIT_INTERRUPTED
    finally:
        _session = previous


# What an interrupt means when the command reports nothing of its own: files
# are written all or nothing and apply reports its interruption itself
# (errors.Interrupted) with what it applied.
INTERRUPTED_BEFORE_WRITING = "nothing was written; temporary databases were dropped."


# The signals ``schemadiff.entry`` turned into KeyboardInterrupt (the same list object), latest last.
signals_received: list[int] = []


def _run(args: list[str], out: TextIO, err: TextIO) -> int:
    global _session
    signals_before = len(signals_received)
    secrets = _secrets(args)
    _session = _Session(out=_console(out, secrets), err=_console(err, secrets))
    _session.json_command = _json_command(args)
    args, _session.debug = _take_debug(list(args))
    session = _session
    try:
        command = typer.main.get_command(app)
        raw_out = _Scrubbed(out, secrets) if secrets else out
        raw_err = _Scrubbed(err, secrets) if secrets else err
        with contextlib.redirect_stdout(raw_out), contextlib.redirect_stderr(raw_err):
            code = command.main(args=args, prog_name="schemadiff", standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130) itself
            return _interrupted()
        session.code = int(code or 0)
        return session.code
    except SystemExit as exc:  # --show-completion / --install-completion end with sys.exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    except CommandError as exc:
        if len(signals_received) > signals_before and not isinstance(exc, Interrupted):
            # The interrupt came first: a cleanup it ran through failed (a psycopg call in a `finally`
            # while the query it interrupted was still being cancelled) and that error replaced it.
            return _interrupted()
        session.code = exc.exit_code
        _report(exc)
        _json_error(type(exc).__name__, exc.message, exc.hint, exc.exit_code)
        return exc.exit_code
    except typer.Abort:
        return _interrupted()
    except KeyboardInterrupt:
        return _interrupted()
    except typer.exceptions.TyperException as exc:  # usage errors from the parser
        session.code = EXIT_ERROR
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        session.err.print(f"[red]error:[/red] {escape(message)}")
        session.err.print("Run 'schemadiff --help' (or 'schemadiff COMMAND --help') for usage.")
        _json_error("UsageError", message, "Run 'schemadiff COMMAND --help' for usage.", EXIT_ERROR)
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so plainly, traceback only on --debug
        session.code = EXIT_ERROR
        if session.debug:
            session.err.print(escape(traceback.format_exc()))
        session.err.print(
            f"[red]error:[/red] unexpected {type(exc).__name__}: {escape(str(exc))}\n"
            "This is a bug in schemadiff; re-run with --debug for the traceback and please report it."
        )
        _json_error(type(exc).__name__, f"unexpected {type(exc).__name__}: {exc}",
                    "This is a bug in schemadiff; re-run with --debug for the traceback.", EXIT_ERROR)
        return EXIT_ERROR


class _ClosedPipeSafe(io.TextIOBase):
    """A text stream that stops writing, silently, once its reader has gone.

    ``schemadiff plan | head -1``: head exits after one line and the next
    write fails with EPIPE. A reader that has read enough is not an error
    (as for any Unix filter): the rest of the output is dropped and the
    command ends as it would have, with its own exit code (2: changes).
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone = True
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone = True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self):  # rich asks, to choose its box characters
        return getattr(self._stream, "encoding", "utf-8")


def _take_debug(args: list[str]) -> tuple[list[str], bool]:
    """``--debug`` wherever it is written (``schemadiff plan --debug`` too), as people type it after the command.

    Arguments after ``--`` are left alone.
    """
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    return [a for i, a in enumerate(args) if not (i < end and a == "--debug")], found


def _json_command(args: list[str]) -> str | None:
    """The command's name when ``--format json`` was asked for (so errors come as JSON too), else None."""
    for index, arg in enumerate(args):
        if arg == "--format=json" or (arg == "--format" and args[index + 1 : index + 2] == ["json"]):
            return next((a for a in args if not a.startswith("-") and a in _COMMANDS), "schemadiff")
    return None


_COMMANDS = ("plan", "generate", "derive", "dump", "new", "apply", "status", "force", "hash")


def _json_error(kind: str, message: str, hint: str | None, exit_code: int) -> None:
    """The error as the JSON envelope on stdout (the text stays on stderr for people)."""
    session = _s()
    if session.json_command is None or session.json_written:
        return
    with contextlib.suppress(Exception):
        _write_json(session.json_command, [], {"type": kind, "message": message, "hint": hint, "exit_code": exit_code})


# Characters that text from untrusted SQL (comments, names, COMMENT ON text,
# the server's messages quoting it, file names) must not send to a terminal
# as they are: C0 controls but tab and newline (ESC starts CSI colour and
# cursor sequences, OSC 8 links and OSC 52 clipboard writes; BEL, CR and
# backspace overwrite what a reviewer reads), DEL, the C1 controls (U+009B is
# CSI on its own), and Unicode's invisible format characters: the bidi
# embeddings, overrides and isolates ("Trojan Source", CVE-2021-42574),
# zero-width characters and the BOM, which make a name look like another.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]"
)


def visible(text: str) -> str:
    """``text`` with each unsafe character (see ``_UNSAFE``) written as a visible escape: ``\\x1b``, ``\\u202e``.

    Everything else, other Unicode letters included, is left as it is.
    """
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class _SafeConsole(Console):
    """A rich Console whose output never carries a control character from the text it prints.

    Strings are made ``visible`` before markup is parsed (rich itself would
    drop BEL or CR silently and keep ESC); whatever reaches the output as
    text otherwise (highlighted SQL, tables) is made visible segment by
    segment. rich's own styles and cursor controls are not text, so colours
    and the spinner still work.
    """

    def render_str(self, text: str, **kwargs):  # type: ignore[override]
        return super().render_str(visible(text), **kwargs)

    def _render_buffer(self, buffer):  # rich's last step before writing; absent in some version: render_str still holds
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style, segment.control)
            for segment in buffer
        )


def _write_exact(text: str) -> None:
    """Machine output (SQL for a file or psql) as it is, but made visible when a person reads it on a terminal.

    Escaping a pipe's or a file's bytes would change the SQL (a comment's
    text); a terminal would act on them.
    """
    session = _s()
    session.out.file.write(visible(text) if session.out.is_terminal else text)


def _console(stream: TextIO, secrets: tuple[str, ...] = ()) -> Console:
    # Non-terminals (pipes, CI logs, tests) get plain text at a readable width.
    is_terminal = hasattr(stream, "isatty") and stream.isatty() and not isinstance(stream, io.StringIO)
    width = None if is_terminal else 160
    if not is_terminal and os.environ.get("COLUMNS", "").isdigit():  # the width a log or pager asks for
        width = int(os.environ["COLUMNS"])
    file = _Scrubbed(stream, secrets) if secrets else stream
    return _SafeConsole(file=file, width=width, highlight=False, soft_wrap=not is_terminal)


# Passwords shorter than this are not searched for in output text (every
# "a" would go); they are still never printed where a URL is printed.
_SCRUB_MIN = 4
_URL_OPTIONS = ("--db", "--shadow")


def _secrets(args: list[str]) -> tuple[str, ...]:
    """Passwords of every URL this run was given (arguments, environment), longest first.

    The last line of defence: whatever path prints text holding one (an
    error quoting a malformed URL, a traceback under --debug), the console
    writes *** instead. The first line is ``dburl.redact`` wherever a URL
    is shown.
    """
    import os

    urls = [value for value in os.environ.values() if "://" in value or "password" in value.lower()]
    for index, arg in enumerate(args):
        if arg in _URL_OPTIONS and index + 1 < len(args):
            urls.append(args[index + 1])
        elif arg.startswith(tuple(option + "=" for option in _URL_OPTIONS)):
            urls.append(arg.split("=", 1)[1])
    if not urls:  # nothing to scrub: psycopg (a fifth of a second to import) is left for the commands that connect
        return ()
    from .command import passwords

    found = {secret for url in urls for secret in passwords(url) if len(secret) >= _SCRUB_MIN}
    return tuple(sorted(found, key=len, reverse=True))


class _Scrubbed(io.TextIOBase):
    """A text stream that writes ``***`` for each of ``secrets``."""

    def __init__(self, stream: TextIO, secrets: tuple[str, ...]) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return hasattr(self._stream, "isatty") and self._stream.isatty()

    @property
    def encoding(self) -> str:  # rich asks, to choose its characters
        return getattr(self._stream, "encoding", None) or "utf-8"


def _report(exc: CommandError) -> None:
    session = _s()
    if session.debug:
        session.err.print(escape(traceback.format_exc()))
    session.err.print(f"[red]error:[/red] {escape(exc.message)}")
    if exc.hint:
        session.err.print(escape(exc.hint))


def _interrupted() -> int:
    # Reached only where nothing had been written or applied yet (see INTERRUPTED_BEFORE_WRITING).
    session = _s()
    session.code = EXIT_INTERRUPTED
    session.err.print(f"[yellow]interrupted[/yellow]: {INTERRUPTED_BEFORE_WRITING}")
    _json_error("Interrupted", f"interrupted: {INTERRUPTED_BEFORE_WRITING}", None, EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def main() -> None:
    """The console script's work, after ``schemadiff.__main__`` has made SIGTERM unwind like Ctrl-C.

    (A CI job cancelled: temporary databases are dropped and no file is left
    half-written.) Never returns: the process ends with ``run``'s code.
    """
    # A schema model is a few hundred thousand objects without cycles. At
    # the default thresholds the cyclic collector rescans them again and
    # again while they are built: a third of diffing and over half of
    # unpickling at 1,000 tables. A short-lived command can collect
    # rarely (mypy does the same); the modules loaded so far never.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    _exit(run(sys.argv[1:], out=_ClosedPipeSafe(sys.stdout)))


def _exit(code: int) -> None:
    """End the process without the interpreter's teardown.

    Freeing every loaded module object by object takes about 50 ms, a
    tenth of a warm plan, for nothing (mypy exits the same way). What an
    exit must still do is done: the exit handlers run (a scheduled template
    prune starts there) and the output is flushed.
    """
    import atexit
    import os

    # The outcome is decided: a signal now would only turn cleanup into a traceback.
    for signum in (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())):
        signal.signal(signum, signal.SIG_IGN)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`| head`) has nothing left to flush to
            stream.flush()
    os._exit(code)
