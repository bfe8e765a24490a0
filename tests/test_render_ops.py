"""Each planned change carries its statement as data (``Change.op``), and online mode transforms it.

Issue #12, "SQL is rendered once, at the end, by one module": the engine
plans :class:`schemadiff.engine.ddl.Op` values (the renderer function and
its arguments), rendered once when ``Change.sql`` is first read; online
mode rewrites a statement by changing its operation (``with_options``),
never by editing text. These tests hold the engine and
online mode to it on real databases (the embedded server).
"""

from __future__ import annotations

import pytest

from schemadiff.engine import ddl
from schemadiff.engine.model import Constraint, Index
from schemadiff.engine.renames import Rename, rename_changes
from schemadiff.inspect import diff_databases
from schemadiff.online import OnlineSettings, make_online, with_partitions

CURRENT = """
CREATE SCHEMA "Old Schema";
CREATE TYPE public.mood AS ENUM ('ok', 'happy');
CREATE DOMAIN public.pos AS int DEFAULT 1 CONSTRAINT pos_check CHECK (VALUE > 0);
CREATE TYPE public.pair AS (x int, y text, z int);
CREATE SEQUENCE public.s1;
CREATE TABLE public.owners (id int PRIMARY KEY);
CREATE TABLE public.t (id int NOT NULL, b text, c text, owner_id int, n int);
CREATE UNIQUE INDEX t_id ON public.t (id);
CREATE INDEX t_b ON public.t (b);
CREATE UNLOGGED TABLE public.u (id int) WITH (fillfactor=70);
CREATE TABLE public.log (a int);
CREATE RULE r1 AS ON INSERT TO public.t DO ALSO INSERT INTO public.log VALUES (NEW.id);
CREATE STATISTICS public.st (dependencies) ON id, n FROM public.t;
CREATE VIEW public.v AS SELECT id, b FROM public.t;
GRANT SELECT, INSERT ON public.t TO PUBLIC;
"""

DESIRED = """
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the app';
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN public.pos AS int NOT NULL CONSTRAINT pos_check CHECK (VALUE >= 0);
CREATE TYPE public.pair AS (x bigint, y text, w int);
CREATE SEQUENCE public.s1 INCREMENT BY 5 CACHE 3;
CREATE TABLE public.owners (id int PRIMARY KEY);
CREATE TABLE public.t (id int NOT NULL, b text, c text, owner_id int REFERENCES public.owners (id), n int NOT NULL,
                       CONSTRAINT t_c_key UNIQUE (c));
CREATE UNIQUE INDEX t_id ON public.t (id);
CREATE INDEX t_n ON public.t (n);
ALTER TABLE public.t REPLICA IDENTITY USING INDEX t_id;
ALTER TABLE public.t ALTER COLUMN b SET STORAGE EXTERNAL;
ALTER TABLE public.t ALTER COLUMN c SET (n_distinct = 100);
ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;
CREATE TABLE public.u (id int) WITH (fillfactor=80);
CREATE TABLE public.log (a int);
CREATE RULE r1 AS ON INSERT TO public.t DO ALSO INSERT INTO public.log VALUES (NEW.id + 1);
CREATE STATISTICS public.st (dependencies) ON id, n FROM public.t;
ALTER STATISTICS public.st SET STATISTICS 200;
CREATE VIEW public.v AS SELECT id, b FROM public.t;
ALTER VIEW public.v ALTER COLUMN b SET DEFAULT 'x';
COMMENT ON COLUMN public.t.b IS 'b';
GRANT SELECT ON public.t TO PUBLIC;
GRANT UPDATE (b) ON public.t TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC;
"""


@pytest.fixture
def planned(make_db):
    current, desired = make_db(CURRENT), make_db(DESIRED)
    return current, diff_databases(current, desired)


def test_every_planned_statement_is_its_operation_rendered(planned):
    _, changes = planned
    functions = set()
    for change in changes:
        assert change.op is not None, change.sql
        assert change.sql == change.note + change.op.render(), change.sql
        functions.add(change.op.function)
    # The plan exercises many renderers, not one: a broken dispatch could not hide here.
    assert len(functions) >= 20, sorted(functions)
    assert {"grant", "revoke", "alter_default_privileges", "add_enum_value", "alter_domain_not_null",
            "alter_type_add_attribute", "replica_identity", "alter_column_set_storage", "create_or_replace_rule",
            "alter_statistics_target", "alter_view_column_default", "create_schema", "comment",
            "alter_sequence_options", "set_logged", "alter_table_set"} <= functions, sorted(functions)


