"""Issue 15: the down guard cannot be bypassed through user code the database (or the file) holds.

A down file may run without --allow-destructive only when it cannot run code
that deletes rows. Each case below hides a DELETE behind something a parse
tree alone does not show (a bare built-in name that resolves to a user
function, an operator, a cast, a view, a default, a check, a domain, a
trigger, a rule, an index expression, an event trigger...). Against the real
embedded server: without consent apply down is refused and the rows are
intact; with consent it runs, and the rows really go (so each payload is a
real bypass, not a pretend one); --dry-run lists the hazard.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from test_guards import _empty_cwd, is_bug_report, make_dir, rows, version_row  # noqa: F401

# t holds the rows every payload deletes; the functions hide the DELETE.
_FUNCTIONS = """
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE FUNCTION purge_rows() RETURNS bigint LANGUAGE plpgsql AS $$BEGIN DELETE FROM t; RETURN 0; END$$;
CREATE FUNCTION purge_check(int) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN DELETE FROM t; RETURN true; END$$;
CREATE FUNCTION purge_eq(int, int) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN DELETE FROM t; RETURN true; END$$;
CREATE FUNCTION purge_imm(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN PERFORM purge_rows(); RETURN $1; END$$;
CREATE FUNCTION purge_trigger() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN DELETE FROM t; RETURN NEW; END$$;
CREATE FUNCTION purge_event() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN DELETE FROM t; END$$;
"""
_ROWS = "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"

# case: (setup in the first up file, the down file's payload, a phrase the reason names)
BYPASSES = {
    "bare-builtin-name-overloaded": (
        "CREATE FUNCTION public.lower(integer) RETURNS integer LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN 1; END$$;",
        "SELECT lower(5);", "public.lower"),
    "bare-builtin-name-by-search-path": (
        "CREATE SCHEMA evil; CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN 'x'; END$$;",
        "SET LOCAL search_path = evil, pg_catalog, public;\nSELECT lower('X');", "evil.lower"),
    "user-aggregate-named-like-a-builtin": (
        "CREATE FUNCTION purge_acc(bigint, int) RETURNS bigint LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN 0; END$$;\n"
        "CREATE AGGREGATE public.count(int) (SFUNC = purge_acc, STYPE = bigint, INITCOND = '0');\n"
        "CREATE TABLE nums (n int); INSERT INTO nums VALUES (1);",
        "CREATE TABLE copied AS SELECT count(n) FROM nums;", "public.count"),
    "user-operator": (
        "CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = purge_eq);",
        "SELECT 1 === 2;", "operator ==="),
    "user-operator-in-a-where": (
        "CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = purge_eq);"
        " CREATE TABLE nums (n int); INSERT INTO nums VALUES (1);",
        "CREATE TABLE copied AS SELECT n FROM nums WHERE n === 1;", "operator ==="),
    "explicit-cast": (
        "CREATE TYPE mood AS (v int);\n"
        "CREATE FUNCTION to_mood(int) RETURNS mood LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN ROW($1)::mood; END$$;\n"
        "CREATE CAST (int AS mood) WITH FUNCTION to_mood(int);",
        "SELECT 1::mood;", "to_mood"),
    "assignment-cast-in-an-insert": (
        "CREATE TYPE mood AS (v int);\n"
        "CREATE FUNCTION to_mood(int) RETURNS mood LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN ROW($1)::mood; END$$;\n"
        "CREATE CAST (int AS mood) WITH FUNCTION to_mood(int) AS ASSIGNMENT;\n"
        "CREATE TABLE moods (m mood);",
        "INSERT INTO moods SELECT 1;", "to_mood"),
    "view-calling-a-function": (
        "CREATE VIEW purged AS SELECT purge_rows() AS n;",
        "CREATE TABLE copied AS SELECT n FROM purged;", "purged"),
    "view-over-a-view": (
        "CREATE VIEW purged AS SELECT purge_rows() AS n; CREATE VIEW outer_view AS SELECT n FROM purged;",
        "CREATE TABLE copied AS SELECT n FROM outer_view;", "outer_view"),
    "default-calling-a-function": (
        "CREATE TABLE audit (id int, n bigint DEFAULT purge_rows());",
        "INSERT INTO audit (id) VALUES (1);", "audit"),
    "new-column-default-over-existing-rows": (
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1);",
        "ALTER TABLE other ADD COLUMN n bigint DEFAULT purge_rows();", "purge_rows"),
    "check-validated": (
        "CREATE TABLE checked (id int); INSERT INTO checked VALUES (1);\n"
        "ALTER TABLE checked ADD CONSTRAINT c CHECK (purge_check(id)) NOT VALID;",
        "ALTER TABLE checked VALIDATE CONSTRAINT c;", "purge_check"),
    "check-added": (
        "CREATE TABLE checked (id int); INSERT INTO checked VALUES (1);",
        "ALTER TABLE checked ADD CONSTRAINT c CHECK (purge_check(id));", "purge_check"),
    "check-on-insert": (
        "CREATE TABLE checked (id int CHECK (purge_check(id)));",
        "INSERT INTO checked VALUES (1);", "purge_check"),
    "domain-validated": (
        "CREATE DOMAIN pos AS int; CREATE TABLE d (v pos); INSERT INTO d VALUES (1);\n"
        "ALTER DOMAIN pos ADD CONSTRAINT c CHECK (purge_check(VALUE)) NOT VALID;",
        "ALTER DOMAIN pos VALIDATE CONSTRAINT c;", "purge_check"),
    "cast-to-a-checked-domain": (
        "CREATE DOMAIN pos AS int CHECK (purge_check(VALUE));",
        "CREATE TABLE copied AS SELECT 1::pos AS p;", "purge_check"),
    "domain-checked-on-insert": (
        "CREATE DOMAIN pos AS int CHECK (purge_check(VALUE)); CREATE TABLE d (v pos);",
        "INSERT INTO d VALUES (1);", "purge_check"),
    "domain-over-a-domain-in-a-new-column": (
        "CREATE DOMAIN pos AS int CHECK (purge_check(VALUE)); CREATE DOMAIN pos2 AS pos;\n"
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1);",
        "ALTER TABLE other ADD COLUMN p pos2;", "pos2"),
    "trigger-fired-by-insert": (
        "CREATE TABLE log (id int);\n"
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "INSERT INTO log VALUES (1);", "trigger purge"),
    "trigger-fired-by-insert-in-a-cte": (
        "CREATE TABLE log (id int);\n"
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "WITH x AS (INSERT INTO log VALUES (1) RETURNING id) SELECT count(*) FROM x;", "trigger purge"),
    "trigger-on-a-partition": (
        "CREATE TABLE parted (id int) PARTITION BY LIST (id);\n"
        "CREATE TABLE part1 PARTITION OF parted FOR VALUES IN (1);\n"
        "CREATE TRIGGER purge AFTER INSERT ON part1 FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "INSERT INTO parted VALUES (1);", "trigger purge"),
    "instead-of-trigger-on-a-view": (
        "CREATE VIEW lv AS SELECT 1 AS id;\n"
        "CREATE TRIGGER purge INSTEAD OF INSERT ON lv FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "INSERT INTO lv VALUES (1);", "trigger purge"),
    "trigger-fired-by-copy": (
        "CREATE TABLE log (id int);\n"
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "COPY log FROM PROGRAM 'echo 1';", "trigger purge"),
    "rule-fired-by-insert": (
        "CREATE TABLE log (id int); CREATE RULE purge AS ON INSERT TO log DO ALSO DELETE FROM t;",
        "INSERT INTO log VALUES (1);", "rule purge"),
    "expression-index-built": (
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1);",
        "CREATE INDEX purge_idx ON other (purge_imm(id));", "purge_imm"),
    "expression-index-analyzed": (
        "CREATE TABLE other (id int); CREATE INDEX purge_idx ON other (purge_imm(id));"
        " INSERT INTO other VALUES (1);",
        "ANALYZE other;", "purge_imm"),
    "expression-index-on-insert": (
        "CREATE TABLE other (id int); CREATE INDEX purge_idx ON other (purge_imm(id));",
        "INSERT INTO other VALUES (1);", "purge_imm"),
    "rewrite-by-a-column-of-a-checked-domain": (
        "CREATE DOMAIN short AS text CHECK (length(VALUE) < 100);\n"
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1); CREATE INDEX purge_idx ON other (purge_imm(id));",
        "ALTER TABLE other ADD COLUMN s short;", "purge_imm"),
    "rewrite-by-a-volatile-default": (
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1); CREATE INDEX purge_idx ON other (purge_imm(id));",
        "ALTER TABLE other ADD COLUMN at timestamptz DEFAULT clock_timestamp();", "purge_imm"),
    "materialized-view-over-a-view-refreshed": (
        "CREATE VIEW purged AS SELECT purge_rows() AS n;\n"
        "CREATE MATERIALIZED VIEW mv AS SELECT n FROM purged WITH NO DATA;",
        "REFRESH MATERIALIZED VIEW mv;", "purge_rows"),
    "rewrite-of-a-partitioned-table-with-a-user-index-on-a-partition": (
        "CREATE TABLE parted (id int) PARTITION BY LIST (id);\n"
        "CREATE TABLE part1 PARTITION OF parted FOR VALUES IN (1); INSERT INTO parted VALUES (1);\n"
        "CREATE INDEX purge_idx ON part1 (purge_imm(id));",
        "ALTER TABLE parted ADD COLUMN at timestamptz DEFAULT clock_timestamp();", "purge_imm"),
    "materialized-view-refreshed": (
        "CREATE MATERIALIZED VIEW mv AS SELECT purge_rows() AS n WITH NO DATA;",
        "REFRESH MATERIALIZED VIEW mv;", "purge_rows"),
    "event-trigger-on-plain-ddl": (
        "CREATE EVENT TRIGGER purge ON ddl_command_start WHEN TAG IN ('DROP VIEW')"
        " EXECUTE FUNCTION purge_event();\nCREATE VIEW w AS SELECT 1 AS one;",
        "DROP VIEW w;", "event trigger purge"),
    "function-defined-by-the-same-file": (
        "",
        "CREATE FUNCTION lower(integer) RETURNS integer LANGUAGE plpgsql"
        " AS $$BEGIN DELETE FROM t; RETURN 1; END$$;\nSELECT lower(5);", "lower"),
    "trigger-defined-by-the-same-file": (
        "CREATE TABLE log (id int);",
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();\n"
        "INSERT INTO log VALUES (1);", "trigger purge"),
    "function-renamed-by-the-same-file": (
        "CREATE TABLE other (id int); INSERT INTO other VALUES (1);\n"
        "CREATE FUNCTION sneaky(integer) RETURNS integer IMMUTABLE LANGUAGE plpgsql"
        " AS $$BEGIN PERFORM purge_rows(); RETURN $1; END$$;",
        "ALTER FUNCTION sneaky(integer) RENAME TO upper;\nCREATE INDEX up_idx ON other (upper(id));", "upper"),
}


def _directory(tmp_path: Path, setup: str, down: str) -> Path:
    return make_dir(tmp_path, {
        "000001_base.up.sql": _FUNCTIONS + setup + "\n" + _ROWS,
        "000002_step.up.sql": "CREATE INDEX step ON t (id);",
        "000002_step.down.sql": "DROP INDEX step;\n" + down + "\n",
    })


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_down_guard_sees_user_code_a_statement_may_run(cli, db, tmp_path, case):
    setup, down, why = BYPASSES[case]
    directory = _directory(tmp_path, setup, down)
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    before = rows(db, "SELECT id, v FROM t ORDER BY id")
    assert before == [(1, "one"), (2, "two")]

    dry = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--dry-run")
    assert dry.exit_code == 0 and "deletes-data" in dry.out and why in dry.out, dry.out

    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1, refused.out
    assert "000002_step.down.sql" in refused.err and why in refused.err, refused.err
    assert "--allow-destructive" in refused.err and not is_bug_report(refused.err)
    assert version_row(db) == [(2, False)]
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == before

    allowed = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert allowed.exit_code == 0, allowed.err
    assert version_row(db) == [(1, False)]
    # The payload is real: run with consent, it deleted the rows the guard kept.
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == []


def test_a_function_an_earlier_down_file_defines_counts_for_a_later_one(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _FUNCTIONS + _ROWS,
        "000002_a.up.sql": "CREATE INDEX a ON t (id);",
        "000002_a.down.sql": "DROP INDEX a;\nSELECT lower(5);",
        "000003_b.up.sql": "CREATE INDEX b ON t (id);",
        "000003_b.down.sql": "DROP INDEX b;\nCREATE FUNCTION lower(integer) RETURNS integer LANGUAGE plpgsql"
                             " AS $$BEGIN DELETE FROM t; RETURN 1; END$$;",
    })
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--to", "1")
    assert refused.exit_code == 1 and "000002_a.down.sql" in refused.err and "lower" in refused.err, refused.err
    assert version_row(db) == [(3, False)]
    assert rows(db, "SELECT count(*) FROM t") == [(2,)]


def test_backup_is_taken_before_an_up_file_whose_insert_fires_a_deleting_trigger(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _FUNCTIONS + _ROWS + "CREATE TABLE log (id int);\n"
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "000002_seed.up.sql": "INSERT INTO log VALUES (1);",
    })
    backups = tmp_path / "dumps"
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1", "--backup", backups).exit_code == 0
    assert not backups.exists()
    result = cli("apply", "--dir", directory, "--db", db, "--backup", backups)
    assert result.exit_code == 0, result.err
    assert len(list(backups.glob("*.dump"))) == 1 and "backup written" in result.out


# User code the statements do NOT reach: plain DDL, generated-style setval, built-in calls, inserts into
# tables without code, must still go down without consent (golang-migrate-compatible down files).
_UNRELATED_CODE = """
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.v := NEW.v; RETURN NEW; END$$;
CREATE TABLE busy (id int, v text);
CREATE TRIGGER touch BEFORE INSERT ON busy FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW purged AS SELECT purge_rows() AS n;
CREATE TABLE plain (id serial PRIMARY KEY, v text DEFAULT lower('X'));
CREATE FUNCTION same(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN RETURN $1; END$$;
CREATE TABLE indexed (id int); INSERT INTO indexed VALUES (1); CREATE INDEX indexed_same ON indexed (same(id));
CREATE VIEW purged_too AS SELECT purge_rows() AS n;
CREATE MATERIALIZED VIEW frozen AS SELECT n FROM purged_too;
"""

HARMLESS_WITH_USER_CODE = {
    "setval-as-generated": "SELECT setval(pg_get_serial_sequence('plain', 'id'), max(id)) FROM plain"
                           " HAVING max(id) >= coalesce(pg_sequence_last_value(pg_get_serial_sequence('plain', 'id')),"
                           " (SELECT seqstart FROM pg_catalog.pg_sequence"
                           " WHERE seqrelid = pg_get_serial_sequence('plain', 'id')::regclass));",
    "plain-ddl": "ALTER TABLE busy ADD COLUMN w int;\nCREATE TABLE x (id int REFERENCES t);\nDROP VIEW purged;",
    "builtin-expression-index": "CREATE INDEX busy_lower ON busy (lower(v));",
    "insert-into-a-table-without-code": "INSERT INTO plain (v) VALUES ('y');",
    "validate-a-builtin-check": "ALTER TABLE busy ADD CONSTRAINT short CHECK (length(v) < 10) NOT VALID;\n"
                                "ALTER TABLE busy VALIDATE CONSTRAINT short;",
    "create-view-calling-a-user-function": "CREATE VIEW later AS SELECT purge_rows() AS n;",
    # indexed holds an expression index calling user code: these do not rebuild it.
    "constant-default-on-a-table-with-a-user-index": "ALTER TABLE indexed ADD COLUMN n int DEFAULT -1;",
    "builtin-check-on-a-table-with-a-user-index": "ALTER TABLE indexed ADD CONSTRAINT positive CHECK (id > 0);",
    "plain-column-on-a-table-with-a-user-index": "ALTER TABLE indexed ADD COLUMN note text;",
    "reading-a-materialized-view-over-user-code": "CREATE TABLE copied AS SELECT n FROM frozen;",
}


@pytest.mark.parametrize("case", sorted(HARMLESS_WITH_USER_CODE))
def test_down_guard_lets_through_statements_that_reach_no_user_code(cli, db, tmp_path, case):
    directory = _directory(tmp_path, _UNRELATED_CODE, HARMLESS_WITH_USER_CODE[case])
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert result.exit_code == 0, result.err
    assert version_row(db) == [(1, False)]
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == [(1, "one"), (2, "two")]


MORE_BYPASSES = {
    "merge-that-only-inserts-fires-a-trigger": (
        "CREATE TABLE log (id int);\n"
        "CREATE TRIGGER purge AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION purge_trigger();",
        "MERGE INTO log USING (SELECT 1 AS id) AS s ON log.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id);",
        "trigger purge"),
    "a-trigger-on-the-version-table": (
        "CREATE TRIGGER purge AFTER UPDATE ON schema_migrations FOR EACH ROW WHEN (NEW.version < OLD.version)"
        " EXECUTE FUNCTION purge_trigger();",
        "", "recording the version"),
    "an-event-trigger-the-file-enables": (
        "CREATE EVENT TRIGGER purge ON ddl_command_start WHEN TAG IN ('DROP VIEW')"
        " EXECUTE FUNCTION purge_event();\nALTER EVENT TRIGGER purge DISABLE;\nCREATE VIEW w AS SELECT 1 AS one;",
        "ALTER EVENT TRIGGER purge ENABLE;\nDROP VIEW w;", "event trigger purge"),
}


@pytest.mark.parametrize("case", sorted(MORE_BYPASSES))
def test_down_guard_sees_more_ways_to_user_code(cli, db, tmp_path, case):
    setup, down, why = MORE_BYPASSES[case]
    directory = _directory(tmp_path, "", down)
    # The version table exists only once apply created it: the setup runs as its own first file here.
    (directory / "000001_base.up.sql").write_text(_FUNCTIONS + _ROWS)
    (directory / "000002_step.up.sql").write_text("CREATE INDEX step ON t (id);\n" + setup)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    before = rows(db, "SELECT id, v FROM t ORDER BY id")
    assert before == [(1, "one"), (2, "two")]

    dry = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--dry-run")
    assert dry.exit_code == 0 and why in dry.out, dry.out
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and why in refused.err and "--allow-destructive" in refused.err, refused.err
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == before and version_row(db) == [(2, False)]

    allowed = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert allowed.exit_code == 0, allowed.err
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == []


def test_copy_to_a_server_file_needs_consent(cli, db, tmp_path):
    target = tmp_path / "overwritten"
    target.write_text("precious")
    directory = _directory(tmp_path, "", f"COPY (SELECT 1) TO '{target}';")
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and "server file" in refused.err, refused.err
    assert target.read_text() == "precious"


def test_a_disabled_event_trigger_does_not_hold_plain_ddl_back(cli, db, tmp_path):
    setup = ("CREATE EVENT TRIGGER purge ON ddl_command_start EXECUTE FUNCTION purge_event();\n"
             "ALTER EVENT TRIGGER purge DISABLE;")
    directory = _directory(tmp_path, setup, "CREATE TABLE later (id int);")
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert result.exit_code == 0, result.err
    assert rows(db, "SELECT count(*) FROM t") == [(2,)]


# --- what `generate` writes goes down without consent on a database full of user code ---------

_APP = """
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.name := lower(NEW.name); RETURN NEW; END$$;
CREATE FUNCTION shout(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT upper($1)';
CREATE TABLE items (id {id}, name text CHECK (shout(name) <> ''));
CREATE TRIGGER touch BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW loud AS SELECT id, shout(name) AS name FROM items;
"""


def test_generated_down_files_need_no_consent_for_plain_ddl_and_setval(cli, shadow_url, make_db, tmp_path):
    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    versions = [
        ("init", _APP.format(id="int PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY")),
        # Down re-creates the identity and moves its sequence past the rows (SELECT setval(...)).
        ("plain_id", _APP.format(id="int PRIMARY KEY")),
        ("index", _APP.format(id="int PRIMARY KEY") + "CREATE INDEX items_name ON items (lower(name));\n"),
    ]
    for index, (name, text) in enumerate(versions):
        desired.write_text(text)
        flags = ("--create-dir",) if index == 0 else ("--allow-destructive",)
        result = cli("generate", name, "--desired", desired, "--dir", directory, "--shadow", shadow_url, *flags)
        assert result.exit_code == 0, result.err
    assert "setval" in (directory / "000002_plain_id.down.sql").read_text()
    live = make_db()
    assert cli("apply", "--dir", directory, "--db", live, "--to", "1", "--shadow", shadow_url).exit_code == 0
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("INSERT INTO items (name) VALUES ('A'), ('B')")
    assert cli("apply", "--dir", directory, "--db", live, "--shadow", shadow_url).exit_code == 0
    result = cli("apply", "--dir", directory, "--db", live, "--to", "1")
    assert result.exit_code == 0, result.err
    assert version_row(live) == [(1, False)]
    assert rows(live, "SELECT id, name FROM items ORDER BY id") == [(1, "a"), (2, "b")]


def test_an_unprivileged_role_reads_the_user_code_and_is_guarded_the_same(cli, db, tmp_path):
    # apply usually runs as the application's role, not a superuser: the catalog it reads is public.
    role = f"guard_app_{os.getpid()}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f"GRANT CREATE ON DATABASE {database} TO {role}")
    app = psycopg.conninfo.make_conninfo(db, user=role)
    try:
        setup, down, why = BYPASSES["trigger-fired-by-insert"]
        directory = _directory(tmp_path, setup, down)
        assert cli("apply", "--dir", directory, "--db", app).exit_code == 0
        refused = cli("apply", "--dir", directory, "--db", app, "--down", "1")
        assert refused.exit_code == 1 and why in refused.err and not is_bug_report(refused.err), refused.err
        assert rows(db, "SELECT count(*) FROM t") == [(2,)]
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
