"""squawk as an independent judge of online migrations, and where we disagree with it.

schemadiff writes ``-- squawk-ignore`` lines above statements it believes
safe. A judge that honoured them would only confirm schemadiff's own
opinion, so the files are judged with every one of those lines removed,
and each remaining finding must match an entry of ``DISAGREEMENTS``: a
reviewed (rule, statement) pair with the reason we hold that squawk is
wrong *for that statement*, decided from the SQL and from PostgreSQL's own
catalogs (``Facts``), never from schemadiff's engine. A misjudged "no
rewrite" or "no scan" therefore still fails a test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from pglast import parse_sql

ROOT = Path(__file__).resolve().parent.parent
# Judges the schema's design (this project's keys are int by choice), not
# whether a migration is safe to run.
SQUAWK_EXCLUDED = ["prefer-bigint-over-int"]
_IGNORE_LINE = re.compile(r"^\s*--\s*squawk-ignore\b.*$", re.MULTILINE)


@dataclass
class Facts:
    """What PostgreSQL says about the database *before* the migration runs."""

    partitioned: set[str] = field(default_factory=set)  # table names (unqualified) with relkind 'p'
    partitioned_indexes: set[str] = field(default_factory=set)  # index names (unqualified) with relkind 'I'
    column_types: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (table, column) -> (oid, typmod)
    url: str | None = None

    @classmethod
    def read(cls, url: str) -> Facts:
        with psycopg.connect(url) as conn:
            partitioned = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'p'")}
            partitioned_indexes = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'I'")}
            types = {
                (r[0], r[1]): (r[2], r[3])
                for r in conn.execute(
                    "SELECT c.relname, a.attname, a.atttypid::int, a.atttypmod FROM pg_attribute a"
                    " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                )
            }
        return cls(partitioned, partitioned_indexes, types, url)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int  # 1-based
    rule: str
    message: str
    statement: str  # the statement squawk points at, whitespace folded
    earlier: tuple[str, ...]  # every statement of the plan before it, in order

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message} [{self.statement[:100]}]"


def _squawk() -> str:
    found = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    assert Path(found).exists(), "squawk is needed by these tests: pip install squawk-cli"
    return found


def _statements(text: str) -> list[tuple[int, int, str]]:
    """(first line, last line, folded text) of each statement, split by pglast (PostgreSQL's own parser).

    A statement's lines include the comments above it, as squawk may name either.
    """
    data = text.encode("utf-8")
    result = []
    for raw in parse_sql(text):
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(data)
        chunk = data[start:end].decode("utf-8")
        body = " ".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--"))
        result.append((data[:start].count(b"\n") + 1, data[:end].count(b"\n") + 1, " ".join(body.split())))
    return result


def raw_findings(directory: Path) -> list[Finding]:
    """squawk's findings on the directory's files with schemadiff's ``squawk-ignore`` lines removed."""
    files = sorted(directory.glob("*.sql"))
    plan_statements: list[str] = []
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory() as scratch:
        stripped_paths = []
        located: dict[str, list[tuple[int, int, str]]] = {}
        for path in files:
            text = _IGNORE_LINE.sub("-- (squawk-ignore removed for judging)", path.read_text(encoding="utf-8"))
            target = Path(scratch) / path.name
            target.write_text(text, encoding="utf-8")
            stripped_paths.append(str(target))
            located[path.name] = _statements(text)
        result = subprocess.run(
            [_squawk(), "--config", str(ROOT / ".squawk.toml"), "--reporter", "json",
             "--exclude", ",".join(SQUAWK_EXCLUDED), *stripped_paths],
            capture_output=True, text=True, cwd=scratch,
        )
        reported = json.loads(result.stdout or "[]")
        assert result.returncode == (1 if reported else 0), result.stderr
    before_file: dict[str, int] = {}
    for path in files:
        before_file[path.name] = len(plan_statements)
        plan_statements.extend(text for _, _, text in located[path.name])
    for item in reported:
        name, line = Path(item["file"]).name, item["line"] + 1
        statements = located[name]
        index = next((i for i, (first, last, _) in enumerate(statements) if first <= line <= last), None)
        if index is None:  # squawk names the line a statement starts on, comments included
            index = next((i for i, (first, _, _) in enumerate(statements) if first >= line), len(statements) - 1)
        earlier = tuple(plan_statements[: before_file[name] + index])
        findings.append(Finding(name, line, item["rule_name"], item["message"], statements[index][2], earlier))
    return findings


# ---------------------------------------------------------------------------
# The reviewed list. Each predicate gets the finding and the Facts.

_CONCURRENTLY = re.compile(r"^(CREATE (UNIQUE )?INDEX CONCURRENTLY|DROP INDEX CONCURRENTLY)\b", re.IGNORECASE)


def _alone_concurrently(finding: Finding, facts: Facts) -> bool:
    # golang-migrate sends a file as one implicit transaction, where
    # CONCURRENTLY fails; a SET before it would make the file a transaction
    # block. Holds only for a file with this single statement.
    return bool(_CONCURRENTLY.match(finding.statement))


def _table_of_index(statement: str) -> str | None:
    match = re.search(r"\bON\s+(?:ONLY\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)", statement, re.IGNORECASE)
    return match.group(1) if match else None


def _unqualified(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"')


def _created_earlier(table: str | None, finding: Finding) -> bool:
    if table is None:
        return False
    pattern = re.compile(rf"^CREATE TABLE (?:\w+\.)?\"?{re.escape(_unqualified(table))}\"?\s*\(", re.IGNORECASE)
    return any(pattern.match(statement) for statement in finding.earlier)


def _altered_table(statement: str) -> str | None:
    match = re.match(r"^ALTER TABLE (?:ONLY )?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)", statement, re.IGNORECASE)
    return match.group(1) if match else None


def _index_on_new_or_partitioned_table(finding: Finding, facts: Facts) -> bool:
    # An empty table created by an earlier file of the plan, or a
    # partitioned table (PostgreSQL cannot build its index CONCURRENTLY).
    table = _table_of_index(finding.statement) if finding.statement.upper().startswith("CREATE") else None
    if table is None:
        return False
    return _created_earlier(table, finding) or _unqualified(table) in facts.partitioned


def _drop_index_of_partitioned_table(finding: Finding, facts: Facts) -> bool:
    # PostgreSQL cannot DROP INDEX CONCURRENTLY an index of a partitioned table.
    match = re.match(r"^DROP INDEX (?:IF EXISTS )?(\S+?);?$", finding.statement, re.IGNORECASE)
    return bool(match) and _unqualified(match.group(1)) in facts.partitioned_indexes


def _alter_of_table_created_earlier(finding: Finding, facts: Facts) -> bool:
    return _created_earlier(_altered_table(finding.statement), finding)


def _not_null_after_validated_check(finding: Finding, facts: Facts) -> bool:
    # PostgreSQL 12+ skips SET NOT NULL's scan when a validated CHECK
    # (col IS NOT NULL) proves it. Holds only when an earlier statement of the
    # plan added exactly that check and a later one validated it.
    match = re.match(r"^ALTER TABLE (?:ONLY )?(\S+) ALTER (?:COLUMN )?(\S+) SET NOT NULL;?$", finding.statement, re.IGNORECASE)
    if not match:
        return _alter_of_table_created_earlier(finding, facts)
    table, column = match.group(1), match.group(2)
    for index, statement in enumerate(finding.earlier):
        added = re.match(
            rf"^ALTER TABLE (?:ONLY )?{re.escape(table)} ADD CONSTRAINT (\S+) CHECK \(\(?{re.escape(column)} IS NOT NULL\)?\) NOT VALID;?$",
            statement, re.IGNORECASE,
        )
        if added and any(
            re.match(rf"^ALTER TABLE (?:ONLY )?{re.escape(table)} VALIDATE CONSTRAINT {re.escape(added.group(1))};?$", later, re.IGNORECASE)
            for later in finding.earlier[index + 1:]
        ):
            return True
    return _alter_of_table_created_earlier(finding, facts)


def _drop_of_temporary_not_null_check(finding: Finding, facts: Facts) -> bool:
    # The check the plan itself added for SET NOT NULL; the NOT NULL now guarantees the same.
    match = re.match(r"^ALTER TABLE (?:ONLY )?(\S+) DROP CONSTRAINT (\S+?);?$", finding.statement, re.IGNORECASE)
    if not match:
        return False
    table, name = match.group(1), match.group(2)
    added = any(
        re.match(rf"^ALTER TABLE (?:ONLY )?{re.escape(table)} ADD CONSTRAINT {re.escape(name)} CHECK \(.* IS NOT NULL\)+ NOT VALID;?$", s, re.IGNORECASE)
        for s in finding.earlier
    )
    set_not_null = any(re.match(rf"^ALTER TABLE (?:ONLY )?{re.escape(table)} ALTER .* SET NOT NULL;?$", s, re.IGNORECASE) for s in finding.earlier)
    return added and set_not_null


def _catalog_only_type_change(finding: Finding, facts: Facts) -> bool:
    # A binary-coercible change (pg_cast.castmethod 'b' with no new modifier,
    # or the same type with a wider modifier) only updates the catalog: no
    # rewrite, no scan. Asked of PostgreSQL, with the column's type as it was
    # before the migration.
    match = re.match(
        r"^ALTER TABLE (?:ONLY )?(\S+) ALTER (?:COLUMN )?(\S+) (?:SET DATA )?TYPE (.+?)(?: USING .*)?;?$",
        finding.statement, re.IGNORECASE,
    )
    if not match or not facts.url:
        return _alter_of_table_created_earlier(finding, facts)
    table, column, new_type = _unqualified(match.group(1)), match.group(2).strip('"'), match.group(3)
    old = facts.column_types.get((table, column))
    if old is None:
        return _alter_of_table_created_earlier(finding, facts)
    with psycopg.connect(facts.url) as conn:
        new_oid, new_mod = _type_of(conn, new_type)
        if old[0] == new_oid:  # e.g. varchar(10) -> varchar(20) or varchar(10) -> varchar
            return new_mod == -1 or (old[1] != -1 and new_mod >= old[1])
        coercible = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_cast WHERE castsource = %s AND casttarget = %s AND castmethod = 'b')",
            [old[0], new_oid],
        ).fetchone()[0]
        conn.rollback()
    return bool(coercible) and new_mod == -1


