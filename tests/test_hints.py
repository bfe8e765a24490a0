"""Rename hints: ``-- schemadiff:renamed-from OLD`` turns drop + create into RENAME.

Each object kind is renamed up and back down on real databases holding rows;
the rows must survive both ways, and the schema must reach the desired state
(up) and return to the current one (down).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from schemadiff.inspect import diff_databases
from schemadiff.hints import (
    RenameHintError,
    apply_rename_hints,
    invert_hints,
    probable_renames,
    read_rename_hints,
)
from schemadiff.inspect import inspect_database


def run(url: str, changes) -> None:
    with psycopg.connect(url) as conn:  # one transaction, like a migration file
        for change in changes:
            conn.execute(change.sql)


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def round_trip(make_db, current: str, data: str, desired: str):
    """Plan up and down with the hints, apply both, return (up, down, url)."""
    current_url = make_db(current + data)
    desired_url = make_db(desired)
    hints = read_rename_hints(desired, path="desired.sql")
    assert hints
    up = apply_rename_hints(diff_databases(current_url, desired_url), hints, current_url, desired_url)
    down = apply_rename_hints(diff_databases(desired_url, current_url), invert_hints(hints), desired_url, current_url)
    run(current_url, up)
    assert diff_databases(current_url, desired_url) == []
    return up, down, current_url, make_db(current)


def test_table_rename_keeps_rows(make_db):
    current = "CREATE TABLE users (id int PRIMARY KEY, name text);\n"
    desired = "CREATE TABLE members (  -- schemadiff:renamed-from users\n    id int PRIMARY KEY,\n    name text\n);\n"
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO users VALUES (1, 'ada'), (2, 'bob');", desired)
    # The engine may rename more after the hinted rename (the primary key's name follows the table's).
    assert up[0].sql == "ALTER TABLE public.users RENAME TO members;"
    assert not any(c.action == "drop" and c.kind == "table" for c in up)
    assert rows(url, "SELECT id, name FROM members ORDER BY id") == [(1, "ada"), (2, "bob")]
    run(url, down)
    assert down[0].sql == "ALTER TABLE public.members RENAME TO users;"
    assert rows(url, "SELECT id, name FROM users ORDER BY id") == [(1, "ada"), (2, "bob")]
    assert diff_databases(url, pristine) == []


def test_column_rename_with_a_type_change_keeps_values(make_db):
    current = "CREATE TABLE users (id int PRIMARY KEY, mail varchar(50) NOT NULL);\n"
    desired = (
        "CREATE TABLE users (\n"
        "    id int PRIMARY KEY,\n"
        "    email text NOT NULL  -- schemadiff:renamed-from mail\n"
        ");\n"
    )
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO users VALUES (1, 'a@x.test');", desired)
    assert up[0].sql == "ALTER TABLE public.users RENAME COLUMN mail TO email;"
    assert any("TYPE text" in c.sql for c in up[1:]), "the type change follows the rename"
    assert not any(c.action == "drop" for c in up)
    assert rows(url, "SELECT email FROM users") == [("a@x.test",)]
    run(url, down)
    assert rows(url, "SELECT mail FROM users") == [("a@x.test",)]
    assert diff_databases(url, pristine) == []


def test_index_rename(make_db):
    current = "CREATE TABLE t (id int PRIMARY KEY, a int);\nCREATE INDEX t_a_old ON t (a);\n"
    desired = "CREATE TABLE t (id int PRIMARY KEY, a int);\nCREATE INDEX t_a_idx ON t (a);  -- schemadiff:renamed-from t_a_old\n"
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO t SELECT g, g FROM generate_series(1, 5) g;", desired)
    assert [c.sql for c in up] == ["ALTER INDEX public.t_a_old RENAME TO t_a_idx;"]
    run(url, down)
    assert [c.sql for c in down] == ["ALTER INDEX public.t_a_idx RENAME TO t_a_old;"]
    assert diff_databases(url, pristine) == []
    assert rows(url, "SELECT count(*) FROM t") == [(5,)]


def test_constraint_rename(make_db):
    current = "CREATE TABLE t (id int PRIMARY KEY, a int, CONSTRAINT t_old_check CHECK (a > 0));\n"
    desired = (
        "CREATE TABLE t (\n    id int PRIMARY KEY,\n    a int,\n"
        "    CONSTRAINT t_a_check CHECK (a > 0)  -- schemadiff:renamed-from t_old_check\n);\n"
    )
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO t VALUES (1, 3);", desired)
    assert [c.sql for c in up] == ["ALTER TABLE public.t RENAME CONSTRAINT t_old_check TO t_a_check;"]
    run(url, down)
    assert diff_databases(url, pristine) == []
    assert rows(url, "SELECT a FROM t") == [(3,)]


def test_enum_value_rename_keeps_rows_using_it(make_db):
    current = "CREATE TYPE mood AS ENUM ('happy', 'sad');\nCREATE TABLE people (id int PRIMARY KEY, feels mood);\n"
    desired = (
        "CREATE TYPE mood AS ENUM (\n    'joyful',  -- schemadiff:renamed-from happy\n    'sad'\n);\n"
        "CREATE TABLE people (id int PRIMARY KEY, feels mood);\n"
    )
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO people VALUES (1, 'happy'), (2, 'sad');", desired)
    assert [c.sql for c in up] == ["ALTER TYPE public.mood RENAME VALUE 'happy' TO 'joyful';"]
    assert rows(url, "SELECT feels::text FROM people ORDER BY id") == [("joyful",), ("sad",)]
    run(url, down)
    assert rows(url, "SELECT feels::text FROM people ORDER BY id") == [("happy",), ("sad",)]
    assert diff_databases(url, pristine) == []


def test_table_and_its_column_renamed_together(make_db):
    current = "CREATE TABLE users (id int PRIMARY KEY, mail text);\n"
    desired = (
        "CREATE TABLE members (  -- schemadiff:renamed-from users\n"
        "    id int PRIMARY KEY,\n"
        "    email text  -- schemadiff:renamed-from mail\n"
        ");\n"
    )
    up, down, url, pristine = round_trip(make_db, current, "INSERT INTO users VALUES (1, 'm');", desired)
    assert [c.sql for c in up[:2]] == [
        "ALTER TABLE public.users RENAME TO members;",
        "ALTER TABLE public.members RENAME COLUMN mail TO email;",
    ]
    assert not any(c.action == "drop" and c.kind in ("table", "column") for c in up)
    assert rows(url, "SELECT email FROM members") == [("m",)]
    run(url, down)
    assert rows(url, "SELECT mail FROM users") == [("m",)]
    assert diff_databases(url, pristine) == []


def test_live_current_database_is_never_written(make_db, shadow):
    """A database that is not schemadiff's own is only read: the renames are planned on its model, first."""
    name = "hints_live_test"
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    live = shadow.admin_url_for(name)  # a live database: the administrator's, not the shadow loader's
    try:
        with psycopg.connect(live, autocommit=True) as conn:
            conn.execute("CREATE TABLE users (id int PRIMARY KEY, mail varchar(20)); INSERT INTO users VALUES (1, 'x');")
        desired = "CREATE TABLE users (\n    id int PRIMARY KEY,\n    email text  -- schemadiff:renamed-from mail\n);\n"
        desired_url = make_db(desired)
        hints = read_rename_hints(desired)
        up = apply_rename_hints(diff_databases(live, desired_url), hints, live, desired_url)
        assert rows(live, "SELECT mail FROM users") == [("x",)], "planning must not touch the live database"
        assert [c.sql for c in up] == ["ALTER TABLE public.users RENAME COLUMN mail TO email;",
                                       "ALTER TABLE public.users ALTER COLUMN email TYPE text;"]
        run(live, up)
        assert diff_databases(live, desired_url) == []
        assert rows(live, "SELECT email FROM users") == [("x",)]
    finally:
        with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_hint_already_applied_is_ignored(make_db):
    desired = "CREATE TABLE t (\n    id int PRIMARY KEY,\n    email text  -- schemadiff:renamed-from mail\n);\n"
    current_url, desired_url = make_db("CREATE TABLE t (id int PRIMARY KEY, email text);"), make_db(desired)
    changes = diff_databases(current_url, desired_url)
    assert apply_rename_hints(changes, read_rename_hints(desired), current_url, desired_url) == changes == []


