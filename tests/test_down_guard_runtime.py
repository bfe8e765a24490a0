"""Issue 15: the down guard's second judge, PostgreSQL itself (schemadiff.runner.losses).

Reading a file cannot follow every way SQL reaches data. Each payload
below deletes, overwrites or empties data through something the reading
does not follow (an expression a DDL statement evaluates, a name the file
renames first, an attribute-notation call, an operator a JOIN picks,
a domain's default, a trigger a partition or a LIKE copy inherits,
a string the server splits differently, ...). Against the real server:
without consent the file runs and is rolled back before it commits,
the rows are intact, the version is where it was, clean, and the message
names what was lost; with consent it runs and the loss is real (so each
payload is a real bypass). The harmless files (rewrites that keep rows,
new objects, inserts, a sequence moving forward) run without consent: the
judge must not cry wolf at the downs people write.
"""

from __future__ import annotations

import psycopg
import pytest

from schemadiff.runner.losses import Snapshot
from test_guards import is_bug_report, make_dir, rows, version_row

_WIPE = ("CREATE FUNCTION wipe() RETURNS int LANGUAGE plpgsql AS $f$BEGIN DELETE FROM victim; RETURN 0; END$f$;\n"
         "CREATE FUNCTION wipe_trigger() RETURNS trigger LANGUAGE plpgsql"
         " AS $f$BEGIN DELETE FROM victim; RETURN NEW; END$f$;\n")
_VICTIM = "CREATE TABLE victim (id int PRIMARY KEY, v text);\n"
_ROWS = "INSERT INTO victim SELECT g, 'row ' || g FROM generate_series(1, 4) g;\n"


def _routed_to_a_partition_firing(function: str) -> str:
    """A down file whose row reaches ``function`` through a partition's trigger: the insert names the parent."""
    return ("CREATE TABLE log (a int) PARTITION BY RANGE (a);\n"
            "CREATE TABLE log_1 PARTITION OF log FOR VALUES FROM (0) TO (100);\n"
            f"CREATE TRIGGER fire BEFORE INSERT ON log_1 FOR EACH ROW EXECUTE FUNCTION {function}();\n"
            "INSERT INTO log VALUES (50);")