def test_online_mode_transforms_the_operation(planned):
    current, changes = planned
    online = make_online(changes, with_partitions(OnlineSettings(), current))
    planned_ops = {id(change.op) for change in changes}
    rewritten = [change for file in online for change in file.changes]
    for change in rewritten:
        assert change.op is not None, change.sql
        assert change.sql.endswith(change.op.render()), change.sql
    by_statement = {change.statement: change for change in rewritten}
    # The foreign key: the engine's add_constraint operation, NOT VALID, for the same constraint.
    fk = by_statement["ALTER TABLE ADD CONSTRAINT FOREIGN KEY"]
    assert fk.op.function == "add_constraint" and dict(fk.op.kwargs) == {"not_valid": True}
    assert isinstance(fk.op.args[0], Constraint) and fk.op.args[0] is fk.subject
    assert fk.sql.endswith(" NOT VALID;")
    # The dropped index: the engine's drop_index operation made concurrent.
    drop = by_statement["DROP INDEX CONCURRENTLY"]
    assert drop.op.function == "drop_index" and isinstance(drop.op.args[0], Index)
    assert dict(drop.op.kwargs) == {"concurrently": True, "if_exists": True}
    # Statements online mode leaves alone keep the very operation the engine planned.
    kept = [change for change in rewritten if change.statement in ("ALTER TABLE REPLICA IDENTITY", "GRANT")]
    assert kept and all(id(change.op) in planned_ops for change in kept)


def test_rename_changes_carry_their_operation():
    renames = [Rename("table", "public", None, "t", "items"), Rename("column", "public", "items", "b", "label"),
               Rename("enum value", "public", "mood", "ok", "fine")]
    changes = rename_changes(renames)
    assert [change.op.function for change in changes] == ["rename_table", "rename_column", "rename_enum_value"]
    assert [change.sql for change in changes] == [
        "ALTER TABLE public.t RENAME TO items;",
        "ALTER TABLE public.items RENAME COLUMN b TO label;",
        "ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine';",
    ]


def test_an_operation_renders_its_options_and_names_only_renderers():
    index = Index(schema="public", name="t_b", table="public.t",
                  definition="CREATE INDEX t_b ON public.t USING btree (b)")
    plain = ddl.op.drop_index(index)
    assert plain.render() == "DROP INDEX public.t_b;"
    assert plain.with_options(concurrently=True).render() == "DROP INDEX CONCURRENTLY public.t_b;"
    assert plain.render() == "DROP INDEX public.t_b;", "with_options makes a new operation"
    with pytest.raises(AttributeError, match="no renderer"):
        ddl.op.drop_everything  # noqa: B018
    with pytest.raises(AttributeError, match="no renderer"):
        ddl.op._alter_column  # noqa: B018
    for imported in ("Column", "re", "functools", "dataclass"):  # names ddl.py imports are not renderers
        with pytest.raises(AttributeError, match="no renderer"):
            getattr(ddl.op, imported)
        with pytest.raises(AttributeError, match="no renderer"):
            ddl.Op(imported).render()


def test_nothing_is_rendered_until_the_text_is_read(make_db, monkeypatch):
    """The plan is data until it is shown or written: neither the engine nor online mode renders a statement
    (each change's text is computed on first read, see ``Change.sql``)."""
    current, desired = make_db(CURRENT), make_db(DESIRED)
    rendered: list[str] = []
    render = ddl.Op.render

    def spy(operation: ddl.Op) -> str:
        rendered.append(operation.function)
        return render(operation)

    monkeypatch.setattr(ddl.Op, "render", spy)
    changes = diff_databases(current, desired)
    online = make_online(changes, with_partitions(OnlineSettings(), current))
    assert changes and not rendered, rendered
    text = online[0].sql()
    assert rendered and all(change.sql in text for change in online[0].changes)
    count = len(rendered)
    assert [change.sql for change in online[0].changes] and len(rendered) == count, "rendered once, then kept"
