"""Split the team's archive.sql into each service's desired-state file.

``schema/archive.sql`` holds every table of every service, as one database
would; each service's database holds only its own tables. ``derive`` assigns
every statement of the archive to the services that need it:

* ``CREATE TABLE`` goes to the service that lists the table in its config;
  statements about a table (``ALTER TABLE``, ``CREATE INDEX``, ``COMMENT ON``
  the table, a column, constraint, index, trigger or policy, triggers,
  policies, rules) go with it.
* Shared definitions (extensions, schemas, types, domains, functions,
  sequences) go to every service whose statements reference them, directly or
  through another shared definition (a column's type, a default calling a
  function or ``nextval('seq')``, a trigger's function, a domain's base
  type...). A definition no table references goes to *every* service: SQL
  text cannot tell what an extension provides (``vector`` is only a name),
  and an unneeded definition is harmless where a missing one breaks loading.
  A sequence ``OWNED BY`` a table belongs to that table.
* Statements about nothing in particular (``SET``...) go to every service.
* Rename hints (``-- schemadiff:renamed-from OLD``) written in the archive
  are written again at the end of the line defining the same object in the
  service file that holds it, so ``plan`` and ``generate`` rename instead of
  dropping and re-adding.
* A foreign key from one service's table to another's cannot exist (the two
  tables live in two databases): it is left out of the referencing service's
  file, with a comment saying what it referenced; the column stays. Comments
  on, and validations of, such a constraint are left out with it.

Refused, as a wrong migration that looks right would follow: a table of the
archive that no service lists (it would silently vanish), a table a service
lists that the archive lacks, and a statement that is about tables of two
services at once.

Output is deterministic: statements in archive order, printed by pglast's
prettifier, under a header naming the archive and its sha256 (no timestamps).
Unqualified names are taken to be in schema ``public``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglast import ast
from pglast import parser as pg_parser
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.stream import IndentedStream

from . import derive_header
from .config import Config, Service
from .errors import ConfigError, InputFileError
from .hints import MARKER, attach_rename_hints, read_rename_hints
from .sqlfile import Statement, parse_statements, read_text

# An object of the archive: (kind, schema, name). Kinds: "rel" (table,
# sequence, view: one namespace in PostgreSQL), "type" (types and domains),
# "function", "schema", "extension" (schema is "" for the last two).
Key = tuple[str, str, str]

DEFAULT_SCHEMA = "public"
_SEQUENCE_FUNCTIONS = {"nextval", "currval", "setval"}


@dataclass(frozen=True)
class DeriveResult:
    """One derived file: where it goes, its text, and whether the disk differs."""

    service: str
    path: Path
    text: str
    changed: bool  # the file is missing or its content differs from ``text``


@dataclass
class _Unit:
    """One archive statement and what it is about."""

    statement: Statement
    subject: Key | None  # the table or shared object it belongs with; None: every service
    refs: set[Key] = field(default_factory=set)


# --------------------------------------------------------------------------
# Public API


def derive(
    archive_path: str | Path, services: Mapping[str, Service] | Iterable[Service], *, label: str | None = None
) -> dict[Path, str]:
    """Each service's desired-state path mapped to its derived SQL text.

    ``label`` is how the header names the archive (default: its path relative
    to the working directory when below it, else its file name), so that the
    output does not depend on where the checkout lives.
    """
    archive_path = Path(archive_path)
    by_name = _services_by_name(services)
    text = read_text(archive_path, "archive")
    label = label or _default_label(archive_path)
    texts = derive_text(text, by_name, label=label)
    return {by_name[name].desired: body for name, body in texts.items()}


def derive_text(archive_text: str, services: Mapping[str, Service], *, label: str = "archive.sql") -> dict[str, str]:
    """Service name -> derived SQL, from the archive's text (no file access)."""
    if not services:
        raise ConfigError(
            "no services are configured, so there is nothing to derive",
            "Add [tool.schemadiff.services.<name>] tables to pyproject.toml.",
        )
    statements = parse_statements(archive_text, label)
    model = _Archive(statements, services)
    texts = {name: model.render(service, label, archive_text) for name, service in services.items()}
    if MARKER in archive_text:
        # The archive is where the team writes rename hints; the printed
        # service files lose comments, so each hint is written again on the
        # line that defines its object in the service that holds it.
        hints = read_rename_hints(archive_text, path=label)
        texts = {
            name: attach_rename_hints(text, hints, path=f"{name}'s derived file") for name, text in texts.items()
        }
    return texts


