"""The one error root of schemadiff.

Every failure a user can cause or meet (bad SQL, a missing file, an
unreachable server, a dirty database, a tampered migration) is raised as a
:class:`CommandError` subclass carrying a message that says what is wrong and
a hint that says what to do. The CLI catches ``CommandError`` in one place,
prints it without a traceback and exits with :attr:`CommandError.exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes, shared by every command (documented in README and --help).
EXIT_OK = 0  # success; for plan and derive --check: nothing to change
EXIT_ERROR = 1  # any error: nothing was written or applied
EXIT_CHANGES = 2  # plan: changes pending; derive --check: files are stale
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM; temporary databases are dropped


class CommandError(Exception):
    """A failure to report to the user as one clear message."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(CommandError):
    """The configuration or a command-line argument is wrong."""


class InputFileError(CommandError):
    """A file the user named is missing or unreadable."""


@dataclass(frozen=True)
class SourcePosition:
    """Where something sits in a SQL file (1-based line and column)."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class SQLSyntaxError(CommandError):
    """A SQL file does not parse; carries file, line, column and statement."""

    def __init__(self, position: SourcePosition, reason: str, statement: str, line: str | None = None,
                 statement_line: int | None = None) -> None:
        """``line``: the text of the line ``position`` names (then shown with a caret under its column);
        ``statement_line``: where the statement starts, named when that is another line."""
        self.position = position
        self.reason = reason
        self.statement = statement
        if line is None:
            shown = _first_lines(statement)
        else:
            # The caret sits under the column the parser names; tabs stay tabs so it lines up.
            pad = "".join("\t" if char == "\t" else " " for char in line[: max(position.column - 1, 0)])
            shown = f"{line.rstrip()}\n    {pad}^"
            if statement_line is not None and statement_line != position.line:
                first = statement.strip().splitlines()[0] if statement.strip() else ""
                shown += f"\n    (in the statement starting at line {statement_line}: {first})"
        super().__init__(
            f"{position}: {reason}\n    {shown}",
            "Fix the SQL and run the command again; nothing was written.",
        )


class DatabaseError(CommandError):
    """A database could not be reached or refused a statement."""


class ShadowServerError(CommandError):
    """The shadow server could not be started or used."""


class ShadowTimeout(CommandError):
    """A statement of untrusted SQL (desired file, replayed or verified migration) ran longer than the shadow
    server's time limit (``SCHEMADIFF_SHADOW_TIMEOUT`` / ``shadow_timeout``, seconds) and was stopped; exit 1."""


class MigrationDirectoryError(CommandError):
    """A migration directory is malformed or fails its integrity check."""


class MigrationStateError(CommandError):
    """The database's migration state forbids the operation (dirty, unknown version...)."""


class MigrationFailed(CommandError):
    """A migration statement failed while being applied.

    ``sqlstate`` (PostgreSQL's error code), ``statement`` (its text) and
    ``diag`` (psycopg's ``Diagnostic``: constraint, table, column names) are
    set when a statement failed, None otherwise.
    """

    sqlstate: str | None = None
    statement: str | None = None
    diag: object | None = None


class ServerResourceError(MigrationFailed):
    """The server ran out of a resource (SQLSTATE class 53 or 54) while running a migration.

    ``resource`` names it (e.g. "its lock table (max_locks_per_transaction)"):
    a limit of the server, not a wrong statement.
    """

    def __init__(self, message: str, hint: str | None = None, *, resource: str = "a resource") -> None:
        super().__init__(message, hint)
        self.resource = resource


class LockTimeout(CommandError):
    """Another migrator holds the migration lock."""


class DestructiveChangeRefused(CommandError):
    """A plan deletes data and --allow-destructive was not given."""


class FailsOnExistingRowsRefused(CommandError):
    """A plan adds a NOT NULL column without a default (fails on any row) and the user did not accept it."""


class ExistingRowsBlock(CommandError):
    """``plan --db``: the live database holds rows a planned statement fails on."""
class SchemaDrift(CommandError):
    """The live schema is not the one a migration (or a baseline) expects; nothing was run."""


class BackupFailed(CommandError):
    """``apply --backup``: ``pg_dump`` could not be found or failed, so nothing was run."""


class Interrupted(CommandError):
    """Ctrl-C or SIGTERM stopped a command after it had done something; the message says what.

    Interruptions before anything was written stay plain KeyboardInterrupts
    (the CLI's generic message); this one carries what was applied or
    written and the state left, so that the message is true.
    """

    exit_code = EXIT_INTERRUPTED


class UnsupportedChange(CommandError):
    """The change involves a kind of object schemadiff does not create, alter or drop."""


class OrderingCycle(CommandError):
    """The engine's statements depend on each other in a cycle: no order of them can run."""


class VerificationFailed(CommandError):
    """A generated migration did not reach the state it was generated for."""


class CannotExpress(CommandError):
    """The schemas differ (PostgreSQL's pg_dump says so) in a way the engine cannot express yet.

    ``differences`` are ``schemadiff.shadow.dumpjudge.differences`` lines: "missing:
    <statement>" (the desired state has it, the current state lacks it),
    "unexpected: <statement>" (the other way round).
    """

    _SHOWN = 20

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        shown = "\n".join(f"  - {line}" for line in differences[: self._SHOWN])
        if len(differences) > self._SHOWN:
            shown += f"\n  ... and {len(differences) - self._SHOWN} more"
        super().__init__(
            "schemadiff finds nothing to change, but pg_dump --schema-only of the desired and the current state"
            f" differ; schemadiff cannot express these differences yet, so nothing was written:\n{shown}",
            "Write the migration by hand (then run `schemadiff hash`); please report the case.",
        )


def _first_lines(text: str, limit: int = 6) -> str:
    lines = text.strip().splitlines()
    shown = lines[:limit]
    if len(lines) > limit:
        shown.append("...")
    return "\n    ".join(shown)