def test_hint_naming_a_missing_object_is_an_error(make_db):
    desired = "CREATE TABLE t (\n    id int PRIMARY KEY,\n    email text  -- schemadiff:renamed-from mial\n);\n"
    current_url = make_db("CREATE TABLE t (id int PRIMARY KEY, mail text);")
    desired_url = make_db(desired)
    with pytest.raises(RenameHintError) as caught:
        apply_rename_hints(diff_databases(current_url, desired_url), read_rename_hints(desired, path="d.sql"), current_url, desired_url)
    assert "d.sql:3:" in caught.value.message and "mial" in caught.value.message


def test_hint_on_a_line_defining_nothing(tmp_path):
    path = tmp_path / "desired.sql"
    path.write_text("CREATE TABLE t (\n    id int\n);\n-- schemadiff:renamed-from x\nSELECT 1;\n")
    with pytest.raises(RenameHintError) as caught:
        read_rename_hints(path)
    assert caught.value.message.startswith(f"{path}:4:1: rename hint on a line that defines no")


def test_hint_on_a_line_defining_two_objects():
    with pytest.raises(RenameHintError, match="several objects"):
        read_rename_hints("CREATE TABLE t (a int);  -- schemadiff:renamed-from u\n")


def test_hints_are_found_with_their_kinds_and_qualified_names():
    text = (
        "CREATE TABLE app.members (  -- schemadiff:renamed-from users\n"
        '    "Email" text,  -- schemadiff:renamed-from "Mail"\n'
        "    CONSTRAINT members_pkey PRIMARY KEY (\"Email\")  -- schemadiff:renamed-from users_pkey\n"
        ");\n"
        "-- schemadiff:renamed-fromage is not a hint, nor is this comment\n"
        "CREATE INDEX members_idx ON app.members (\"Email\");  -- schemadiff:renamed-from users_idx\n"
        "ALTER TABLE app.members ADD CONSTRAINT members_email_check CHECK (\"Email\" <> '');  -- schemadiff:renamed-from c\n"
    )
    found = [(h.kind, h.new_name, h.old_name, h.position.line) for h in read_rename_hints(text)]
    assert found == [
        ("table", "app.members", "app.users", 1),
        ("column", 'app.members."Email"', 'app.users."Mail"', 2),
        ("constraint", "app.members.members_pkey", "app.users.users_pkey", 3),
        ("index", "app.members_idx", "app.users_idx", 6),
        ("constraint", "app.members.members_email_check", "app.users.c", 7),
    ]