def check(archive_path: str | Path, services: Mapping[str, Service] | Iterable[Service], **kwargs: Any) -> list[Path]:
    """The desired-state files that are missing or differ from a fresh derive."""
    return [path for path, text in derive(archive_path, services, **kwargs).items() if _differs(path, text)]


def derive_files(config: Config) -> list[DeriveResult]:
    """Derive every configured service's file; nothing is written."""
    if config.archive is None:
        where = f"in {config.path}" if config.path else f"(no pyproject.toml in {config.root} or above)"
        raise ConfigError(
            f"no archive is configured {where}",
            'Add archive = "schema/archive.sql" under [tool.schemadiff] in the project\'s pyproject.toml.',
        )
    services = {name: service for name, service in config.services.items() if service.derived}
    texts = derive(config.archive, services, label=_label_under(config.archive, config.root))
    results = [
        DeriveResult(service=service.name, path=service.desired, text=texts[service.desired],
                     changed=_differs(service.desired, texts[service.desired]))
        for service in services.values()
    ]
    _refuse_replacing_others(results, config)
    return results


def _refuse_replacing_others(results: Iterable[DeriveResult], config: Config) -> None:
    """Raise ConfigError when a file to be replaced was not written by derive (it lacks derive's header).

    Such a file holds a schema from elsewhere (``schemadiff dump`` of an
    adopted database, or written by hand); replacing it with what the
    archive holds for its service would silently lose it, and the next
    ``generate`` would drop the tables it describes. Nothing is written.
    """
    foreign = []
    for result in results:
        if not result.changed:
            continue
        try:
            with open(result.path, encoding="utf-8", errors="replace") as file:
                start = file.read(4096)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InputFileError(f"cannot read {result.path}: {exc}") from None
        if not derive_header.is_derived(start):
            foreign.append(result)
    if foreign:
        archive = _label_under(config.archive, config.root) if config.archive else "the archive"
        named = ", ".join(f"{result.path} (service {result.service})" for result in foreign)
        raise ConfigError(
            f"derive would replace {named}, which derive did not write (no derive header: `schemadiff dump` or a"
            f" person wrote it); nothing was written",
            "If the service's schema is meant to live in that file (an adopted database), set `derived = false`"
            f" in the service's configuration; otherwise move its tables into {archive}, list them under the"
            " service's `tables`, delete the file and run `schemadiff derive` again.",
        )


def write(results: Iterable[DeriveResult]) -> list[Path]:
    """Write the changed files; returns the paths written.

    Every file is first written in full beside its target, then all are
    renamed into place: a failure while writing (disk full, permissions)
    leaves every target as it was, never half-written.
    """
    pending = [result for result in results if result.changed]
    staged: list[tuple[Path, Path]] = []
    try:
        for result in pending:
            staged.append((_stage(result.path, result.text), result.path))
        for temporary, path in staged:
            os.replace(temporary, path)
    except OSError as exc:
        raise InputFileError(f"cannot write {exc.filename or 'a derived file'}: {exc.strerror or exc}",
                             "Check the directory's permissions and free space; nothing was replaced.") from None
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
    return [result.path for result in pending]


# --------------------------------------------------------------------------
# The archive model


