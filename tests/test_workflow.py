"""The documented workflow walked as a new team member walks it (issue 14).

Every test drives the real CLI against the embedded PostgreSQL, in a copy of
this repository (its pyproject.toml, schema/ and generated/), so the
configuration, the derived files and the migration directories are the ones
the README describes.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = ("CORTEX_DATABASE_URL", "POSTAL_DATABASE_URL", "DATABASE_URL", "SCHEMADIFF_SHADOW_URL")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's configuration, schema and migrations; the working directory."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "schema", copy / "schema")
    shutil.copytree(ROOT / "generated", copy / "generated")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    monkeypatch.chdir(copy)
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return copy


@pytest.fixture
def live_db(shadow):
    """Factory of databases named like an application's (not like schemadiff's temporary ones)."""
    import uuid

    created = []

    def factory(sql: str | None = None) -> str:
        name = f"app_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        # The administrator's URL, as make_db's: a live database, not the
        # shadow's unprivileged loader (which may not create extensions or
        # tables in public).
        url = shadow.admin_url_for(name)
        if sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)
        return url

    yield factory
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# ---------------------------------------------------------------------------
# Explicit flags win over configuration and environment


def test_an_explicit_dir_beats_the_services_database_variable(cli, shadow_url, make_db, repo, monkeypatch):
    # The live database is empty: compared with it, everything would be added.
    monkeypatch.setenv("CORTEX_DATABASE_URL", make_db())
    with_dir = cli("plan", "cortex", "--dir", "generated/cortex", "--shadow", shadow_url)
    assert with_dir.exit_code == 0, with_dir.out + with_dir.err
    assert "In sync" in with_dir.out and "live database" not in with_dir.out
    # Without the flag the variable is the configured default and is used.
    without = cli("plan", "cortex", "--shadow", shadow_url)
    assert without.exit_code == 2, without.out + without.err
    assert "live database" in without.out


def test_plan_of_every_service_reports_each_even_when_one_fails(cli, shadow_url, make_db, repo, monkeypatch):
    # A CI drift check over all services must not hide postal's pending changes behind cortex's failure.
    monkeypatch.setenv("CORTEX_DATABASE_URL", "postgres://nobody@/nowhere?host=/nonexistent-socket-dir")
    monkeypatch.setenv("POSTAL_DATABASE_URL", make_db())  # empty: every postal table is pending
    done = cli("plan", "--shadow", shadow_url)
    assert done.exit_code == 1, done.out + done.err
    assert "posts" in done.out  # postal's plan was made and shown
    assert "plan failed for 1 of 2 services" in done.err and "cortex: cannot connect" in done.err, done.err
    as_json = cli("plan", "--shadow", shadow_url, "--format", "json")
    assert as_json.exit_code == 1
    envelope = json.loads(as_json.out)
    assert [r["service"] for r in envelope["results"]] == ["postal"] and not envelope["results"][0]["in_sync"]
    assert "cortex: cannot connect" in envelope["error"]["message"]


# ---------------------------------------------------------------------------
# A derived file older than its archive is never planned


def test_plan_and_generate_refuse_a_derived_file_older_than_the_archive(cli, shadow_url, repo):
    _edit(repo / "schema" / "archive.sql", "    slug text NOT NULL,\n    created_at", "    slug text NOT NULL,\n    colour text,\n    created_at")
    before = sorted(p.name for p in (repo / "generated" / "postal").iterdir())
    for args in (("plan",), ("plan", "postal"), ("generate", "add_colour", "postal"), ("plan", "postal", "--format", "json")):
        result = cli(*args, "--shadow", shadow_url)
        assert result.exit_code == 1, (args, result.out, result.err)
        assert "stale" in result.err and "schemadiff derive" in result.err, result.err
        assert "In sync" not in result.out
    assert sorted(p.name for p in (repo / "generated" / "postal").iterdir()) == before
    # cortex's file does not hold the edited table but was derived from the same archive: stale as well.
    assert cli("plan", "cortex", "--shadow", shadow_url).exit_code == 1
    assert cli("derive").exit_code == 0
    after = cli("plan", "postal", "--shadow", shadow_url)
    assert after.exit_code == 2, after.out + after.err
    assert "colour" in after.out


def test_a_changed_table_list_makes_the_derived_file_stale(cli, shadow_url, repo):
    _edit(repo / "pyproject.toml", 'tables = ["posts", "post_versions", "tags", "post_tags"]',
          'tables = ["posts", "post_versions", "post_tags", "tags"]')
    result = cli("plan", "postal", "--shadow", shadow_url)
    assert result.exit_code == 1 and "tables of service postal" in result.err, result.out + result.err


# ---------------------------------------------------------------------------
# Rename hints written in the archive reach the service's plan


def test_rename_hints_in_the_archive_survive_derive_and_keep_the_data(cli, shadow_url, live_db, repo):
    live = live_db()
    assert cli("apply", "postal", "--db", live).exit_code == 0
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("INSERT INTO posts (tenant_id, author_id, title, slug, content) VALUES (1, 1, 't', 's', 'kept')")
    archive = repo / "schema" / "archive.sql"
    _edit(archive, "    content text NOT NULL DEFAULT '',", "    body text NOT NULL DEFAULT '', -- schemadiff:renamed-from content")
    _edit(archive, "CREATE INDEX posts_author_id_idx ON posts (author_id);",
          "CREATE INDEX posts_by_author_idx ON posts (author_id); -- schemadiff:renamed-from posts_author_id_idx")
    assert cli("derive").exit_code == 0
    derived = (repo / "schema" / "postal.sql").read_text()
    assert "-- schemadiff:renamed-from content" in derived
    assert "-- schemadiff:renamed-from posts_author_id_idx" in derived
    assert "renamed-from" not in (repo / "schema" / "cortex.sql").read_text()  # not cortex's objects
    assert cli("derive", "--check").exit_code == 0

    plan = cli("plan", "postal", "--db", live, "--shadow", shadow_url, "--format", "json")
    assert plan.exit_code == 2, plan.out + plan.err
    sql = "\n".join(change["sql"] for change in json.loads(plan.out)["results"][0]["changes"])
    assert "RENAME COLUMN content TO body" in sql and "RENAME TO posts_by_author_idx" in sql, sql
    assert "DROP COLUMN" not in sql

    made = cli("generate", "rename_content", "postal", "--shadow", shadow_url)  # no --allow-destructive
    assert made.exit_code == 0, made.out + made.err
    up = next((repo / "generated" / "postal").glob("*_rename_content.up.sql")).read_text()
    assert "RENAME COLUMN content TO body" in up and "DROP" not in up
    assert cli("apply", "postal", "--db", live).exit_code == 0
    with psycopg.connect(live) as conn:
        assert conn.execute("SELECT body FROM posts").fetchone() == ("kept",)


def test_a_probable_rename_in_a_derived_file_says_to_write_the_hint_in_the_archive(cli, shadow_url, repo):
    _edit(repo / "schema" / "archive.sql", "    content text NOT NULL DEFAULT '',", "    body text NOT NULL DEFAULT '',")
    assert cli("derive").exit_code == 0
    refused = cli("generate", "rename_content", "postal", "--shadow", shadow_url)
    assert refused.exit_code == 1
    assert "looks like content renamed" in refused.err and "schema/archive.sql" in refused.err, refused.err
    assert "in schema/postal.sql" not in refused.err


# ---------------------------------------------------------------------------
# Generated migrations run on managed PostgreSQL


@pytest.fixture
def managed_db(shadow, live_db):
    """A database as managed PostgreSQL hands it out: the DBA created pgvector, the app role owns the database.

    The role is not a superuser, so it cannot create pgvector (not a trusted
    extension) itself. Returns the role's URL.
    """
    import uuid

    url = live_db("CREATE EXTENSION vector")
    role = f"app_role_{uuid.uuid4().hex[:8]}"
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO "{role}"')
    yield psycopg.conninfo.make_conninfo(url, user=role)
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("service", ["cortex", "postal"])
def test_the_repositorys_migrations_apply_where_a_dba_created_the_extension(cli, managed_db, repo, service):
    result = cli("apply", service, "--db", managed_db)
    assert result.exit_code == 0, result.out + result.err


def test_a_generated_first_migration_applies_where_a_dba_created_the_extension(cli, shadow_url, managed_db, tmp_path):
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE docs (id int PRIMARY KEY, v vector(3));\n")
    made = cli("generate", "init", "--create-dir", "--desired", desired, "--dir", tmp_path / "migrations", "--shadow", shadow_url)
    assert made.exit_code == 0, made.out + made.err
    up = next((tmp_path / "migrations").glob("*.up.sql")).read_text()
    assert "CREATE EXTENSION IF NOT EXISTS vector" in up
    applied = cli("apply", "--dir", tmp_path / "migrations", "--db", managed_db)
    assert applied.exit_code == 0, applied.out + applied.err
    with psycopg.connect(managed_db) as conn:
        assert conn.execute("SELECT count(*) FROM docs").fetchone() == (0,)


# ---------------------------------------------------------------------------
# Large first migrations: enough lock table, and resource errors that name the resource


def _tables(count: int) -> str:
    return "".join(
        f"CREATE TABLE t{i:04d} (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, tenant_id int NOT NULL,"
        f" body text, CONSTRAINT t{i:04d}_body_check CHECK (body <> ''));\n"
        f"CREATE INDEX t{i:04d}_tenant_id_idx ON t{i:04d} (tenant_id);\n"
        for i in range(count)
    )


def test_the_embedded_server_holds_a_large_first_migration_in_one_transaction(shadow):
    # 1,000 tables lock about 8,000 objects in one transaction (up, and the
    # down file dropping them); PostgreSQL's default lock table holds 6,400.
    with psycopg.connect(shadow.admin_url) as conn:
        assert int(conn.execute("SHOW max_locks_per_transaction").fetchone()[0]) >= 512


@pytest.mark.long_running  # started first: see conftest.py
def test_a_first_migration_of_1000_tables_is_generated_and_verified(cli, shadow_url, tmp_path):
    desired = tmp_path / "schema.sql"
    desired.write_text(_tables(1000))
    made = cli("generate", "init", "--create-dir", "--desired", desired, "--dir", tmp_path / "m", "--shadow", shadow_url)
    assert made.exit_code == 0, made.out + made.err[-2000:]
    assert "Verified" in made.out


@pytest.fixture(scope="module")
def small_lock_server():
    """A second PostgreSQL whose lock table holds a few hundred locks (max_locks_per_transaction = 10)."""
    import tempfile
    import warnings

    from schemadiff.shadow.server import _embedded_module

    module = _embedded_module()
    # Not under pytest's tmp_path: the embedded package runs the server as
    # an unprivileged user when run as root, who cannot enter that tree.
    top = Path(tempfile.mkdtemp(prefix="schemadiff-small-locks-"))
    pgdata = top / "pg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = module.get_server(pgdata, cleanup_mode="stop")
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_locks_per_transaction = 10")
            # Few connections keep the shared lock table small (its size is max_locks_per_transaction times
            # the number of backends); one reserved for superusers, so the unprivileged loader's few
            # connections (shadow loads open several) are not refused under load.
            conn.execute("ALTER SYSTEM SET max_connections = 8")
            conn.execute("ALTER SYSTEM SET superuser_reserved_connections = 1")
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):  # throwaway data, as the shadow's
                conn.execute(f"ALTER SYSTEM SET {setting} = off")
        server.cleanup()
        server = module.get_server(pgdata, cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.long_running  # started first: see conftest.py
def test_running_out_of_lock_table_names_the_resource_not_a_bug(cli, small_lock_server, tmp_path):
    desired = tmp_path / "schema.sql"
    desired.write_text(_tables(150))
    made = cli("generate", "init", "--create-dir", "--desired", desired, "--dir", tmp_path / "m", "--shadow", small_lock_server)
    assert made.exit_code == 1, made.out + made.err
    assert "ran out of lock table space (max_locks_per_transaction)" in made.err, made.err
    assert "report" not in made.err and "Traceback" not in made.err
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").glob("*.sql"))

    # apply on such a server: the server's own hint names the setting.
    migrations = tmp_path / "hand"
    migrations.mkdir()
    (migrations / "000001_init.up.sql").write_text(_tables(150))
    (migrations / "000001_init.down.sql").write_text("")
    with psycopg.connect(small_lock_server, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS app")
        conn.execute("CREATE DATABASE app")
    app = psycopg.conninfo.make_conninfo(small_lock_server, dbname="app")
    applied = cli("apply", "--dir", migrations, "--db", app)
    assert applied.exit_code == 1, applied.out + applied.err
    assert "max_locks_per_transaction" in applied.err, applied.err
    with psycopg.connect(app) as conn:  # one transaction: nothing of it stayed
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't0%'").fetchone() == (0,)


# ---------------------------------------------------------------------------
# new: a blank numbered pair for data migrations; directory numbering conventions


def test_new_writes_a_blank_pair_recorded_in_the_sum_that_applies(cli, shadow_url, live_db, repo):
    made = cli("new", "backfill_post_slugs", "postal")
    assert made.exit_code == 0, made.out + made.err
    directory = repo / "generated" / "postal"
    up = directory / "000002_backfill_post_slugs.up.sql"
    assert up.exists() and (directory / "000002_backfill_post_slugs.down.sql").exists()
    assert "000002_backfill_post_slugs.up.sql" in (directory / "schemadiff.sum").read_text()
    # The team writes the backfill, records it, and it applies; plan still agrees.
    up.write_text(up.read_text() + "UPDATE posts SET slug = lower(slug);\n")
    assert cli(*_hinted_command(made.out)).exit_code == 0  # the command it names works as written
    live = live_db()
    applied = cli("apply", "postal", "--db", live)
    assert applied.exit_code == 0, applied.out + applied.err
    assert cli("plan", "postal", "--shadow", shadow_url).exit_code == 0
    # An edit not recorded is refused, as for generated files.
    up.write_text(up.read_text() + "-- edited\n")
    refused = cli("new", "another", "postal")
    assert refused.exit_code == 1 and "schemadiff hash" in refused.err, refused.err
    assert cli(*_hinted_command(refused.err)).exit_code == 0  # with two services too
    assert cli("new", "another", "postal").exit_code == 0


def _hinted_command(text: str) -> list[str]:
    """The arguments of the `schemadiff hash ...` command a message names."""
    import re
    import shlex

    command = re.search(r"`schemadiff (hash[^`]*)`", " ".join(text.split()))
    assert command, text
    return shlex.split(command[1])


def test_the_makefile_offers_a_blank_pair(repo):
    import subprocess

    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    result = subprocess.run(["make", "-n", "migrate-new", "NAME=backfill", "SERVICE=postal"], cwd=repo,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "new -- 'backfill' 'postal'" in result.stdout, result.stdout + result.stderr  # quoted, after --


def test_a_timestamped_directory_gets_timestamps_from_generate_and_new(cli, shadow_url, tmp_path):
    from datetime import datetime, timezone

    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "20240105093000_init.up.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\n")
    (directory / "20240105093000_init.down.sql").write_text("DROP TABLE a;\n")
    assert cli("hash", "--dir", directory).exit_code == 0
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE a (id int PRIMARY KEY, note text);\n")
    before = int(datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))
    made = cli("generate", "add_note", "--desired", desired, "--dir", directory, "--shadow", shadow_url)
    assert made.exit_code == 0, made.out + made.err
    blank = cli("new", "backfill_note", "--dir", directory)
    assert blank.exit_code == 0, blank.out + blank.err
    versions = sorted(int(p.name.split("_", 1)[0]) for p in directory.glob("*.up.sql"))
    assert versions[0] == 20240105093000
    assert all(v >= before and len(str(v)) == 14 for v in versions[1:]), versions
    assert versions[1] < versions[2]


def test_sequence_width_follows_the_directory_and_the_scheme_can_be_configured(cli, repo):
    directory = repo / "generated" / "cortex"
    assert cli("new", "seq_one", "cortex").exit_code == 0
    assert (directory / "000002_seq_one.up.sql").exists()
    _edit(repo / "pyproject.toml", 'db_env = "CORTEX_DATABASE_URL"', 'db_env = "CORTEX_DATABASE_URL"\nversions = "timestamp"')
    assert cli("new", "stamped", "cortex").exit_code == 0
    stamped = [p.name for p in directory.glob("*_stamped.up.sql")]
    assert len(stamped) == 1 and len(stamped[0].split("_", 1)[0]) == 14, stamped
    _edit(repo / "pyproject.toml", 'versions = "timestamp"', 'versions = "daily"')
    wrong = cli("new", "x", "cortex")
    assert wrong.exit_code == 1 and "sequence" in wrong.err and "timestamp" in wrong.err


# ---------------------------------------------------------------------------
# Objects another tool owns


DJANGO = """
CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL);
CREATE INDEX django_session_data_idx ON django_session (session_data);
CREATE SCHEMA legacy;
CREATE TABLE legacy.jobs (id int PRIMARY KEY);
"""


def test_plan_leaves_excluded_objects_and_other_schemas_alone(cli, shadow_url, live_db, repo):
    live = live_db()
    assert cli("apply", "postal", "--db", live).exit_code == 0
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute(DJANGO)
    plain = cli("plan", "postal", "--db", live, "--shadow", shadow_url)
    assert plain.exit_code == 2 and "DROP TABLE public.django_session" in plain.out, plain.out + plain.err
    narrowed = cli("plan", "postal", "--db", live, "--shadow", shadow_url, "--exclude", "django_*", "--schema", "public")
    assert narrowed.exit_code == 0, narrowed.out + narrowed.err
    # The service's exclude list does the same for every command, drift check included.
    _edit(repo / "pyproject.toml", 'db_env = "POSTAL_DATABASE_URL"', 'db_env = "POSTAL_DATABASE_URL"\nexclude = ["django_*", "legacy.*"]')
    configured = cli("plan", "postal", "--db", live, "--shadow", shadow_url)
    assert configured.exit_code == 0, configured.out + configured.err
    # Naming the service's desired file instead of the service keeps its scope.
    by_file = cli("plan", "--desired", "schema/postal.sql", "--db", live, "--shadow", shadow_url)
    assert by_file.exit_code == 0, by_file.out + by_file.err
    elsewhere = repo / "copy.sql"
    elsewhere.write_text((repo / "schema" / "postal.sql").read_text())
    other_file = cli("plan", "--desired", str(elsewhere), "--db", live, "--shadow", shadow_url)
    assert other_file.exit_code == 2 and "django_session" in other_file.out  # not a service's file: no scope
    # A real change is still planned, and only it.
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("ALTER TABLE tags DROP COLUMN created_at")
    drift = cli("plan", "postal", "--db", live, "--shadow", shadow_url, "--format", "sql")
    assert drift.exit_code == 2 and "created_at" in drift.out and "django" not in drift.out and "legacy" not in drift.out


def test_generate_leaves_excluded_objects_of_the_directory_alone(cli, shadow_url, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "000001_init.up.sql").write_text("CREATE TABLE app (id int PRIMARY KEY);\n" + DJANGO)
    (directory / "000001_init.down.sql").write_text("DROP TABLE app, django_session, legacy.jobs; DROP SCHEMA legacy;\n")
    assert cli("hash", "--dir", directory).exit_code == 0
    desired = tmp_path / "schema.sql"
    desired.write_text("CREATE TABLE app (id int PRIMARY KEY, note text);\n")
    refused = cli("generate", "add_note", "--desired", desired, "--dir", directory, "--shadow", shadow_url)
    assert refused.exit_code == 1 and "django_session" in refused.err  # would drop it
    made = cli("generate", "add_note", "--desired", desired, "--dir", directory, "--shadow", shadow_url,
               "--exclude", "django_*", "--exclude", "legacy.*")
    assert made.exit_code == 0, made.out + made.err
    up = next(directory.glob("000002_*.up.sql")).read_text()
    assert "note" in up and "django" not in up and "legacy" not in up


# ---------------------------------------------------------------------------
# dump: adopting a database an ORM built


def test_dump_writes_a_deterministic_loadable_desired_state_that_plans_in_sync(cli, shadow_url, live_db, tmp_path, repo):
    orm = live_db((ROOT / "tests" / "fixtures" / "orm" / "postal.sql").read_text())
    with psycopg.connect(orm, autocommit=True) as conn:
        conn.execute(DJANGO)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE embeddings (id int PRIMARY KEY, v vector(3))")
    first = cli("dump", "--db", orm, "--shadow", shadow_url, "--exclude", "django_*", "--exclude", "legacy")
    assert first.exit_code == 0, first.err
    again = cli("dump", "--db", orm, "--shadow", shadow_url, "--exclude", "django_*", "--exclude", "legacy",
                "-o", tmp_path / "desired.sql")
    assert again.exit_code == 0, again.err
    dumped = (tmp_path / "desired.sql").read_text()
    assert dumped == first.out  # deterministic
    header, body = dumped.split("\n\n", 1)
    assert "Left out: objects matching django_*, legacy" in header
    assert "CREATE TABLE public.posts" in body and "django" not in body and "legacy" not in body
    assert "CREATE EXTENSION IF NOT EXISTS vector" in body
    assert "FUNCTION public.vector" not in body  # the extension's own objects come with it
    # Loadable into an empty database...
    empty = live_db()
    with psycopg.connect(empty, autocommit=True) as conn:
        conn.execute(dumped)
    # ...and in sync with the database it came from (the same exclusions).
    plan = cli("plan", "--desired", tmp_path / "desired.sql", "--db", orm, "--shadow", shadow_url,
               "--exclude", "django_*", "--exclude", "legacy")
    assert plan.exit_code == 0, plan.out + plan.err
    assert cli("plan", "--desired", tmp_path / "desired.sql", "--db", empty, "--shadow", shadow_url).exit_code == 0


# ---------------------------------------------------------------------------
# Output people and machines read


def _run_shell(command: str, cwd: Path) -> "subprocess.CompletedProcess[str]":
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_a_closed_pipe_is_not_an_error_and_keeps_the_exit_code(shadow_url, tmp_path):
    desired = tmp_path / "schema.sql"
    desired.write_text(_tables(300))  # output far beyond a pipe's buffer
    (tmp_path / "none").mkdir()  # an empty directory: a missing one is an error
    result = _run_shell(
        f"schemadiff plan --desired {desired} --dir {tmp_path / 'none'} --shadow '{shadow_url}' --format sql"
        " | head -1; echo \"exit=${PIPESTATUS[0]}\"",
        tmp_path,
    )
    assert result.stdout.splitlines()[-1] == "exit=2", result.stdout[-500:] + result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""


@pytest.mark.long_running  # started first: see conftest.py
def test_json_is_one_versioned_envelope_with_structured_fields(cli, shadow_url, live_db, repo):
    both = cli("plan", "--shadow", shadow_url, "--format", "json")
    one = cli("plan", "postal", "--shadow", shadow_url, "--format", "json")
    assert both.exit_code == 0 and one.exit_code == 0, both.err + one.err
    for document, count in ((json.loads(both.out), 2), (json.loads(one.out), 1)):
        assert set(document) == {"schemadiff", "command", "results", "error"}
        assert document["schemadiff"] == 1 and document["command"] == "plan" and document["error"] is None
        assert len(document["results"]) == count
        compared = document["results"][-1]["compared_with"]
        assert compared == {"kind": "migrations", "directory": str(repo / "generated" / "postal"), "migrations": 1}
    # A probable rename, structured.
    _edit(repo / "schema" / "archive.sql", "    content text NOT NULL DEFAULT '',", "    body text NOT NULL DEFAULT '',")
    assert cli("derive").exit_code == 0
    live = live_db()
    assert cli("apply", "postal", "--db", live).exit_code == 0
    renamed = json.loads(cli("plan", "postal", "--db", live, "--shadow", shadow_url, "--format", "json").out)
    result = renamed["results"][0]
    assert result["compared_with"]["kind"] == "database" and "dbname=" in result["compared_with"]["database"]
    [rename] = result["probable_renames"]
    assert (rename["kind"], rename["old"], rename["new"]) == ("column", "public.posts.content", "public.posts.body")
    assert rename["hint"] == "-- schemadiff:renamed-from content" and "archive.sql" in rename["write_in"]


def test_the_text_plan_shows_a_probable_rename_with_its_hint(cli, shadow_url, repo):
    _edit(repo / "schema" / "archive.sql", "    content text NOT NULL DEFAULT '',", "    body text NOT NULL DEFAULT '',")
    assert cli("derive").exit_code == 0
    planned = cli("plan", "postal", "--shadow", shadow_url)
    assert planned.exit_code == 2, planned.out + planned.err  # changes pending, as diff says
    assert "probable rename:" in planned.out and "-- schemadiff:renamed-from content" in planned.out
    assert "bug" not in planned.err


def test_sql_output_stays_sql_and_warns_on_stderr_about_what_deletes_data(cli, shadow_url, repo):
    _edit(repo / "schema" / "archive.sql", "    content text NOT NULL DEFAULT '',", "    body text NOT NULL DEFAULT '',")
    assert cli("derive").exit_code == 0
    planned = cli("plan", "postal", "--shadow", shadow_url, "--format", "sql")
    assert planned.exit_code == 2
    assert all(line.startswith(("ALTER", "CREATE", "DROP", "COMMENT", "  ", ")", "--")) or not line.strip()
               for line in planned.out.splitlines()), planned.out
    assert "DROP COLUMN content" in planned.out
    assert "deletes-data" in planned.err and "DROP COLUMN content" in planned.err
    assert "probable rename:" in planned.err and "renamed-from content" in planned.err


def test_errors_are_json_when_json_was_asked_for(cli, shadow_url, repo):
    unknown = cli("plan", "nosuch", "--format", "json")
    assert unknown.exit_code == 1
    document = json.loads(unknown.out)
    assert document["command"] == "plan" and document["results"] == []
    assert document["error"]["type"] == "ConfigError" and "nosuch" in document["error"]["message"]
    assert document["error"]["exit_code"] == 1
    assert "nosuch" in unknown.err  # people still read the text
    usage = cli("status", "--format", "json", "--bogus")
    assert usage.exit_code == 1 and json.loads(usage.out)["error"]["type"] == "UsageError"
    assert cli("plan", "nosuch").out == ""  # text mode: nothing on stdout


def test_status_as_json(cli, live_db, repo):
    live = live_db()
    assert cli("apply", "cortex", "--db", live).exit_code == 0
    result = cli("status", "cortex", "--db", live, "--format", "json")
    assert result.exit_code == 0, result.err
    document = json.loads(result.out)
    assert document["command"] == "status" and document["error"] is None
    [report] = document["results"]
    assert (report["version"], report["dirty"], report["latest"]) == (1, False, 1)
    assert report["migrations"][0]["state"] == "applied" and report["migrations"][0]["applied_at"]


def test_plan_as_sql_for_several_services_is_refused(cli, shadow_url, repo):
    several = cli("plan", "--shadow", shadow_url, "--format", "sql")
    assert several.exit_code == 1 and "name the service" in several.err and several.out == ""
    assert cli("plan", "postal", "--shadow", shadow_url, "--format", "sql").exit_code == 0


# ---------------------------------------------------------------------------
# Hazards a reviewer needs


HAZARD_BASE = """
CREATE TABLE accounts (
  id int PRIMARY KEY,
  email text NOT NULL,
  name text COLLATE "C",
  score int
);
CREATE INDEX accounts_email_idx ON accounts (email);
CREATE INDEX accounts_name_idx ON accounts (name);
"""


def _plan_changes(cli, shadow_url, current: str, desired_sql: str, tmp_path: Path) -> dict:
    desired = tmp_path / "desired.sql"
    desired.write_text(desired_sql)
    result = cli("plan", "--desired", desired, "--db", current, "--shadow", shadow_url, "--format", "json")
    assert result.exit_code == 2, result.out + result.err
    return {c["sql"]: c for c in json.loads(result.out)["results"][0]["changes"]}


def test_renames_index_drops_and_collation_changes_carry_their_hazards(cli, shadow_url, live_db, tmp_path):
    live = live_db(HAZARD_BASE)
    changes = _plan_changes(cli, shadow_url, live, HAZARD_BASE
                            .replace("  email text NOT NULL,", "  mail text NOT NULL, -- schemadiff:renamed-from email")
                            .replace("(email)", "(mail)")
                            .replace('name text COLLATE "C"', 'name text COLLATE "POSIX"')
                            .replace("CREATE INDEX accounts_email_idx ON accounts (mail);\n", ""), tmp_path)
    rename = next(c for sql, c in changes.items() if "RENAME COLUMN email TO mail" in sql)
    assert "breaks-running-app" in rename["hazards"]
    drop = next(c for sql, c in changes.items() if sql.startswith("DROP INDEX"))
    assert "blocks-writes" in drop["hazards"] and drop["lock"] == "instant"
    collation = next(c for sql, c in changes.items() if "COLLATE" in sql)
    assert "rebuilds-indexes" in collation["hazards"] and collation["lock"] == "proportional to table size"


@pytest.mark.long_running  # started first: see conftest.py
def test_online_rewrites_are_not_cancelled_by_the_statement_timeout(cli, shadow_url, tmp_path):
    directory = tmp_path / "m"
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE t (id int PRIMARY KEY, n int, label text);\n")
    assert cli("generate", "init", "--create-dir", "--desired", desired, "--dir", directory, "--shadow", shadow_url).exit_code == 0
    desired.write_text("CREATE TABLE t (id int PRIMARY KEY, n bigint, label text);\n")  # int -> bigint rewrites
    made = cli("generate", "widen", "--desired", desired, "--dir", directory, "--shadow", shadow_url, "--online")
    assert made.exit_code == 0, made.out + made.err
    for path in directory.glob("00000[2-9]_*.sql"):
        text = path.read_text()
        if "TYPE bigint" in text:
            assert "statement_timeout = '1min'" not in text and "lock_timeout = '5s'" in text, text
            break
    else:
        raise AssertionError("no file widens the column")


# ---------------------------------------------------------------------------
# Help and the flags every modern CLI has


def test_help_version_debug_after_the_command_and_completion(cli, repo):
    assert "[tool.schemadiff]" in cli("plan", "--help").out
    generate_help = cli("generate", "-h").out
    assert "[tool.schemadiff]" in generate_help and "default: all" not in generate_help
    assert "Usage: schemadiff" in cli("-h").out
    version = cli("--version")
    assert version.exit_code == 0 and version.out.startswith("schemadiff ") and version.out.split()[1][0].isdigit()
    late = cli("plan", "nosuch", "--debug")
    assert late.exit_code == 1 and "Traceback" in late.err and "no such option" not in late.err
    assert "Traceback" not in cli("plan", "nosuch").err
    # typer detects the shell from the process tree (shellingham): run it from bash, as a user would, so
    # that the answer does not depend on which process started pytest.
    import shlex
    import subprocess
    import sys

    completion = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m schemadiff --show-completion"],
                                capture_output=True, text=True, timeout=120)
    assert completion.returncode == 0 and "complete" in completion.stdout, completion.stdout + completion.stderr


def test_a_syntax_error_shows_its_line_with_a_caret(cli, tmp_path):
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE a (id int);\n\nCREATE TABLE b (\n  id int,\n  name text,,\n  x int\n);\n")
    (tmp_path / "none").mkdir()  # an empty directory: a missing one is an error of its own
    result = cli("plan", "--desired", desired, "--dir", tmp_path / "none")
    assert result.exit_code == 1
    lines = result.err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "name text,,")
    assert f"{desired}:5:13:" in result.err
    caret = lines[at + 1]
    assert caret.strip() == "^" and caret.index("^") == lines[at].index(",,") + 1
    assert "statement starting at line 3" in result.err and "Traceback" not in result.err


# ---------------------------------------------------------------------------
# The runner's commands as golang-migrate users type them


def test_force_minus_one_works_as_documented(cli, live_db, repo):
    live = live_db()
    assert cli("apply", "cortex", "--db", live).exit_code == 0
    forced = cli("force", "-1", "cortex", "--db", live)
    assert forced.exit_code == 0, forced.out + forced.err
    assert "forced version none" in forced.out
    with psycopg.connect(live) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_database_url_is_the_fallback_of_a_single_service_repository(cli, live_db, repo, monkeypatch):
    _edit(repo / "pyproject.toml", '[tool.schemadiff.services.postal]', '[tool.schemadiff.unused_postal]')
    text = (repo / "pyproject.toml").read_text()
    (repo / "pyproject.toml").write_text(text.split("[tool.schemadiff.unused_postal]")[0])
    live = live_db()
    monkeypatch.setenv("DATABASE_URL", live)
    applied = cli("apply")
    assert applied.exit_code == 0, applied.out + applied.err
    assert "version none -> 1" in applied.out or "-> 1" in applied.out
    status = cli("status", "--format", "json")
    assert json.loads(status.out)["results"][0]["version"] == 1
    # The service's own variable wins over the fallback.
    monkeypatch.setenv("CORTEX_DATABASE_URL", live_db())
    assert json.loads(cli("status", "--format", "json").out)["results"][0]["version"] is None


def test_several_services_and_no_service_named_says_which_to_choose(cli, repo, live_db):
    for args in (("apply", "--db", live_db()), ("status",), ("force", "1")):
        result = cli(*args)
        assert result.exit_code == 1 and "cortex, postal" in result.err, (args, result.err)


# ---------------------------------------------------------------------------
# The summary at 80 columns


class _Terminal(io.TextIOBase):
    """A stream that says it is a terminal, collecting what is written (with its colours)."""

    def __init__(self) -> None:
        super().__init__()
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def isatty(self) -> bool:
        return True


def test_the_summary_is_readable_at_80_columns_and_dangers_are_loudest(cli, shadow_url, live_db, repo, monkeypatch):
    from schemadiff.cli import run

    live = live_db()
    assert cli("apply", "postal", "--db", live).exit_code == 0
    archive = repo / "schema" / "archive.sql"
    _edit(archive, "(tenant_id, status, published_at DESC)", "(tenant_id, status, published_at)")  # a changed index
    _edit(archive, "    like_count bigint NOT NULL DEFAULT 0,\n", "")  # a dropped column: deletes data
    _edit(archive, ",\n    CONSTRAINT posts_like_count_check CHECK (like_count >= 0)", "")
    assert cli("derive").exit_code == 0
    monkeypatch.setenv("COLUMNS", "80")
    plain = cli("plan", "postal", "--db", live, "--shadow", shadow_url)
    assert plain.exit_code == 2, plain.err
    assert "…" not in plain.out
    # The summary (a table, or one block per table when names are too long for one) fits, names whole.
    summary = plain.out.split("\n-- ! ", 1)[0].split("\nALTER ", 1)[0].split("\nDROP ", 1)[0].splitlines()[1:]
    assert summary and max(len(line) for line in summary) <= 80, plain.out
    assert any("posts_tenant_id_status_published_at_idx" in line for line in summary), plain.out
    document = json.loads(cli("plan", "postal", "--db", live, "--shadow", shadow_url, "--format", "json").out)
    [posts] = [row for row in document["results"][0]["summary"] if row["table"] == "public.posts"]
    index = "index posts_tenant_id_status_published_at_idx"
    assert index in posts["changed"] and index not in posts["added"] and index not in posts["removed"]

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = _Terminal(), io.StringIO()
    assert run(["plan", "postal", "--db", live, "--shadow", shadow_url], out=out, err=err) == 2
    marker = next(line for line in out.text.splitlines() if "deletes-data" in line and "-- !" in line)
    # Bold white on red (SGR 1, 97 or 37, 41), not the dim grey of an SQL comment.
    assert "\x1b[1;97;41m" in marker or "\x1b[1;37;41m" in marker, repr(marker)


# ---------------------------------------------------------------------------
# adoption next to an archive: derive must not replace a dumped file


def _add_legacy_service(repo: Path, *extra: str) -> None:
    lines = ["", "[tool.schemadiff.services.legacy]", 'desired = "schema/legacy.sql"',
             'migrations = "generated/legacy"', 'db_env = "LEGACY_DATABASE_URL"', *extra]
    with (repo / "pyproject.toml").open("a") as config:
        config.write("\n".join(lines) + "\n")


def test_derive_never_replaces_a_file_it_did_not_write(cli, repo, live_db, shadow_url, monkeypatch):
    live = live_db("CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);")
    monkeypatch.setenv("LEGACY_DATABASE_URL", live)
    _add_legacy_service(repo)
    dumped = cli("dump", "legacy", "-o", "schema/legacy.sql")
    assert dumped.exit_code == 0, dumped.err
    before = {path.name: path.read_bytes() for path in (repo / "schema").iterdir()}
    assert "accounts" in before["legacy.sql"].decode()

    for args in (("derive",), ("derive", "--check")):
        refused = cli(*args)
        assert refused.exit_code == 1, (args, refused.out, refused.err)
        assert "schema/legacy.sql" in refused.err and "derive did not write" in refused.err, refused.err
        assert "derived = false" in refused.err and "Traceback" not in refused.err
        # nothing was written: not the dumped file, not the other services' files
        assert {path.name: path.read_bytes() for path in (repo / "schema").iterdir()} == before

    # The adopted service keeps its own file: derive leaves it and derives the others.
    config = repo / "pyproject.toml"
    config.write_text(config.read_text().replace(
        'db_env = "LEGACY_DATABASE_URL"\n', 'db_env = "LEGACY_DATABASE_URL"\nderived = false\n'))
    derived = cli("derive", "--check")
    assert derived.exit_code == 0, derived.out + derived.err
    assert (repo / "schema" / "legacy.sql").read_bytes() == before["legacy.sql"]
    # The README's adoption path: plan against the live database needs no migration directory yet.
    assert not (repo / "generated" / "legacy").exists()
    planned = cli("plan", "legacy", "--db", live, "--shadow", shadow_url)
    assert planned.exit_code == 0 and "In sync" in planned.out, planned.out + planned.err
    assert not (repo / "generated" / "legacy").exists()  # plan created nothing


def test_a_service_that_is_not_derived_may_not_claim_archive_tables(cli, repo):
    _add_legacy_service(repo, "derived = false", 'tables = ["accounts"]')
    refused = cli("derive", "--check")
    assert refused.exit_code == 1 and "derived = false" in refused.err and "tables" in refused.err, refused.err
