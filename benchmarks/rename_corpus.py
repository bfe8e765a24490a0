"""Judge the rename map (schemadiff.engine.renames) on schemas nobody here wrote: the sqldef corpus.

    python benchmarks/rename_corpus.py /work/shared/corpus/sqldef [-k SUBSTRING] [--limit N]

For every schema of the corpus (each case's ``current`` and ``desired``,
once each) that loads, and for up to three of its tables: the table renamed;
each of its columns renamed; each of its constraints renamed; each index and
the first label of each enum type renamed. Each variant is applied to the
schema's model in memory and, by PostgreSQL, to a copy of the database,
which is read again. A variant is **exact** when both models are equal field
by field, **not modelled** when the rename map refuses it (the hint then falls
back to a database copy: slower, never wrong), **refused** when PostgreSQL
refuses the rename itself. Any other outcome is **wrong** (a plan that looks
right and is not) and is listed; the exit status is 1 when there is one.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import load_cases  # noqa: E402
from schemadiff.engine.model import Enum, Schema  # noqa: E402
from schemadiff.engine.renames import NotModelled, Rename, apply_renames, ordered, rename_sql  # noqa: E402
from schemadiff.inspect import inspect_database  # noqa: E402
from schemadiff.shadow.server import ShadowServer  # noqa: E402
from schemadiff.sqlfile import parse_statements  # noqa: E402


def variants(model: Schema) -> list[list[Rename]]:
    found: list[list[Rename]] = []
    for table in list(model.tables.values())[:3]:
        found.append([Rename("table", table.schema, None, table.name, table.name + "_rn")])
        found.append([Rename("column", table.schema, table.name, c, c + "_rn")
                      for c, column in table.columns.items() if not column.inherited])
        found.append([Rename("constraint", table.schema, table.name, k.name, k.name + "_rn")
                      for k in model.constraints.values() if k.table == table.qualified])
    found.append([Rename("index", i.schema, None, i.name, i.name + "_rn") for i in model.indexes.values()])
    found.append([Rename("enum value", t.schema, t.name, t.labels[0], t.labels[0] + "_rn")
                  for t in model.types.values() if isinstance(t, Enum) and t.labels])
    return [v for v in found if v]


def load(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in parse_statements(sql, "<case>"):
            conn.execute(statement.text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+")
    parser.add_argument("-k", dest="filter")
    parser.add_argument("--limit", type=int, default=0, help="at most this many schemas")
    parser.add_argument("--reasons", action="store_true", help="list each not-modelled reason")
    parser.add_argument("--every", type=int, default=1, help="only every Nth schema (a sample across the files)")
    options = parser.parse_args()
    shadow = ShadowServer.open()
    cases, _ = load_cases(options.paths, 16, options.filter)
    schemas = list(dict.fromkeys(sql for case in cases for sql in (case.current, case.desired) if sql.strip()))
    schemas = schemas[:: options.every]
    if options.limit:
        schemas = schemas[: options.limit]
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    wrong: list[str] = []
    for sql in schemas:
        name = shadow.create_database()
        try:
            url = shadow.admin_url_for(name)
            try:
                load(url, sql)
            except (psycopg.Error, Exception):  # noqa: BLE001 - a schema this server does not load
                outcomes["schema does not load"] += 1
                continue
            model = inspect_database(url)
            for renames in variants(model):
                try:
                    modelled = apply_renames(model, renames)
                except NotModelled as exc:
                    outcomes["not modelled"] += 1
                    reasons[exc.reason.split(":")[0].split(" uses ")[0].split(" ")[0]] += 1
                    if options.reasons:
                        print("not modelled:", exc.reason[:300])
                    continue
                copy = shadow.create_database(template=name)
                try:
                    copy_url = shadow.admin_url_for(copy)
                    try:
                        with psycopg.connect(copy_url) as conn:
                            for rename in ordered(renames):
                                conn.execute(rename_sql(rename))
                    except psycopg.Error:
                        outcomes["refused by PostgreSQL"] += 1
                        continue
                    actual = inspect_database(copy_url)
                    if modelled == actual:
                        outcomes["exact"] += 1
                    else:
                        outcomes["WRONG"] += 1
                        fields = [f for f in actual.__dataclass_fields__ if getattr(actual, f) != getattr(modelled, f)]
                        wrong.append(f"{[rename_sql(r) for r in renames]} differs in {fields}\n{sql[:300]}")
                finally:
                    shadow.drop_database(copy)
        finally:
            shadow.drop_database(name)
    print(f"{len(schemas)} schemas: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print("not modelled, by the dependent's kind: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    for line in wrong:
        print("WRONG:", line)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