class _Archive:
    def __init__(self, statements: list[Statement], services: Mapping[str, Service]) -> None:
        self.label = statements[0].position.path if statements else "archive"
        self.owner: dict[Key, str] = {}  # table -> service
        for service in services.values():
            for table in service.tables:
                self.owner[_table_key(table)] = service.name
        self.tables: dict[Key, Statement] = {}
        self.shared: set[Key] = set()
        # Relations that live with a table: its indexes, its views, its owned sequences.
        self.lives_with: dict[Key, Key] = {}
        self.relations: set[Key] = set()  # every view, sequence and index the archive creates
        for statement in statements:
            self._collect_definitions(statement)
        self._check_mapping(services)
        self.units = [self._unit(statement) for statement in statements]
        self.needed = self._needed_shared(services)

    # -- pass 1: what the archive defines

    def _collect_definitions(self, statement: Statement) -> None:
        node = statement.node
        if isinstance(node, ast.CreateStmt):
            table = _rel_key(node.relation)
            self.tables[table] = statement
            for element in node.tableElts or ():
                for constraint in _constraints_of(element):
                    self._note_constraint_index(table, constraint)
        elif isinstance(node, ast.IndexStmt) and node.idxname:
            table = _rel_key(node.relation)
            self.lives_with[(table[0], table[1], node.idxname)] = table
            self.relations.add((table[0], table[1], node.idxname))
        elif isinstance(node, ast.AlterTableStmt):
            table = _rel_key(node.relation)
            for cmd in node.cmds or ():
                if isinstance(cmd.def_, ast.Constraint):
                    self._note_constraint_index(table, cmd.def_)
        else:
            key = _defined_shared(node)
            if key is not None and _owned_by(node) is None:
                self.shared.add(key)
        defined = _defined_relation(node)
        if defined is not None:
            self.relations.add(defined)

    def _note_constraint_index(self, table: Key, constraint: Any) -> None:
        # Primary key, unique and exclusion constraints create an index of the same name.
        if constraint.conname and constraint.contype in (
            ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_EXCLUSION
        ):
            name = constraint.indexname or constraint.conname
            self.lives_with[("rel", table[1], name)] = table

    def _check_mapping(self, services: Mapping[str, Service]) -> None:
        unmapped = [key for key in self.tables if key not in self.owner]
        if unmapped:
            names = ", ".join(_show(key) for key in unmapped)
            raise ConfigError(
                f"{self.label}: table{'s' if len(unmapped) > 1 else ''} {names} "
                f"belong{'' if len(unmapped) > 1 else 's'} to no service",
                "List each table under the tables of one [tool.schemadiff.services.<name>] in pyproject.toml;"
                " derive refuses to drop a table silently.",
            )
        missing = [(key, owner) for key, owner in self.owner.items() if key not in self.tables]
        if missing:
            names = ", ".join(f"{_show(key)} (service {owner})" for key, owner in missing)
            raise ConfigError(
                f"{self.label} has no CREATE TABLE for {names}",
                "Add the table to the archive, or remove it from the service's tables in pyproject.toml.",
            )

    # -- pass 2: what each statement is about and what it uses

    def _unit(self, statement: Statement) -> _Unit:
        node = statement.node
        refs = set(_references(node))
        if isinstance(node, ast.CreateStmt):
            table = _rel_key(node.relation)
            self._check_same_service_parents(statement, table, node)
            return _Unit(statement, table, refs)
        subject = self._subject(node)
        named = _named_relation(node)
        if named is not None and not self._defines(named):
            # It would reach every service's file and fail there as "relation does not exist".
            raise ConfigError(
                f"{statement.position}: this statement is about {_show(named)}, which no statement of the"
                " archive creates",
                "Write it about a table, view, sequence or index the archive creates (after a rename, use the new"
                " name: the old one belongs only in the `-- schemadiff:renamed-from` hint), or remove it.",
            )
        if subject is None:
            subject = self._subject_by_refs(statement, refs)
        defined = _defined_relation(node)
        if defined is not None and subject in self.tables:
            # Later statements about this view or sequence follow it to its table.
            self.lives_with[defined] = subject
        refs.discard(subject)
        return _Unit(statement, subject, refs)

    def _defines(self, relation: Key) -> bool:
        """Whether a statement of the archive creates ``relation`` (a table, view, sequence or index)."""
        return relation in self.tables or relation in self.lives_with or relation in self.relations

    def _check_same_service_parents(self, statement: Statement, table: Key, node: ast.CreateStmt) -> None:
        """A partition, child table or LIKE copy needs its parent in the same database."""
        parents = [_rel_key(r) for r in node.inhRelations or ()]
        parents += [_rel_key(e.relation) for e in node.tableElts or () if isinstance(e, ast.TableLikeClause)]
        for parent in parents:
            owner = self.owner.get(parent)
            if owner is not None and owner != self.owner[table]:
                raise ConfigError(
                    f"{statement.position}: table {_show(table)} (service {self.owner[table]}) is built on"
                    f" {_show(parent)} (service {owner}), which lives in another database",
                    "List a partition or child table under the same service as its parent.",
                )

    def _subject(self, node: Any) -> Key | None:
        owned = _owned_by(node)
        if owned is not None:
            return owned
        shared = _defined_shared(node)
        if shared is not None:
            return shared
        if isinstance(node, (ast.AlterTableStmt, ast.IndexStmt, ast.CreateTrigStmt, ast.RuleStmt)):
            return self._relation(_rel_key(node.relation))
        if isinstance(node, ast.CreatePolicyStmt | ast.AlterPolicyStmt):
            return _rel_key(node.table)
        if isinstance(node, ast.AlterSeqStmt):
            return self._relation(_rel_key(node.sequence))
        if isinstance(node, (ast.AlterEnumStmt, ast.AlterDomainStmt)):
            return _qualified("type", node.typeName)
        if isinstance(node, ast.AlterFunctionStmt):
            return _qualified("function", node.func.objname)
        if isinstance(node, ast.CommentStmt):
            return self._comment_subject(node)
        return None

    def _comment_subject(self, node: ast.CommentStmt) -> Key | None:
        kind, obj = node.objtype, node.object
        if kind in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_VIEW,
                    ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_FOREIGN_TABLE, ObjectType.OBJECT_INDEX):
            return self._relation(_qualified("rel", obj))
        if kind in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_TABCONSTRAINT, ObjectType.OBJECT_TRIGGER,
                    ObjectType.OBJECT_POLICY, ObjectType.OBJECT_RULE):
            return self._relation(_qualified("rel", obj[:-1]))
        if kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
            return _qualified("type", obj.names)
        if kind in (ObjectType.OBJECT_FUNCTION, ObjectType.OBJECT_PROCEDURE, ObjectType.OBJECT_ROUTINE):
            return _qualified("function", obj.objname)
        if kind == ObjectType.OBJECT_SCHEMA:
            return ("schema", "", obj.sval)
        if kind == ObjectType.OBJECT_EXTENSION:
            return ("extension", "", obj.sval)
        return None

    def _relation(self, key: Key) -> Key:
        """The table a relation lives with (an index of a materialized view: two steps)."""
        seen = {key}
        while key in self.lives_with and self.lives_with[key] not in seen:
            key = self.lives_with[key]
            seen.add(key)
        return key

    def _subject_by_refs(self, statement: Statement, refs: set[Key]) -> Key | None:
        """Statements of other kinds: about the tables, else the shared object, they name."""
        tables = sorted({self._relation(key) for key in refs} & set(self.tables))
        services = sorted({self.owner[key] for key in tables})
        if len(services) > 1:
            raise ConfigError(
                f"{statement.position}: this statement uses tables of services {' and '.join(services)}"
                f" ({', '.join(_show(key) for key in tables)}), which live in different databases",
                "Split it into one statement per service, or move the tables to one service.",
            )
        if tables:
            return tables[0]
        shared = sorted(refs & self.shared)
        return shared[0] if shared else None

    def _needed_shared(self, services: Mapping[str, Service]) -> dict[str, set[Key]]:
        """For each service, the shared objects it must define (see module doc)."""
        refs_of: dict[Key | None, set[Key]] = {}
        for unit in self.units:
            refs_of.setdefault(unit.subject, set()).update(unit.refs)

        def closure(seeds: Iterable[Key]) -> set[Key]:
            found: set[Key] = set()
            stack = list(seeds)
            while stack:
                key = stack.pop()
                if key in self.shared and key not in found:
                    found.add(key)
                    stack.extend(refs_of.get(key, ()))
                    if key[1] and key[1] != DEFAULT_SCHEMA:
                        stack.append(("schema", "", key[1]))
            return found

        def seeds_of(service: str) -> set[Key]:
            seeds: set[Key] = set(refs_of.get(None, ()))
            for table, owner in self.owner.items():
                if owner == service:
                    seeds |= refs_of.get(table, set())
                    seeds.add(("schema", "", table[1]))
            return seeds

        used = {name: closure(seeds_of(name)) for name in services}
        unused = self.shared - set().union(*used.values())
        return {name: closure(seeds_of(name) | unused) for name in services}

    # -- output

    def render(self, service: Service, label: str, archive_text: str) -> str:
        blocks = [derive_header.header(label, archive_text, service.name, service.tables)]
        dropped: set[tuple[Key, str]] = set()  # (table, constraint name) left out
        for unit in self.units:
            if not self._belongs(unit, service.name):
                continue
            notes, node = self._without_foreign_keys(unit.statement.node, service.name, dropped)
            if node is not None and self._about_dropped_constraint(node, dropped):
                node = None
            text = "".join(f"-- {note}\n" for note in notes)
            if node is not None:
                text += _pretty(node, unit.statement) + ";\n"
            if text:
                blocks.append(text)
        return "\n".join(blocks)

    def _belongs(self, unit: _Unit, service: str) -> bool:
        if unit.subject is None:
            return True
        if unit.subject in self.owner:
            return self.owner[unit.subject] == service
        if unit.subject in self.shared:
            return unit.subject in self.needed[service]
        # About something the archive does not define (a built-in schema, an
        # extension's object): only where its tables are, else everywhere.
        return True

    def _without_foreign_keys(self, node: Any, service: str, dropped: set[tuple[Key, str]]) -> tuple[list[str], Any]:
        """The statement without foreign keys to other services' tables, and notes on them."""
        notes: list[str] = []
        if isinstance(node, ast.CreateStmt):
            table = _rel_key(node.relation)
            elements = []
            changed = False
            for element in node.tableElts or ():
                if isinstance(element, ast.Constraint) and self._crosses(element, service):
                    notes.append(self._note(table, element, element.fk_attrs, dropped))
                    changed = True
                    continue
                if isinstance(element, ast.ColumnDef) and element.constraints:
                    kept = []
                    for constraint in element.constraints:
                        if self._crosses(constraint, service):
                            notes.append(self._note(table, constraint, [ast.String(element.colname)], dropped))
                            changed = True
                        else:
                            kept.append(constraint)
                    if len(kept) != len(element.constraints):
                        element = _replace(element, constraints=tuple(kept) or None)
                elements.append(element)
            if changed:
                node = _replace(node, tableElts=tuple(elements))
            return notes, node
        if isinstance(node, ast.AlterTableStmt):
            table = self._relation(_rel_key(node.relation))
            cmds = []
            for cmd in node.cmds or ():
                constraint = cmd.def_ if cmd.subtype == AlterTableType.AT_AddConstraint else None
                if isinstance(constraint, ast.Constraint) and self._crosses(constraint, service):
                    notes.append(self._note(table, constraint, constraint.fk_attrs, dropped))
                    continue
                if isinstance(cmd.def_, ast.ColumnDef) and cmd.def_.constraints:
                    kept = [c for c in cmd.def_.constraints if not self._crosses(c, service)]
                    for constraint in cmd.def_.constraints:
                        if constraint not in kept:
                            notes.append(self._note(table, constraint, [ast.String(cmd.def_.colname)], dropped))
                    if len(kept) != len(cmd.def_.constraints):
                        cmd = _replace(cmd, def_=_replace(cmd.def_, constraints=tuple(kept) or None))
                cmds.append(cmd)
            if len(cmds) != len(node.cmds or ()):
                node = _replace(node, cmds=tuple(cmds)) if cmds else None
            return notes, node
        return notes, node

    def _crosses(self, constraint: Any, service: str) -> bool:
        if not isinstance(constraint, ast.Constraint) or constraint.contype != ConstrType.CONSTR_FOREIGN:
            return False
        target = self.owner.get(_rel_key(constraint.pktable))
        return target is not None and target != service

    def _note(self, table: Key, constraint: ast.Constraint, columns: Iterable[Any], dropped: set) -> str:
        names = [c.sval for c in columns or ()]
        # Unnamed, it gets PostgreSQL's default name, which later statements may use.
        dropped.add((table, constraint.conname or f"{table[2]}_{'_'.join(names)}_fkey"))
        target = _rel_key(constraint.pktable)
        source = f"{_show(table)}.{names[0]}" if len(names) == 1 else f"{_show(table)}({', '.join(names)})"
        target_columns = [c.sval for c in constraint.pk_attrs or ()]
        referenced = f"{_show(target)}({', '.join(target_columns)})" if target_columns else f"{_show(target)}'s primary key"
        return (
            f"{source} referenced {self.owner[target]} {referenced};"
            " a cross-service foreign key cannot span two databases."
        )

    def _about_dropped_constraint(self, node: Any, dropped: set[tuple[Key, str]]) -> bool:
        if isinstance(node, ast.CommentStmt) and node.objtype == ObjectType.OBJECT_TABCONSTRAINT:
            return (self._relation(_qualified("rel", node.object[:-1])), node.object[-1].sval) in dropped
        if isinstance(node, ast.AlterTableStmt):
            table = self._relation(_rel_key(node.relation))
            return bool(node.cmds) and all(
                cmd.subtype == AlterTableType.AT_ValidateConstraint and (table, cmd.name) in dropped
                for cmd in node.cmds
            )
        return False


