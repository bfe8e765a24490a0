"""Expressions PostgreSQL prints differently once its own printed form is loaded again.

The engine compares expressions (CHECK constraints, column defaults,
generated columns, index definitions and predicates, view bodies, policies,
trigger WHEN clauses, rules, statistics, domain checks, SQL-standard
function bodies) as the text PostgreSQL prints for them (``pg_get_expr``,
``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_viewdef``...). That
printer is not idempotent: Django's ``status varchar(10) CHECK (status IN
('a','b'))`` prints as ``((status)::text = ANY ((ARRAY['a'::character
varying, 'b'::character varying])::text[]))``, and that text, loaded again,
prints as ``((status)::text = ANY (ARRAY[('a'::character varying)::text,
('b'::character varying)::text]))``. A desired file written by ``schemadiff
dump`` (PostgreSQL's printed forms) and loaded into the shadow is one round
trip further than the live database it was dumped from, so the texts differ
although the expressions are the same.

The rule used here: both sides' texts are PostgreSQL's printed forms, and
PostgreSQL prints a form that, loaded again, means the same (pg_dump relies
on it). So a side's text and its text "printed again" (its model's create
script loaded into a scratch database on the shadow server and read back)
are the same expression. Two expressions are the same when one from each
side's chain ``{text, printed again}`` is equal, character for character;
they are never judged by a pattern or a parser of our own, so two really
different expressions (another constant, another operator, another column)
never compare equal. Where an expression is equal this way, the current
side's text is replaced by the desired side's before the engine compares.

This module holds the model side (which texts, the comparison, the
replacement); :mod:`schemadiff.command` loads the scripts on the shadow.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from .model import Domain, Schema

# A place in the model: attribute names and dict keys from the Schema down
# to one expression text, e.g. ("tables", "public.t", "columns", "c", "default").
Path = tuple[str, ...]


def expression_texts(schema: Schema) -> dict[Path, str]:
    """Every expression text of ``schema`` PostgreSQL prints, by its place in the model.

    Returns {path: text}; absent expressions (None) are left out.
    """
    found: dict[Path, str] = {}
    for path, text in _leaves(schema):
        if text is not None:
            found[path] = text
    return found


def _leaves(schema: Schema) -> Iterator[tuple[Path, str | None]]:
    for key, table in schema.tables.items():
        yield ("tables", key, "partition_key"), table.partition_key
        yield ("tables", key, "partition_bound"), table.partition_bound
        for name, column in table.columns.items():
            yield ("tables", key, "columns", name, "default"), column.default
            yield ("tables", key, "columns", name, "generated"), column.generated
    for key, view in schema.views.items():
        yield ("views", key, "definition"), view.definition
        for name, default in view.column_defaults.items():
            yield ("views", key, "column_defaults", name), default
    for kind in ("constraints", "indexes", "triggers", "rules", "statistics", "functions"):
        for key, obj in getattr(schema, kind).items():
            yield (kind, key, "definition"), obj.definition
    for key, policy in schema.policies.items():
        yield ("policies", key, "using"), policy.using
        yield ("policies", key, "check"), policy.check
    for key, type_ in schema.types.items():
        if isinstance(type_, Domain):
            yield ("types", key, "default"), type_.default
            for name, check in type_.checks.items():
                yield ("types", key, "checks", name), check


def differing(current: Schema, desired: Schema) -> list[Path]:
    """Places holding an expression on both sides whose texts differ (sorted)."""
    ours, theirs = expression_texts(current), expression_texts(desired)
    return sorted(path for path, text in ours.items() if path in theirs and theirs[path] != text)


def same_expressions(paths: list[Path], current: list[Schema], desired: list[Schema]) -> set[Path]:
    """The places among ``paths`` whose expressions are the same on both sides.

    ``current`` and ``desired`` are each side's chain of models: the model
    itself, then the same schema printed again (loaded from its create
    script and read back), in any number. A place is the same when some
    text of the current chain equals some text of the desired chain there.
    """
    current_texts = [expression_texts(model) for model in current]
    desired_texts = [expression_texts(model) for model in desired]
    same = set()
    for path in paths:
        ours = {texts[path] for texts in current_texts if path in texts}
        theirs = {texts[path] for texts in desired_texts if path in texts}
        if ours & theirs:
            same.add(path)
    return same


def with_desired_texts(current: Schema, desired: Schema, paths: set[Path]) -> Schema:
    """A copy of ``current`` whose expressions at ``paths`` are desired's texts (``current`` is not changed)."""
    if not paths:
        return current
    result = copy.deepcopy(current)
    wanted = expression_texts(desired)
    for path in paths:
        _set(result, path, wanted[path])
    return result


def _set(root: Any, path: Path, value: str) -> None:
    node = root
    for part in path[:-1]:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    if isinstance(node, dict):
        node[path[-1]] = value
    else:
        setattr(node, path[-1], value)


def create_script(schema: Schema, empty: Schema) -> str:
    """The engine's script creating ``schema`` in a database shaped like ``empty`` (as ``dump`` writes it)."""
    from .diff import diff_schemas

    return "\n\n".join(change.sql.rstrip() for change in diff_schemas(empty, schema)) + "\n"
