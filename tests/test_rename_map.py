"""The rename map (schemadiff.engine.renames) models exactly what PostgreSQL does on a rename.

The judge is the real server: each schema is built in a database, read into
a model, and the model renamed in memory; then the same renames run on the
database, which is read again. Both models must be equal, field by field
(definitions as PostgreSQL prints them, dependency graph, privileges,
owners). Where the model cannot say what PostgreSQL prints (views, rules,
SQL-standard function bodies, a subquery that may read another table's
column of the same name, an enum label in a partition bound), it must say so
(NotModelled), never guess; rename hints then fall back to a database copy,
and the plan is still right (checked by applying it).
"""

from __future__ import annotations

import contextlib
import copy
import uuid

import psycopg
import pytest

from schemadiff.engine.diff import diff_schemas
from schemadiff.engine.renames import NotModelled, Rename, apply_renames, ordered, rename_sql
from schemadiff.hints import plan_with_renames, read_rename_hints
from schemadiff.inspect import diff_databases, inspect_database


def run(url: str, statements) -> None:
    with psycopg.connect(url) as conn:  # one transaction, like a migration file
        for statement in statements:
            conn.execute(statement)


def assert_exact(make_db, ddl: str, renames: list[Rename]) -> None:
    """The model renamed in memory equals the database renamed by PostgreSQL, read again."""
    url = make_db(ddl)
    before = inspect_database(url)
    untouched = copy.deepcopy(before)
    modelled = apply_renames(before, renames)
    assert before == untouched, "the given model is left as it was (it may be cached)"
    run(url, [rename_sql(r) for r in ordered(renames)])
    actual = inspect_database(url)
    for field in actual.__dataclass_fields__:
        assert getattr(modelled, field) == getattr(actual, field), field
    for name, constraint in actual.constraints.items():  # fields left out of comparisons, read by online mode
        assert (modelled.constraints[name].columns, modelled.constraints[name].include) == (
            constraint.columns, constraint.include), name
    assert diff_schemas(modelled, actual) == []


TABLE_WITH_DEPENDENTS = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE users (
    id serial PRIMARY KEY,
    mail text NOT NULL CHECK (mail <> '' AND length(mail) < 200),
    nick text DEFAULT 'x',
    feels mood DEFAULT 'happy' CHECK (feels <> 'sad'),
    boss int REFERENCES users (id),
    upper_mail text GENERATED ALWAYS AS (upper(mail)) STORED,
    CONSTRAINT users_mail_key UNIQUE (mail),
    CONSTRAINT users_nick_excl EXCLUDE USING btree (nick WITH =) WHERE (nick <> 'y')
);
COMMENT ON COLUMN users.mail IS 'where to write';
CREATE INDEX users_lower_mail_idx ON users (lower(mail)) INCLUDE (nick) WHERE mail LIKE '%@%';
CREATE INDEX users_feels_idx ON users (id) WHERE feels = 'happy';
CREATE TRIGGER users_touch BEFORE UPDATE OF mail, nick ON users
    FOR EACH ROW WHEN (NEW.mail IS DISTINCT FROM OLD.mail) EXECUTE FUNCTION touch();
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_own ON users USING (mail = current_user) WITH CHECK (length(mail) > 1);
CREATE STATISTICS users_stats ON mail, nick, (lower(mail)) FROM users;
CREATE TABLE posts (
    id int PRIMARY KEY,
    author_mail text REFERENCES users (mail) ON DELETE CASCADE,
    author int,
    CONSTRAINT posts_author_fkey FOREIGN KEY (author) REFERENCES users (id)
);
GRANT SELECT (mail) ON users TO PUBLIC;
ALTER TABLE users REPLICA IDENTITY USING INDEX users_mail_key;
"""


def test_table_rename_follows_every_dependent(make_db):
    assert_exact(make_db, TABLE_WITH_DEPENDENTS, [Rename("table", "public", None, "users", "members")])


def test_column_rename_follows_every_dependent(make_db):
    assert_exact(make_db, TABLE_WITH_DEPENDENTS, [Rename("column", "public", "users", "mail", "email")])


def test_table_and_column_renamed_together(make_db):
    assert_exact(make_db, TABLE_WITH_DEPENDENTS, [
        Rename("column", "public", "members", "mail", "Email Address"),  # quoted as PostgreSQL quotes it
        Rename("table", "public", None, "users", "members"),
        Rename("column", "public", "members", "id", "user_id"),  # the serial column and its owned sequence
    ])


def test_constraint_index_and_enum_value_renames(make_db):
    assert_exact(make_db, TABLE_WITH_DEPENDENTS, [
        Rename("constraint", "public", "users", "users_mail_key", "users_email_key"),  # the replica index too
        Rename("constraint", "public", "users", "users_mail_check", "mail_ok"),
        Rename("index", "public", None, "users_lower_mail_idx", "users_by_mail"),
        Rename("enum value", "public", "mood", "happy", "joyful"),
    ])


QUOTED = """
CREATE TYPE "Mood" AS ENUM ('it''s fine', 'sad');
CREATE TABLE "Users" ("Id" int PRIMARY KEY, "Mail" text, feels "Mood" DEFAULT 'it''s fine',
    CHECK (feels <> 'sad'::"Mood"));
CREATE TABLE "Posts" (id int, "Author" int REFERENCES "Users" ("Id"));
CREATE INDEX "Users Mail Idx" ON "Users" ("Mail") WHERE feels = 'it''s fine';
CREATE VIEW "Mail View" AS SELECT "Mail", "Id" FROM "Users" WHERE "Mail" IS NOT NULL;
"""


@pytest.mark.parametrize("rename", [
    Rename("index", "public", None, "Users Mail Idx", "Mail Idx Now"),
    Rename("enum value", "public", "Mood", "it's fine", "it's \"good\""),
    Rename("column", "public", "Users", "Mail", "E Mail"),
    Rename("column", "public", "Users", "Id", "select"),
], ids=["index", "enum value", "column", "keyword column"])
def test_quoted_names_and_labels_are_rewritten_as_postgresql_prints_them(make_db, rename):
    # The rewritten definitions (engine/ddl.py's index_definition_renamed, identifiers_renamed,
    # enum_constants_renamed) quote as PostgreSQL does: mixed case, spaces, keywords, an apostrophe.
    assert_exact(make_db, QUOTED, [rename])


SAME_NAMES = """
CREATE TABLE a (a_id int, tenant int, PRIMARY KEY (tenant, a_id));
CREATE TABLE b (b_id int PRIMARY KEY, a_id int, tenant int,
    FOREIGN KEY (tenant, a_id) REFERENCES a (tenant, a_id) MATCH FULL ON DELETE CASCADE);
CREATE TABLE c (a_id int REFERENCES c (a_id) UNIQUE);
"""


@pytest.mark.parametrize("renames", [
    [Rename("column", "public", "a", "a_id", "id")],  # the referenced side only
    [Rename("column", "public", "b", "a_id", "parent_id")],  # the referencing side only
    [Rename("column", "public", "a", "a_id", "id"), Rename("column", "public", "b", "a_id", "a_ref")],
    [Rename("column", "public", "c", "a_id", "x")],  # a foreign key to its own table: both sides
], ids=["referenced", "referencing", "both", "self"])
def test_foreign_keys_whose_two_sides_share_a_column_name(make_db, renames):
    assert_exact(make_db, SAME_NAMES, renames)


PARTITIONED = """
CREATE TABLE events (id int, at date NOT NULL, kind text CHECK (kind <> ''), PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events (CONSTRAINT kind_short CHECK (length(kind) < 9))
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_kind_idx ON events (kind);
CREATE TABLE base (id int, note text CHECK (note <> ''));
CREATE TABLE derived (extra int) INHERITS (base);
CREATE INDEX derived_note_idx ON derived (note);
"""


def test_partition_key_column_and_inherited_columns(make_db):
    assert_exact(make_db, PARTITIONED, [
        Rename("column", "public", "occurrences", "at", "happened_on"),  # tables are renamed first
        Rename("column", "public", "occurrences", "kind", "category"),
        Rename("column", "public", "root", "note", "remark"),
        Rename("table", "public", None, "events", "occurrences"),
        Rename("table", "public", None, "base", "root"),
    ])


VIEWS = """
CREATE TABLE t (id int PRIMARY KEY, a int, b int);
CREATE TABLE o (id int PRIMARY KEY, t_id int, a int);
CREATE VIEW plain AS SELECT id, a FROM t;
CREATE VIEW shaped AS SELECT a AS x, a + 1 AS y, b AS a_too, count(*) OVER (PARTITION BY a) AS n
    FROM t WHERE a > 0 ORDER BY a;
CREATE VIEW joined AS SELECT t.a, o.a AS oa, t.b FROM t JOIN o ON o.t_id = t.id WHERE t.a IS NOT NULL;
CREATE VIEW aliased AS SELECT x.a, x.id FROM t x, o WHERE o.t_id = x.id;
CREATE MATERIALIZED VIEW totals AS SELECT a, sum(b) AS total FROM t GROUP BY a;
CREATE VIEW over_view AS SELECT a FROM plain;
"""


@pytest.mark.parametrize("renames", [
    [Rename("column", "public", "t", "a", "c")],
    [Rename("column", "public", "t", "a", "b_old"), Rename("column", "public", "t", "b", "a")],
    [Rename("table", "public", None, "t", "things")],
    [Rename("table", "public", None, "t", "things"), Rename("column", "public", "things", "a", "alpha")],
], ids=["column", "columns-swapped-names", "table", "table-and-column"])
def test_views_over_renamed_objects_are_printed_as_postgresql_prints_them(make_db, renames):
    assert_exact(make_db, VIEWS, renames)


@pytest.mark.parametrize(("ddl", "rename"), [
    ("CREATE TABLE t (a int, b int); CREATE VIEW v AS SELECT a FROM t WHERE b IN (SELECT a FROM t);",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TABLE t (id int, a int); CREATE TABLE o (id int); CREATE VIEW v AS SELECT a FROM t JOIN o USING (id);",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TABLE t (a int); CREATE VIEW v AS SELECT t FROM t;", Rename("table", "public", None, "t", "u")),
    ("CREATE TABLE t (a int); CREATE TABLE log (a int);"
     " CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.a);",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TABLE t (a int); CREATE FUNCTION f() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(a) FROM t; END;",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TABLE t (a int); CREATE TABLE other (a int, t_a int);"
     " CREATE POLICY p ON other USING (EXISTS (SELECT 1 FROM t WHERE t.a = t_a));",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TABLE o (a int); CREATE TABLE t (a int);"
     " CREATE POLICY p ON t USING (EXISTS (SELECT 1 FROM o WHERE o.a = a));",
     Rename("column", "public", "t", "a", "c")),
    ("CREATE TYPE m AS ENUM ('x', 'y'); CREATE TABLE t (k m) PARTITION BY LIST (k);"
     " CREATE TABLE t_x PARTITION OF t FOR VALUES IN ('x');", Rename("enum value", "public", "m", "x", "z")),
    ("CREATE TABLE t (a int); CREATE TABLE holder (row_of t);", Rename("table", "public", None, "t", "u")),
    # A new name longer than 63 bytes, which PostgreSQL truncates (found by benchmarks/rename_corpus.py).
    ('CREATE TABLE "表表表表表表表表表表表表表表表表表表表表" (a integer CHECK (a > 0));',
     Rename("constraint", "public", "表表表表表表表表表表表表表表表表表表表表", "表表表表表表表表表表表表表表表表表表_a_check",
            "表表表表表表表表表表表表表表表表表表_a_check_rn")),
    # The index of a UNIQUE constraint: renaming it renames the constraint too.
    ("CREATE TABLE t (a int CONSTRAINT t_a_key UNIQUE);", Rename("index", "public", None, "t_a_key", "t_a_uq")),
])
def test_what_cannot_be_followed_exactly_is_refused_not_guessed(make_db, ddl, rename):
    url = make_db(ddl)
    with pytest.raises(NotModelled) as refused:
        apply_renames(inspect_database(url), [rename])
    print(refused.value.reason)


FALLBACK = [
    # (current, desired with a hint): each uses the renamed object where the model does not follow it.
    ("CREATE TABLE t (id int PRIMARY KEY, a int);\n"
     "CREATE VIEW v AS SELECT id, a FROM t WHERE a IN (SELECT a FROM t WHERE id > 1);\n",
     "CREATE TABLE t (\n    id int PRIMARY KEY,\n    b int  -- schemadiff:renamed-from a\n);\n"
     "CREATE VIEW v AS SELECT id, b AS a FROM t WHERE b IN (SELECT b FROM t WHERE id > 1);\n"),
    ("CREATE TABLE t (id int PRIMARY KEY, a int);\nCREATE TABLE log (a int);\n"
     "CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.a);\n",
     "CREATE TABLE u (  -- schemadiff:renamed-from t\n    id int PRIMARY KEY,\n    a int\n);\nCREATE TABLE log (a int);\n"
     "CREATE RULE r AS ON INSERT TO u DO ALSO INSERT INTO log VALUES (NEW.a);\n"),
]


@pytest.mark.parametrize(("current", "desired"), FALLBACK, ids=["view-with-subquery", "rule"])
def test_what_the_model_does_not_follow_falls_back_to_a_copy_and_is_right(make_db, monkeypatch, current, desired):
    import schemadiff.hints as hints

    copies = []
    real = hints._renamed_on_a_copy
    monkeypatch.setattr(hints, "_renamed_on_a_copy", lambda *a: copies.append(a) or real(*a))
    current_url, desired_url = make_db(current + "INSERT INTO t VALUES (1, 7);\n"), make_db(desired)
    up = plan_with_renames(diff_databases(current_url, desired_url), read_rename_hints(desired),
                           inspect_database(current_url), inspect_database(desired_url),
                           databases=lambda: contextlib.nullcontext((current_url, desired_url)))
    assert copies, "the model does not follow these: the copy decides"
    assert up[0].action == "rename" and not any(c.action == "drop" and c.kind in ("table", "column") for c in up)
    run(current_url, [c.sql for c in up])
    assert diff_databases(current_url, desired_url) == []


# --------------------------------------------------------------------------
# Through the CLI: generate proves the pair on the shadow server, apply runs it on a database holding rows,
# plan --db is in sync afterwards, and the down migration returns to the start with the rows.

@pytest.fixture
def live(shadow):
    """A database not named like schemadiff's temporary ones (``make_db``'s are), which the fallback
    would take for a copy it may write to."""
    name = f"live_renames_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield shadow.admin_url_for(name)
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


COLUMN_BEFORE = """
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE users (id serial PRIMARY KEY, mail text NOT NULL CHECK (mail <> ''), UNIQUE (mail));
CREATE INDEX users_lower_mail_idx ON users (lower(mail)) WHERE mail LIKE '%@%';
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW WHEN (NEW.mail IS DISTINCT FROM OLD.mail) EXECUTE FUNCTION touch();
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_own ON users USING (mail <> current_user);
CREATE TABLE posts (id int PRIMARY KEY, author_mail text REFERENCES users (mail));
"""
COLUMN_AFTER = """
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TABLE users (
    id serial PRIMARY KEY,
    email text NOT NULL CHECK (email <> ''), -- schemadiff:renamed-from mail
    UNIQUE (email)
);
CREATE INDEX users_lower_mail_idx ON users (lower(email)) WHERE email LIKE '%@%';
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW WHEN (NEW.email IS DISTINCT FROM OLD.email) EXECUTE FUNCTION touch();
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_own ON users USING (email <> current_user);
CREATE TABLE posts (id int PRIMARY KEY, author_mail text REFERENCES users (email));
"""
COLUMN_ROWS = ("INSERT INTO users (mail) VALUES ('a@x.test'), ('b@x.test');"
               " INSERT INTO posts VALUES (1, 'a@x.test');", "SELECT count(*) FROM posts JOIN users ON true")

TABLE_BEFORE = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE events (id int, at date NOT NULL, feels mood DEFAULT 'happy' CHECK (feels <> 'sad'),
    PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_feels_idx ON events (id) WHERE feels = 'happy';
CREATE TABLE tags (id serial PRIMARY KEY, name text);
CREATE TABLE notes (id int PRIMARY KEY, tag int REFERENCES tags (id));
"""
TABLE_AFTER = """
CREATE TYPE mood AS ENUM (
    'joyful', -- schemadiff:renamed-from happy
    'sad'
);
CREATE TABLE occurrences ( -- schemadiff:renamed-from events
    id int,
    happened_on date NOT NULL, -- schemadiff:renamed-from at
    feels mood DEFAULT 'joyful' CHECK (feels <> 'sad'),
    PRIMARY KEY (id, happened_on)
) PARTITION BY RANGE (happened_on);
CREATE TABLE events_2025 PARTITION OF occurrences FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_feels_idx ON occurrences (id) WHERE feels = 'joyful';
CREATE TABLE labels ( -- schemadiff:renamed-from tags
    id serial PRIMARY KEY,
    name text
);
CREATE TABLE notes (id int PRIMARY KEY, tag int REFERENCES labels (id));
"""
TABLE_ROWS = ("INSERT INTO events VALUES (1, '2025-02-01'); INSERT INTO tags (name) VALUES ('x');"
              " INSERT INTO notes VALUES (1, 1);", "SELECT count(*) FROM events_2025 JOIN notes ON true")

VIEW_BEFORE = "CREATE TABLE t (id int PRIMARY KEY, a int);\nCREATE VIEW v AS SELECT id, a FROM t;\n"
VIEW_AFTER = ("CREATE TABLE t (\n    id int PRIMARY KEY,\n    b int  -- schemadiff:renamed-from a\n);\n"
              "CREATE VIEW v AS SELECT id, b FROM t;\n")
VIEW_ROWS = ("INSERT INTO t VALUES (1, 7), (2, 8);", "SELECT count(*) FROM t")
SUBQUERY_VIEW_BEFORE = VIEW_BEFORE.replace("FROM t;", "FROM t WHERE a IN (SELECT a FROM t);")
SUBQUERY_VIEW_AFTER = VIEW_AFTER.replace("FROM t;", "FROM t WHERE b IN (SELECT b FROM t);")


@pytest.mark.parametrize(("before", "after", "data", "modelled"), [
    (COLUMN_BEFORE, COLUMN_AFTER, COLUMN_ROWS, True),
    (TABLE_BEFORE, TABLE_AFTER, TABLE_ROWS, True),
    (VIEW_BEFORE, VIEW_AFTER, VIEW_ROWS, True),
    (SUBQUERY_VIEW_BEFORE, SUBQUERY_VIEW_AFTER, VIEW_ROWS, False),
], ids=["column", "table-partition-enum", "view", "view-with-subquery-fallback"])
def test_generate_apply_and_back_with_renamed_objects_in_use(cli, live, tmp_path, monkeypatch, before, after, data,
                                                             modelled):
    import schemadiff.hints as hints

    db = live
    copies = []
    real = hints._renamed_on_a_copy
    monkeypatch.setattr(hints, "_renamed_on_a_copy", lambda *a: copies.append(a) or real(*a))
    directory = tmp_path / "m"
    (tmp_path / "before.sql").write_text(before)
    (tmp_path / "after.sql").write_text(after)
    assert cli("generate", "init", "--desired", tmp_path / "before.sql", "--dir", directory, "--create-dir",
               "--allow-fails-on-existing-rows").exit_code == 0
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    insert, count = data
    run(db, [insert])
    done = cli("generate", "rename", "--desired", tmp_path / "after.sql", "--dir", directory)  # verified on the shadow
    assert done.exit_code == 0, done.out + done.err
    assert bool(copies) is not modelled, "the model follows these renames; a view with a subquery falls back"
    up = next(directory.glob("*_rename.up.sql")).read_text()
    assert "RENAME" in up and "DROP TABLE" not in up and "DROP COLUMN" not in up and "DROP SEQUENCE" not in up
    live = cli("plan", "--desired", tmp_path / "after.sql", "--db", db, "--format", "sql")  # a live database
    assert live.exit_code == 2 and "RENAME" in live.out and "DROP TABLE" not in live.out
    # The rename map puts the renames first; the fallback on a live database (never written) renames a
    # copy of the desired one back, so there they come last.
    assert live.out.lstrip().startswith("ALTER TABLE") or not modelled
    with psycopg.connect(db) as conn:
        rows = conn.execute(count).fetchone()
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    in_sync = cli("plan", "--desired", tmp_path / "after.sql", "--db", db)
    assert in_sync.exit_code == 0, in_sync.out + in_sync.err
    assert cli("apply", "--dir", directory, "--db", db, "--down", "1").exit_code == 0
    back = cli("plan", "--desired", tmp_path / "before.sql", "--db", db)
    assert back.exit_code == 0, back.out + back.err
    with psycopg.connect(db) as conn:
        assert conn.execute(count).fetchone() == rows