# --------------------------------------------------------------------------
# AST helpers


def _references(node: Any) -> Iterator[Key]:
    """Every archive object a statement may use, by name (may include built-ins)."""
    for child in _walk(node):
        if isinstance(child, ast.TypeName) and child.names:
            key = _qualified("type", child.names)
            if key[1] != "pg_catalog":
                yield key
        elif isinstance(child, ast.FuncCall):
            yield _qualified("function", child.funcname)
            name = child.funcname[-1].sval
            if name in _SEQUENCE_FUNCTIONS and child.args:
                sequence = _string_literal(child.args[0])
                if sequence:
                    yield _dotted("rel", sequence)
        elif isinstance(child, ast.RangeVar):
            yield _rel_key(child)
        elif isinstance(child, ast.CreateTrigStmt):
            yield _qualified("function", child.funcname)
        elif isinstance(child, ast.ObjectWithArgs) and child.objname:
            yield _qualified("function", child.objname)
        elif isinstance(child, ast.CreateFunctionStmt):
            yield from _sql_body_references(child)


def _sql_body_references(node: ast.CreateFunctionStmt) -> Iterator[Key]:
    """What a LANGUAGE sql function's string body uses (it is checked at creation)."""
    options = {o.defname: o.arg for o in node.options or ()}
    language = options.get("language")
    body = options.get("as")
    if not isinstance(language, ast.String) or language.sval.lower() != "sql" or not body:
        return
    try:
        parsed = pg_parser.parse_sql(body[0].sval)
    except pg_parser.ParseError:
        return  # PostgreSQL will report it when the file is loaded
    for raw in parsed:
        yield from _references(raw.stmt)


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for name in node.__slots__:
            yield from _walk(getattr(node, name, None))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)


