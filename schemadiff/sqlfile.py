"""Reading SQL text with pglast: parsing, statement splitting, positions.

Everything in schemadiff that reads SQL goes through here, so that a
syntax error anywhere is reported the same way (file:line:column and the
statement), and statements are split by PostgreSQL's own grammar (dollar
quoting, comments, string literals), never on ``;``.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import InputFileError, SourcePosition, SQLSyntaxError


@dataclass(frozen=True)
class Statement:
    """One top-level SQL statement and where it starts in its file."""

    text: str  # the statement without its trailing semicolon
    position: SourcePosition

    @cached_property
    def node(self) -> Any:
        """The pglast AST node (RawStmt.stmt), built on first use.

        Building Python AST objects costs far more than checking the syntax,
        and loading a desired file needs only the statements' text: most
        statements never need their tree.
        """
        from pglast import parser as pg_parser

        return pg_parser.parse_sql(self.text)[0].stmt

    @property
    def kind(self) -> str:
        """The parse node's name, e.g. ``CreateStmt`` or ``IndexStmt``."""
        return type(self.node).__name__


# The largest SQL file schemadiff reads, in bytes (64 MiB): far above any
# schema or migration, small enough that a wrong path (a log, a dump, a
# growing file) is refused instead of filling memory.
MAX_SQL_FILE_BYTES = 64 * 1024 * 1024


def read_text(path: str | Path, what: str = "SQL file") -> str:
    """Read a UTF-8 file or raise one clear :class:`InputFileError` naming it.

    Only a regular file (or a symlink to one) of at most
    :data:`MAX_SQL_FILE_BYTES` bytes is read: a device (``/dev/zero``), a
    FIFO or a socket would be read without end, or block.
    """
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(
                f"{what} {path} is not a regular file (a device, FIFO or socket); SQL is read from files only",
                "Write the SQL to a file and pass that file's path.",
            )
        if info.st_size > MAX_SQL_FILE_BYTES:
            raise _too_big(what, path)
        with path.open(encoding="utf-8") as handle:
            # Bounded even if the file grows after stat(); text mode keeps the newline handling as before.
            text = handle.read(MAX_SQL_FILE_BYTES + 1)
        if len(text.encode("utf-8")) > MAX_SQL_FILE_BYTES:
            raise _too_big(what, path)
        return text
    except FileNotFoundError:
        raise InputFileError(
            f"{what} not found: {path}", "Check the path (or the configuration that names it)."
        ) from None
    except IsADirectoryError:
        raise InputFileError(f"{what} is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read {what} {path}: {exc}") from None


def _too_big(what: str, path: Path) -> InputFileError:
    return InputFileError(
        f"{what} {path} is larger than {MAX_SQL_FILE_BYTES} bytes, the most schemadiff reads from an SQL file",
        "Check the path: a schema or migration file is far smaller. Split a generated file that is really this big.",
    )


def position_of(text: str, offset: int, path: str) -> SourcePosition:
    """Translate a character offset into a 1-based line and column."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return SourcePosition(path, line, column)


def parse_statements(text: str, path: str = "<sql>") -> list[Statement]:
    """Split ``text`` into statements, or raise :class:`SQLSyntaxError`.

    PostgreSQL's own parser checks the whole text and finds where each
    statement starts; each statement's tree is built later, if asked for.
    """
    from pglast import parser as pg_parser  # imported where used: commands answered from cache never parse

    try:
        slices = pg_parser.split(text, with_parser=True, only_slices=True)
    except pg_parser.ParseError as exc:
        raise _syntax_error(text, path, exc) from None
    statements = []
    line, counted_to = 1, 0
    for piece in slices:
        # Lines are counted incrementally: statements come in file order.
        line += text.count("\n", counted_to, piece.start)
        counted_to = piece.start
        column = piece.start - (text.rfind("\n", 0, piece.start) + 1) + 1
        statements.append(Statement(text[piece], SourcePosition(path, line, column)))
    return statements


def parse_file(path: str | Path, what: str = "SQL file") -> list[Statement]:
    """Read and parse a SQL file."""
    return parse_statements(read_text(path, what), str(path))


def _syntax_error(text: str, path: str, exc: Exception, base: int = 0) -> SQLSyntaxError:
    reason = exc.args[0] if exc.args else str(exc)
    location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
    offset = base + location
    start, end = _statement_bounds(text, offset)
    position = position_of(text, offset, path)
    line = text.splitlines()[position.line - 1] if text.splitlines()[position.line - 1 : position.line] else ""
    # The statement's first line, past the blank lines and comments before it.
    body = text[start:end]
    first = start + (len(body) - len(body.lstrip()))
    return SQLSyntaxError(position, reason, body, line=line, statement_line=position_of(text, first, path).line)


def _statement_bounds(text: str, offset: int) -> tuple[int, int]:
    """Best-effort span of the statement around ``offset`` for the message.

    The statement could not be parsed, so the grammar cannot tell where it
    starts; the previous statement's end is the last ``;`` that pglast's
    scanner accepted before the error, which is good enough for display.
    """
    from pglast import parser as pg_parser

    start = 0
    try:
        slices = pg_parser.split(text[:offset], with_parser=False, only_slices=True)
    except pg_parser.ParseError:
        slices = ()
    if slices:
        last = slices[-1]
        semicolon = text.find(";", last.stop)
        if semicolon == -1 or semicolon >= offset:
            start = last.start  # the failing statement is the last one seen
        else:
            start = semicolon + 1
    while start < offset and text[start].isspace():
        start += 1
    end = text.find(";", offset)
    return start, (len(text) if end == -1 else end)