# case: (more of the first up file, the down file, what the message names, SQL whose answer the payload changes)
LOSSES = {
    "partition-bound-evaluates-a-function": (
        "CREATE TABLE p (k int) PARTITION BY LIST (k);",
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (wipe());",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "attribute-notation-call": (
        "CREATE FUNCTION purge(r victim) RETURNS int LANGUAGE plpgsql"
        " AS $f$BEGIN DELETE FROM victim; RETURN 0; END$f$;",
        "CREATE TABLE copied AS SELECT v.purge FROM victim AS v;",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "join-using-picks-a-user-operator": (
        "CREATE FUNCTION veq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql"
        " AS $f$BEGIN PERFORM wipe(); RETURN $1::text = $2::text; END$f$;\n"
        "CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = veq);\n"
        "CREATE TABLE a (k varchar); CREATE TABLE b (k varchar); INSERT INTO a VALUES ('x'); INSERT INTO b VALUES ('x');",
        "CREATE TABLE joined AS SELECT k FROM a JOIN b USING (k);",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "domain-default": (
        "CREATE DOMAIN dd AS int; CREATE TABLE log (a int, b dd);",
        "ALTER DOMAIN dd SET DEFAULT wipe();\nINSERT INTO log (a) VALUES (1);",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "cast-to-a-type-renamed-in-the-file": (
        "CREATE TYPE mood AS ENUM ('a', 'b');\n"
        "CREATE FUNCTION to_mood(int) RETURNS mood LANGUAGE plpgsql AS $f$BEGIN PERFORM wipe(); RETURN 'a'; END$f$;\n"
        "CREATE CAST (int AS mood) WITH FUNCTION to_mood(int);",
        "ALTER TYPE mood RENAME TO feeling;\nSELECT 1::feeling;",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "trigger-of-the-partition-a-row-is-routed-to": (
        "",
        _routed_to_a_partition_firing("wipe_trigger"),
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "default-a-like-copy-takes": (
        "CREATE TABLE log (a int, b int DEFAULT wipe());",
        "CREATE TABLE log_copy (LIKE log INCLUDING ALL);\nINSERT INTO log_copy (a) VALUES (1);",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "string-split-by-standard-conforming-strings-off": (
        "",
        "SET standard_conforming_strings = off;\nSELECT 'a\\' , ' AS x; DELETE FROM victim; -- ' AS y;",
        "public.victim: 4 rows deleted", "SELECT count(*) FROM victim"),
    "update-through-a-trigger": (
        "CREATE FUNCTION blank() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$BEGIN UPDATE victim SET v = NULL; RETURN NEW; END$f$;\n" + "",
        _routed_to_a_partition_firing("blank"),
        "public.victim: 4 rows updated", "SELECT count(v) FROM victim"),
    "truncate-through-a-trigger": (
        "CREATE FUNCTION empty_it() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$BEGIN TRUNCATE victim; RETURN NEW; END$f$;\n" + "",
        _routed_to_a_partition_firing("empty_it"),
        "public.victim: emptied", "SELECT count(*) FROM victim"),
    "sequence-restarted": (
        "CREATE SEQUENCE ids; SELECT setval('ids', 1000);",
        "ALTER SEQUENCE ids RESTART;",
        "public.ids: sequence moved back", "SELECT last_value FROM ids"),
    "table-made-unlogged": (
        "",
        "ALTER TABLE victim SET UNLOGGED;",
        "public.victim: made UNLOGGED", "SELECT relpersistence FROM pg_class WHERE relname = 'victim'"),
    "large-object-unlinked-by-a-partition-bound": (
        "SELECT lo_from_bytea(424242, 'precious'::bytea);\nCREATE TABLE p (k int) PARTITION BY LIST (k);",
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (lo_unlink(424242));",
        "large objects: 1 removed", "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 424242"),
    "column-dropped-by-a-trigger": (
        "CREATE FUNCTION narrow() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$BEGIN ALTER TABLE victim DROP COLUMN v; RETURN NEW; END$f$;\n" + "",
        _routed_to_a_partition_firing("narrow"),
        "public.victim.v: column dropped",
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'victim'"),
    "same-type-rewrite-with-using-by-a-partition-bound": (
        "CREATE FUNCTION overwrite() RETURNS int LANGUAGE plpgsql AS $f$BEGIN"
        " EXECUTE 'ALTER TABLE victim ALTER COLUMN v TYPE text USING ''gone'''; RETURN 0; END$f$;\n"
        "CREATE TABLE p (k int) PARTITION BY LIST (k);",
        "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (overwrite());",
        "public.victim: rewritten by something the file does not show", "SELECT v FROM victim ORDER BY id"),
    "truncate-hidden-behind-a-search-path-that-redefines-the-judges-operators": (
        "CREATE FUNCTION empty_it() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$BEGIN TRUNCATE victim; RETURN NEW; END$f$;\n",
        _routed_to_a_partition_firing("empty_it") + "\n"
        "CREATE FUNCTION public.yes(bigint, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';\n"
        "CREATE OPERATOR public.> (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.yes);\n"
        "CREATE OPERATOR public.<= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = public.yes);\n"
        "CREATE FUNCTION public.unnest(a oid[]) RETURNS SETOF oid LANGUAGE sql AS 'SELECT 0::oid WHERE false';\n"
        "SET LOCAL search_path = public, pg_catalog;",
        "public.victim: emptied", "SELECT count(*) FROM victim"),
}


def _directory(tmp_path, setup: str, down: str):
    return make_dir(tmp_path, {
        "000001_base.up.sql": _VICTIM + _WIPE + setup + "\n" + _ROWS,
        "000001_base.down.sql": "DROP TABLE victim;",
        "000002_step.up.sql": "CREATE INDEX step ON victim (v);",
        "000002_step.down.sql": "DROP INDEX step;\n" + down + "\n",
    })


@pytest.mark.parametrize("case", sorted(LOSSES))
def test_what_reading_misses_is_rolled_back_by_what_postgresql_counts(cli, db, tmp_path, case):
    setup, down, named, probe = LOSSES[case]
    directory = _directory(tmp_path, setup, down)
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    before = rows(db, probe)
    history = rows(db, "SELECT count(*) FROM schemadiff_history")

    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1, refused.out + refused.err
    assert "000002_step.down.sql" in refused.err and named in refused.err, refused.err
    assert "rolled back" in refused.err and "--allow-destructive" in refused.err
    assert not is_bug_report(refused.err), refused.err
    assert version_row(db) == [(2, False)]
    assert rows(db, probe) == before
    assert rows(db, "SELECT count(*) FROM schemadiff_history") == history
    assert rows(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'step'") == [(1,)]  # DROP INDEX undone

    allowed = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert allowed.exit_code == 0, allowed.err
    assert version_row(db) == [(1, False)]
    assert rows(db, probe) != before  # the payload is real: with consent the loss happens


# case: (more of the first up file, a down file the judge must let through)
HARMLESS = {
    "rewrite-that-keeps-the-rows": ("", "ALTER TABLE victim ADD COLUMN token uuid DEFAULT gen_random_uuid();"),
    "cluster-and-tablespace": ("", "CLUSTER victim USING victim_pkey;\nALTER TABLE victim SET TABLESPACE pg_default;"),
    "insert-into-an-existing-table": ("", "INSERT INTO victim VALUES (100, 'new');"),
    "sequence-moves-forward": ("CREATE SEQUENCE ids; SELECT nextval('ids');",
                               "SELECT nextval('ids');\nALTER SEQUENCE ids RESTART WITH 50;"),
    "rewrite-and-insert-into-the-same-table": (
        "", "ALTER TABLE victim ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\n"
            "INSERT INTO victim (id, v) VALUES (6, 'restored seed row');"),
    "search-path-and-role-changed-by-the-file": (
        "CREATE SCHEMA app; CREATE TYPE app.status AS ENUM ('a'); CREATE TABLE app.orders (s app.status);\n"
        "CREATE INDEX orders_s ON app.orders (s); CREATE SEQUENCE used; SELECT nextval('used');\n"
        "CREATE ROLE runtime_judge_nobody_{suffix};",
        "SET search_path TO app;\nDROP INDEX orders_s;\nSET ROLE runtime_judge_nobody_{suffix};"),
    "an-empty-table-truncated-by-a-trigger": (
        "CREATE TABLE spare (a int);\n"
        "CREATE FUNCTION empty_spare() RETURNS trigger LANGUAGE plpgsql"
        " AS $f$BEGIN TRUNCATE spare; RETURN NEW; END$f$;\n" + "",
        _routed_to_a_partition_firing("empty_spare")),
}


@pytest.mark.parametrize("case", sorted(HARMLESS))
def test_downs_that_lose_nothing_run_without_consent(cli, db, tmp_path, case):
    setup, down = HARMLESS[case]
    suffix = tmp_path.name[-8:].lower().replace("-", "_")
    setup, down = setup.replace("{suffix}", suffix), down.replace("{suffix}", suffix)
    directory = _directory(tmp_path, setup, down)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    before = rows(db, "SELECT id, v FROM victim ORDER BY id")
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert result.exit_code == 0, result.err
    assert version_row(db) == [(1, False)]
    assert set(before) <= set(rows(db, "SELECT id, v FROM victim ORDER BY id"))


def test_a_refusal_names_the_files_this_run_committed_before_it(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _VICTIM + _WIPE + "CREATE TABLE p (k int) PARTITION BY LIST (k);\n" + _ROWS,
        "000001_base.down.sql": "DROP TABLE victim;",
        "000002_hidden.up.sql": "CREATE INDEX hidden ON victim (v);",
        "000002_hidden.down.sql": "DROP INDEX hidden;\nCREATE TABLE p1 PARTITION OF p FOR VALUES IN (wipe());",
        "000003_plain.up.sql": "CREATE INDEX plain ON victim (id, v);",
        "000003_plain.down.sql": "DROP INDEX plain;",
    })
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "2")
    assert refused.exit_code == 1
    assert "applied 000003_plain.down.sql before it" in refused.err, refused.err
    assert "database is at version 2, clean" in refused.err, refused.err
    assert version_row(db) == [(2, False)]
    assert rows(db, "SELECT count(*) FROM victim") == [(4,)]


def test_the_runner_bookkeeping_fires_no_event_trigger_once_its_tables_exist(cli, db, tmp_path):
    # Every DDL statement fires event triggers; a runner that re-creates its tables on each run would run
    # user code outside any file's transaction, where no judge sees it.
    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _VICTIM + _ROWS + (
            "CREATE FUNCTION purge_event() RETURNS event_trigger LANGUAGE plpgsql"
            " AS $f$BEGIN DELETE FROM victim; END$f$;\n"
            "CREATE EVENT TRIGGER purge ON ddl_command_start EXECUTE FUNCTION purge_event();"),
        "000002_step.up.sql": "SELECT 1;",
        "000002_step.down.sql": "SELECT 2;",
    })
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1").exit_code == 0
    assert rows(db, "SELECT count(*) FROM victim") == [(4,)]
    for args in (("--to", "2"), ("--down", "1")):
        result = cli("apply", "--dir", directory, "--db", db, *args)
        assert result.exit_code == 0, result.err
        assert rows(db, "SELECT count(*) FROM victim") == [(4,)]


def test_setting_track_counts_in_a_down_file_needs_consent(cli, db, tmp_path):
    directory = _directory(tmp_path, "", "SET LOCAL track_counts = off;")
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and "track_counts" in refused.err, refused.err
    assert version_row(db) == [(2, False)]


def test_objects_made_in_the_transaction_are_not_losses_and_existing_ones_are(db):
    # The judge alone, on the real server: what the transaction makes and removes again is not a loss;
    # deleting, updating or truncating what existed before is, each named once.
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(_VICTIM + _ROWS + "CREATE TABLE other (a int); INSERT INTO other VALUES (1), (2);")
        snapshot = Snapshot.take(conn)
        with conn.transaction(force_rollback=True):
            snapshot.begin(conn)  # the setup's counts may not be flushed yet: counted from here
            conn.execute("CREATE TABLE scratch (a int); INSERT INTO scratch VALUES (1); DELETE FROM scratch;"
                         " TRUNCATE scratch; DROP TABLE scratch; INSERT INTO victim VALUES (9, 'nine')")
            assert snapshot.losses(conn) == []
        with conn.transaction(force_rollback=True):
            snapshot.begin(conn)
            conn.execute("DELETE FROM victim WHERE id < 3; UPDATE victim SET v = 'x' WHERE id = 4;"
                         " TRUNCATE other; INSERT INTO other VALUES (3)")
            assert snapshot.losses(conn) == [
                "public.other: emptied (TRUNCATE, or its storage replaced) and 1 row inserted",
                "public.victim: 2 rows deleted",
                "public.victim: 1 row updated (their old values are overwritten)",
            ]


def test_rows_an_earlier_consented_file_deleted_are_not_counted_against_the_next(db, tmp_path):
    # The xact counters keep what earlier transactions of the session did until the backend flushes them
    # (when idle, at most once a second): the judge counts from the start of the file's own transaction.
    from schemadiff.runner.apply import apply

    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _VICTIM + _ROWS + "CREATE TABLE audit (a int); INSERT INTO audit VALUES (1), (2);",
        "000001_base.down.sql": "DROP TABLE victim;",
        "000002_plain.up.sql": "CREATE INDEX plain ON victim (v);",
        "000002_plain.down.sql": "DROP INDEX plain;",
        "000003_trim.up.sql": "SELECT 1;",
        "000003_trim.down.sql": "DELETE FROM audit;",
    })
    apply(db, directory)
    asked: list[list[str]] = []
    result = apply(db, directory, down=2, confirm=lambda steps: asked.append([s.name for s in steps]) or True)
    assert asked == [["000003_trim.down.sql"]]
    assert [a.step.name for a in result.applied] == ["000003_trim.down.sql", "000002_plain.down.sql"]
    assert version_row(db) == [(1, False)]
    assert rows(db, "SELECT count(*) FROM victim") == [(4,)]


@pytest.mark.parametrize("releasing", ["SELECT pg_advisory_unlock_all();", "-- schemadiff:no-transaction\nDISCARD ALL;"])
def test_a_file_that_releases_the_migration_lock_gets_it_back_or_stops_the_run(cli, db, make_db, tmp_path,
                                                                               releasing):
    # Another runner could take the lock the moment it is released: the runner takes it back at once, and
    # stops (not recording the file as done) when another session was quicker.
    import threading
    import time

    from schemadiff.runner.lock import lock_keys

    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _VICTIM,
        "000002_unlock.up.sql": releasing,
        "000003_next.up.sql": "CREATE INDEX next ON victim (v);",
    })
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0  # nobody else: it carries on
    assert version_row(db) == [(3, False)]
    db = make_db()
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1").exit_code == 0

    transactional = "no-transaction" not in releasing
    # Now another session waits for the lock; the file sleeps after releasing it, so the other one gets it.
    (directory / "000002_unlock.up.sql").write_text(releasing + "\nSELECT pg_sleep(2);\n")
    with psycopg.connect(db, autocommit=True) as other:
        database, schema = other.execute("SELECT current_database(), current_schema()").fetchone()
        keys = lock_keys(database, schema, "schema_migrations")
        grabbed = threading.Event()

        def grab() -> None:  # once the file sleeps (its lock released), take the lock as a second runner would
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not grabbed.is_set():
                sleeping = other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                                         " AND datname = current_database()"
                                         " AND query LIKE 'SELECT pg_sleep(2)%'").fetchone()[0]
                if sleeping and all(other.execute("SELECT pg_try_advisory_lock(%s)", [k]).fetchone()[0] for k in keys):
                    grabbed.set()
                    return
                other.execute("SELECT pg_advisory_unlock_all()")
                time.sleep(0.01)

        thread = threading.Thread(target=grab)
        thread.start()
        result = cli("apply", "--dir", directory, "--db", db)
        grabbed.set()
        thread.join()
        assert result.exit_code == 1 and "another session took it meanwhile" in result.err, result.err
        assert not is_bug_report(result.err)
        assert rows(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'next'") == [(0,)]
        assert version_row(db) == ([(1, False)] if transactional else [(2, True)])


def test_a_deferred_trigger_that_would_fire_at_commit_is_judged_before_it(cli, db, tmp_path):
    directory = _directory(
        tmp_path,
        "CREATE TABLE log (a int);\n"
        "CREATE CONSTRAINT TRIGGER later AFTER INSERT ON log DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION wipe_trigger();",
        "CREATE VIEW log_view AS SELECT a FROM log;\nINSERT INTO log_view VALUES (1);",
    )
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and "public.victim: 4 rows deleted" in refused.err, refused.err
    assert rows(db, "SELECT count(*) FROM victim") == [(4,)]
    assert version_row(db) == [(2, False)]


def test_a_database_without_row_counters_cannot_be_judged_so_down_needs_consent(cli, db, tmp_path):
    directory = _directory(tmp_path, "", "SELECT 1;")
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    with psycopg.connect(db, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f'ALTER DATABASE "{name}" SET track_counts = off')
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and "could not be judged" in refused.err and "track_counts" in refused.err, refused.err
    assert version_row(db) == [(2, False)]
    allowed = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert allowed.exit_code == 0 and version_row(db) == [(1, False)]


def test_another_sessions_truncate_meanwhile_is_not_the_files(db):
    # Only what this transaction did counts: the judge reads catalog changes of relations it holds a lock on.
    with psycopg.connect(db, autocommit=True) as conn, psycopg.connect(db, autocommit=True) as other:
        conn.execute(_VICTIM + _ROWS + "CREATE TABLE staging (a int); INSERT INTO staging VALUES (1);")
        snapshot = Snapshot.take(conn)
        with conn.transaction(force_rollback=True):
            snapshot.begin(conn)
            conn.execute("CREATE INDEX victim_v ON victim (v)")
            other.execute("TRUNCATE staging")
            assert snapshot.losses(conn) == []
            conn.execute("TRUNCATE public.victim")  # qualified: the judge left search_path at pg_catalog
            assert snapshot.losses(conn) == ["public.victim: emptied (TRUNCATE, or its storage replaced)"]


@pytest.mark.parametrize("down", [
    "-- schemadiff:no-transaction\nCREATE TABLE p1 PARTITION OF p FOR VALUES IN (wipe());",
    "CREATE INDEX CONCURRENTLY victim_id_v ON victim (id, v);\nCREATE TABLE p1 PARTITION OF p FOR VALUES IN (wipe());",
    "SELECT setval('ids', 1, false);",
])
def test_what_the_second_judge_cannot_see_needs_consent_from_the_reading(cli, db, tmp_path, down):
    # Outside a transaction nothing can be rolled back before it commits; setval is never rolled back.
    directory = _directory(tmp_path, "CREATE TABLE p (k int) PARTITION BY LIST (k); CREATE SEQUENCE ids;"
                                     " SELECT setval('ids', 100);", down)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1 and "going down runs statements that delete data" in refused.err, refused.err
    assert rows(db, "SELECT count(*) FROM victim") == [(4,)] and rows(db, "SELECT last_value FROM ids") == [(100,)]