def _defined_shared(node: Any) -> Key | None:
    """The shared object a statement creates, if it creates one."""
    if isinstance(node, ast.CreateExtensionStmt):
        return ("extension", "", node.extname)
    if isinstance(node, ast.CreateSchemaStmt):
        return ("schema", "", node.schemaname)
    if isinstance(node, ast.CreateEnumStmt | ast.CreateRangeStmt):
        return _qualified("type", node.typeName)
    if isinstance(node, ast.CreateDomainStmt):
        return _qualified("type", node.domainname)
    if isinstance(node, ast.CompositeTypeStmt):
        return ("type", node.typevar.schemaname or DEFAULT_SCHEMA, node.typevar.relname)
    if isinstance(node, ast.DefineStmt) and node.kind == ObjectType.OBJECT_TYPE:
        return _qualified("type", node.defnames)
    if isinstance(node, ast.CreateFunctionStmt):
        return _qualified("function", node.funcname)
    if isinstance(node, ast.CreateSeqStmt):
        return _rel_key(node.sequence)
    return None


def _defined_relation(node: Any) -> Key | None:
    """The view, materialized view or sequence a statement creates."""
    if isinstance(node, ast.ViewStmt):
        return _rel_key(node.view)
    if isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        return _rel_key(node.into.rel)
    if isinstance(node, ast.CreateSeqStmt):
        return _rel_key(node.sequence)
    return None


