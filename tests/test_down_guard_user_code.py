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

from pathlib import Path

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
}


@pytest.mark.parametrize("case", sorted(HARMLESS_WITH_USER_CODE))
def test_down_guard_lets_through_statements_that_reach_no_user_code(cli, db, tmp_path, case):
    directory = _directory(tmp_path, _UNRELATED_CODE, HARMLESS_WITH_USER_CODE[case])
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert result.exit_code == 0, result.err
    assert version_row(db) == [(1, False)]
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == [(1, "one"), (2, "two")]