def test_probable_renames_without_hints(make_db):
    current_url = make_db("CREATE TABLE t (id int PRIMARY KEY, mail text, n int);")
    desired_url = make_db("CREATE TABLE t (id int PRIMARY KEY, email text, n bigint);")
    changes = diff_databases(current_url, desired_url)
    suggestions = probable_renames(changes, inspect_database(current_url), inspect_database(desired_url))
    assert len(suggestions) == 1
    assert "-- schemadiff:renamed-from mail" in suggestions[0] and "public.t.email" in suggestions[0]


def test_no_probable_renames_when_types_differ(make_db):
    current_url = make_db("CREATE TABLE t (id int PRIMARY KEY, mail text);")
    desired_url = make_db("CREATE TABLE t (id int PRIMARY KEY, email int);")
    changes = diff_databases(current_url, desired_url)
    assert probable_renames(changes, inspect_database(current_url), inspect_database(desired_url)) == []


def test_a_column_hint_under_a_table_renamed_by_an_earlier_migration_still_renames(make_db):
    # The table hint already applied (it stays in the file); the column's hint is new: the column is
    # found under the table's new name, not dropped and added.
    desired = (
        "CREATE TABLE members (  -- schemadiff:renamed-from users\n"
        "    id int PRIMARY KEY,\n"
        "    email text  -- schemadiff:renamed-from mail\n"
        ");\n"
    )
    current_url = make_db("CREATE TABLE members (id int PRIMARY KEY, mail text); INSERT INTO members VALUES (1, 'm');")
    desired_url = make_db(desired)
    hints = read_rename_hints(desired)
    up = apply_rename_hints(diff_databases(current_url, desired_url), hints, current_url, desired_url)
    assert [c.sql for c in up] == ["ALTER TABLE public.members RENAME COLUMN mail TO email;"]
    down = apply_rename_hints(diff_databases(desired_url, current_url), invert_hints(hints), desired_url, current_url)
    assert [c.sql for c in down] == ["ALTER TABLE public.members RENAME COLUMN email TO mail;"]
    run(current_url, up)
    assert rows(current_url, "SELECT email FROM members") == [("m",)]