def _named_relation(node: Any) -> Key | None:
    """The table or view a statement names and needs, where only a CREATE can have made it.

    Indexes and sequences are left out: PostgreSQL names the ones a
    constraint, a ``serial`` or an identity column makes (``t_pkey``,
    ``t_id_seq``) without a statement naming them.
    """
    relation_kinds = (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW,
                      ObjectType.OBJECT_FOREIGN_TABLE)
    if isinstance(node, ast.AlterTableStmt) and node.objtype in relation_kinds:
        return _rel_key(node.relation)
    if isinstance(node, (ast.IndexStmt, ast.CreateTrigStmt, ast.RuleStmt)):
        return _rel_key(node.relation)
    if isinstance(node, ast.CreatePolicyStmt | ast.AlterPolicyStmt):
        return _rel_key(node.table)
    if isinstance(node, ast.CommentStmt):
        if node.objtype in relation_kinds:
            return _qualified("rel", node.object)
        if node.objtype in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_TABCONSTRAINT, ObjectType.OBJECT_TRIGGER,
                            ObjectType.OBJECT_POLICY, ObjectType.OBJECT_RULE):
            return _qualified("rel", node.object[:-1])
    return None


def _owned_by(node: Any) -> Key | None:
    """The table a sequence is ``OWNED BY``: the sequence lives with it."""
    if isinstance(node, (ast.CreateSeqStmt, ast.AlterSeqStmt)):
        for option in node.options or ():
            if option.defname == "owned_by" and len(option.arg) >= 2:
                return _qualified("rel", option.arg[:-1])
    return None