def _type_of(conn: psycopg.Connection, type_text: str) -> tuple[int, int]:
    """(type oid, type modifier) PostgreSQL gives ``type_text``: read from a scratch table, rolled back."""
    conn.execute(f"CREATE TEMPORARY TABLE squawk_judge_probe (probe {type_text})")
    row = conn.execute(
        "SELECT atttypid::int, atttypmod FROM pg_attribute"
        " WHERE attrelid = 'squawk_judge_probe'::regclass AND attname = 'probe'"
    ).fetchone()
    conn.rollback()
    return row


def _rename_of_index_built_under_temporary_name(finding: Finding, facts: Facts) -> bool:
    # Queries never name indexes; only the index the plan built beside the old one.
    match = re.match(r"^ALTER INDEX (\S+) RENAME TO (\S+?);?$", finding.statement, re.IGNORECASE)
    if not match:
        return False
    temporary = _unqualified(match.group(1))
    return any(
        re.match(rf"^CREATE (UNIQUE )?INDEX CONCURRENTLY \"?{re.escape(temporary)}\"? ", s, re.IGNORECASE)
        for s in finding.earlier
    )


Predicate = Callable[[Finding, Facts], bool]
DISAGREEMENTS: dict[str, Predicate] = {
    "require-lock-timeout": _alone_concurrently,
    "require-statement-timeout": _alone_concurrently,
    "prefer-robust-stmts": _alone_concurrently,
    "require-concurrent-index-creation": _index_on_new_or_partitioned_table,
    "require-concurrent-index-deletion": _drop_index_of_partitioned_table,
    "adding-not-nullable-field": _not_null_after_validated_check,
    "ban-drop-constraint": _drop_of_temporary_not_null_check,
    "changing-column-type": _catalog_only_type_change,
    "prefer-text-field": _catalog_only_type_change,
    "renaming-object": _rename_of_index_built_under_temporary_name,
    "constraint-missing-not-valid": _alter_of_table_created_earlier,
    "adding-foreign-key-constraint": _alter_of_table_created_earlier,
    "adding-serial-primary-key-field": _alter_of_table_created_earlier,
    "disallowed-unique-constraint": _alter_of_table_created_earlier,
    "adding-required-field": _alter_of_table_created_earlier,
    "adding-field-with-default": _alter_of_table_created_earlier,
}


def squawk_findings(directory: Path, facts: Facts | None = None) -> list[str]:
    """squawk's findings on ``directory``'s files that no reviewed disagreement explains, one line each."""
    facts = facts or Facts()
    return [
        str(finding)
        for finding in raw_findings(directory)
        if not (finding.rule in DISAGREEMENTS and DISAGREEMENTS[finding.rule](finding, facts))
    ]