def _constraints_of(element: Any) -> Iterable[Any]:
    if isinstance(element, ast.Constraint):
        return (element,)
    if isinstance(element, ast.ColumnDef):
        return element.constraints or ()
    return ()


def _string_literal(node: Any) -> str | None:
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    return None


def _rel_key(range_var: Any) -> Key:
    return ("rel", range_var.schemaname or DEFAULT_SCHEMA, range_var.relname)


def _qualified(kind: str, names: Any) -> Key:
    parts = [n.sval for n in names]
    return (kind, parts[-2] if len(parts) >= 2 else DEFAULT_SCHEMA, parts[-1])


def _dotted(kind: str, name: str) -> Key:
    # nextval('app.seq'): the usual unquoted spelling; quoted names fold nothing.
    schema, _, bare = name.rpartition(".")
    return (kind, (schema or DEFAULT_SCHEMA).strip('"'), bare.strip('"'))


def _table_key(name: str) -> Key:
    schema, _, table = name.rpartition(".")
    return ("rel", schema or DEFAULT_SCHEMA, table)


def _show(key: Key) -> str:
    return key[2] if key[1] in ("", DEFAULT_SCHEMA) else f"{key[1]}.{key[2]}"


def _replace(node: Any, **changes: Any) -> Any:
    """A copy of an AST node with some fields changed (the parse stays intact)."""
    copy = type(node)(**{name: getattr(node, name, None) for name in node.__slots__})
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def _pretty(node: Any, statement: Statement) -> str:
    try:
        return IndentedStream(comma_at_eoln=True)(node)
    except Exception:  # pglast cannot print every statement PostgreSQL can parse
        if node is statement.node:
            return statement.text.strip()  # as written: still deterministic
        raise ConfigError(
            f"{statement.position}: cannot print this statement without its cross-service foreign key",
            "Move the foreign key into its own ALTER TABLE ... ADD CONSTRAINT statement.",
        ) from None


# --------------------------------------------------------------------------
# Files


def _services_by_name(services: Mapping[str, Service] | Iterable[Service]) -> dict[str, Service]:
    if isinstance(services, Mapping):
        return dict(services)
    return {service.name: service for service in services}


def _default_label(path: Path) -> str:
    return _label_under(path, Path.cwd())


def _label_under(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _differs(path: Path, text: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != text
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from None


def _stage(path: Path, text: str) -> Path:
    """``text`` written to a temporary file in ``path``'s directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary
