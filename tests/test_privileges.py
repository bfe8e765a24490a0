"""Privileges, default privileges, owners and roles on the shadow server.

Every round trip is judged by pg_dump (tests/pgdump.py, PostgreSQL's own
account of a schema, GRANTs and OWNER TO included) and by the catalog
judge: the dump after up equals the desired database's dump, the dump after
down equals the original's.
"""

from __future__ import annotations

import psycopg
import pytest
from pgdump import schema_dump

from schemadiff.shadow import catalog
from schemadiff.engine.diff import diff_schemas
from schemadiff.inspect import inspect_database
from schemadiff.shadow.roles import mentioned_roles
from schemadiff.sqlfile import parse_statements

READER, WRITER, OWNER = "privs_t_reader", "privs_t_writer", "privs_t_owner"


@pytest.fixture(scope="module", autouse=True)
def roles(shadow):
    # Roles belong to the server: made once, with the admin step the commands use.
    shadow.create_missing_roles([READER, WRITER, OWNER])


def _run(url: str, changes) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for change in changes:
            conn.execute(change.sql)


def roundtrip(make_db, current: str, desired: str, *, owners: bool = False) -> tuple[list, list]:
    """Diff current -> desired, apply up then down; assert both ends by pg_dump and by the judge."""
    current_url, desired_url = make_db(current), make_db(desired)
    before, want = schema_dump(current_url), schema_dump(desired_url)
    judge_before = catalog.snapshot(current_url, owners=owners)
    judge_want = catalog.snapshot(desired_url, owners=owners)
    current_model, desired_model = inspect_database(current_url), inspect_database(desired_url)
    up = diff_schemas(current_model, desired_model, owners=owners)
    down = diff_schemas(desired_model, current_model, owners=owners)
    assert up, "the states differ: there must be something to do"
    _run(current_url, up)
    assert schema_dump(current_url) == want, "\n".join(c.sql for c in up)
    assert catalog.differences(judge_want, catalog.snapshot(current_url, owners=owners)) == []
    _run(current_url, down)
    assert schema_dump(current_url) == before, "\n".join(c.sql for c in down)
    assert catalog.differences(judge_before, catalog.snapshot(current_url, owners=owners)) == []
    return up, down


def _sql(changes) -> str:
    return "\n".join(c.sql for c in changes)


# ------------------------------------------------------------------ part 3: re-created objects keep their grants

# (name, current, desired): each desired change forces a drop and re-create of the object the grants are on.
RECREATED = {
    "view": (
        "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT a FROM t1;",
        "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT b, a FROM t1;",
        "VIEW v1", "TABLE v1", "SELECT",
    ),
    "view over a retyped column": (
        "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT a FROM t1;",
        "CREATE TABLE t1 (a bigint, b int); CREATE VIEW v1 AS SELECT a FROM t1;",
        "VIEW v1", "TABLE v1", "SELECT",
    ),
    "materialized view": (
        "CREATE TABLE t1 (a int, b int); CREATE MATERIALIZED VIEW m1 AS SELECT a FROM t1;",
        "CREATE TABLE t1 (a int, b int); CREATE MATERIALIZED VIEW m1 AS SELECT a, b FROM t1;",
        "MATERIALIZED VIEW m1", "TABLE m1", "SELECT",
    ),
    "function": (
        "CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS 'SELECT 1';",
        "CREATE FUNCTION f1() RETURNS bigint LANGUAGE sql AS 'SELECT 1';",
        "FUNCTION f1()", "FUNCTION f1()", "EXECUTE",
    ),
    "procedure": (
        "CREATE PROCEDURE p1(a int) LANGUAGE sql AS 'SELECT 1';",
        "CREATE PROCEDURE p1(b int) LANGUAGE sql AS 'SELECT 1';",
        "PROCEDURE p1(int)", "PROCEDURE p1(int)", "EXECUTE",
    ),
    "table": (
        "CREATE TABLE t1 (a int, b int);",
        "CREATE TABLE t1 (a int, b int) PARTITION BY RANGE (a);",
        "TABLE t1", "TABLE t1", "SELECT, UPDATE",
    ),
    "enum type": (
        "CREATE TYPE e1 AS ENUM ('x', 'y', 'z'); CREATE TABLE t1 (a e1);",
        "CREATE TYPE e1 AS ENUM ('x', 'z'); CREATE TABLE t1 (a e1);",
        "TYPE e1", "TYPE e1", "USAGE",
    ),
    "domain": (
        "CREATE DOMAIN d1 AS int;",
        "CREATE DOMAIN d1 AS bigint;",
        "DOMAIN d1", "TYPE d1", "USAGE",
    ),
    "range type": (
        "CREATE TYPE r1 AS RANGE (SUBTYPE = int4);",
        "CREATE TYPE r1 AS RANGE (SUBTYPE = int8);",
        "TYPE r1", "TYPE r1", "USAGE",
    ),
}


def _grants(grant_on: str, privileges: str, public_default: bool) -> str:
    text = f"GRANT {privileges} ON {grant_on} TO {READER}; GRANT {privileges.split(',')[0]} ON {grant_on} TO {WRITER}" \
           f" WITH GRANT OPTION;"
    if public_default:  # PUBLIC's EXECUTE / USAGE by default: its revoke must survive too
        text += f" REVOKE {privileges} ON {grant_on} FROM PUBLIC;"
    return text


@pytest.mark.parametrize("kind", list(RECREATED))
def test_a_re_created_object_gets_its_privileges_back_up_and_down(make_db, kind):
    current, desired, _, grant_on, privileges = RECREATED[kind]
    public_default = privileges in ("EXECUTE", "USAGE")
    grants = _grants(grant_on, privileges, public_default)
    up, down = roundtrip(make_db, current + grants, desired + grants)
    # (down may alter in place, e.g. an enum gaining a label back: the dump check covers it)
    assert any(c.action == "grant" for c in up)


@pytest.mark.parametrize("kind", list(RECREATED))
def test_a_re_created_object_gets_its_owner_back_when_owners_are_managed(make_db, kind):
    current, desired, alter, grant_on, privileges = RECREATED[kind]
    extra = f"ALTER {alter} OWNER TO {OWNER}; GRANT {privileges} ON {grant_on} TO {READER};"
    up, down = roundtrip(make_db, current + extra, desired + extra, owners=True)
    assert any(c.kind == "owner" for c in up)


def test_the_issue_example_view_grant_to_public_survives(make_db):
    up, down = roundtrip(
        make_db,
        "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT a FROM t1; GRANT SELECT ON v1 TO PUBLIC;",
        "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT b, a FROM t1; GRANT SELECT ON v1 TO PUBLIC;",
    )
    assert "GRANT SELECT ON TABLE public.v1 TO PUBLIC;" in _sql(up)
    assert "GRANT SELECT ON TABLE public.v1 TO PUBLIC;" in _sql(down)


def test_column_privileges_of_a_re_created_view_and_table_come_back(make_db):
    grants = f"GRANT SELECT (a) ON v1 TO {READER}; GRANT UPDATE (b), SELECT (a) ON t1 TO {WRITER};"
    roundtrip(make_db, "CREATE TABLE t1 (a int, b int); CREATE VIEW v1 AS SELECT a FROM t1;" + grants,
              "CREATE TABLE t1 (a int, b int) PARTITION BY LIST (a); CREATE VIEW v1 AS SELECT a, b FROM t1;" + grants)


def test_a_serial_sequence_keeps_its_grants_when_its_table_is_re_created(make_db):
    grants = f"GRANT USAGE, SELECT ON SEQUENCE t1_id_seq TO {READER};"
    roundtrip(make_db, "CREATE TABLE t1 (id serial, a int);" + grants,
              "CREATE TABLE t1 (id serial, a int) PARTITION BY RANGE (id);" + grants)


# ------------------------------------------------------------------ part 2: privileges compared and changed

@pytest.mark.parametrize(
    ("current", "desired"),
    [
        pytest.param("CREATE TABLE t (a int);", f"CREATE TABLE t (a int); GRANT SELECT, INSERT ON t TO {READER};",
                     id="table grant"),
        pytest.param(f"CREATE TABLE t (a int); GRANT SELECT ON t TO {READER};",
                     f"CREATE TABLE t (a int); GRANT SELECT ON t TO {READER} WITH GRANT OPTION;",
                     id="grant option added"),
        pytest.param(f"CREATE TABLE t (a int); GRANT ALL ON t TO {READER} WITH GRANT OPTION;",
                     f"CREATE TABLE t (a int); GRANT SELECT ON t TO {READER}; GRANT DELETE ON t TO PUBLIC;",
                     id="grant option and privileges removed, PUBLIC"),
        pytest.param(f"CREATE TABLE t (a int, b int); GRANT SELECT ON t TO {READER};",
                     f"CREATE TABLE t (a int, b int); GRANT SELECT (a), UPDATE (b) ON t TO {READER};",
                     id="table privilege narrowed to columns"),
        pytest.param(f"CREATE TABLE t (a int, b int); GRANT SELECT ON t TO {READER}; GRANT SELECT (a) ON t TO {READER};",
                     f"CREATE TABLE t (a int, b int); GRANT SELECT (a) ON t TO {READER};",
                     id="table-level revoke takes the column privilege, which comes back"),
        pytest.param("CREATE VIEW v AS SELECT 1 AS a; CREATE MATERIALIZED VIEW m AS SELECT 1 AS a;",
                     f"CREATE VIEW v AS SELECT 1 AS a; CREATE MATERIALIZED VIEW m AS SELECT 1 AS a;"
                     f" GRANT SELECT ON v, m TO {READER};", id="view and materialized view"),
        pytest.param("CREATE SEQUENCE s;", f"CREATE SEQUENCE s; GRANT USAGE ON SEQUENCE s TO {READER};",
                     id="sequence"),
        pytest.param("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
                     " CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';",
                     "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
                     " CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';"
                     f" REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC; GRANT EXECUTE ON FUNCTION f() TO {READER};"
                     " REVOKE ALL ON PROCEDURE p() FROM PUBLIC;", id="function and procedure, PUBLIC's default"),
        pytest.param("CREATE TYPE e AS ENUM ('a'); CREATE DOMAIN d AS int;",
                     "CREATE TYPE e AS ENUM ('a'); CREATE DOMAIN d AS int; REVOKE USAGE ON TYPE e FROM PUBLIC;"
                     f" REVOKE USAGE ON DOMAIN d FROM PUBLIC; GRANT USAGE ON DOMAIN d TO {READER};",
                     id="type and domain, PUBLIC's default"),
        pytest.param("CREATE SCHEMA s;", f"CREATE SCHEMA s; GRANT USAGE, CREATE ON SCHEMA s TO {READER};",
                     id="schema"),
        pytest.param("", f"CREATE SCHEMA s; CREATE TABLE s.t (a int); GRANT USAGE ON SCHEMA s TO {READER};"
                         f" GRANT SELECT (a) ON s.t TO {READER}; CREATE FUNCTION s.f() RETURNS int LANGUAGE sql"
                         " AS 'SELECT 1'; REVOKE EXECUTE ON FUNCTION s.f() FROM PUBLIC;",
                     id="new objects with their grants"),
        pytest.param("", "REVOKE USAGE ON SCHEMA public FROM PUBLIC;", id="public schema"),
        pytest.param("", f"REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC; GRANT USAGE ON LANGUAGE sql TO {READER}"
                         " WITH GRANT OPTION;", id="languages"),
    ],
)
def test_privileges_round_trip(make_db, current, desired):
    roundtrip(make_db, current, desired)


@pytest.mark.parametrize(
    "desired",
    [
        pytest.param(f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {READER};", id="global"),
        pytest.param(f"CREATE SCHEMA s; ALTER DEFAULT PRIVILEGES IN SCHEMA s GRANT USAGE ON SEQUENCES TO {READER}"
                     " WITH GRANT OPTION;", id="in schema"),
        pytest.param("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;"
                     " ALTER DEFAULT PRIVILEGES REVOKE USAGE ON TYPES FROM PUBLIC;", id="PUBLIC's built-in default"),
        pytest.param(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} GRANT SELECT ON TABLES TO {READER};",
                     id="for role"),
    ],
)
def test_default_privileges_round_trip(make_db, desired):
    roundtrip(make_db, "CREATE TABLE before_all (a int);", "CREATE TABLE before_all (a int);" + desired)


def test_objects_created_after_default_privileges_get_exactly_the_desired_acl(make_db):
    # The new table gets the default grant when created; the view, created
    # before the default in the desired file, has no such grant and must not
    # keep the one the default would give it.
    up, _ = roundtrip(
        make_db, "CREATE TABLE t1 (a int); CREATE VIEW v1 AS SELECT a FROM t1;",
        f"CREATE TABLE t1 (a bigint); CREATE VIEW v1 AS SELECT a FROM t1;"
        f" ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {READER}; CREATE TABLE t2 (a int);",
    )
    sql = _sql(up)
    assert f"REVOKE SELECT ON TABLE public.v1 FROM {READER};" in sql
    assert "ON TABLE public.t2" not in sql


def test_owners_are_ignored_unless_managed_and_so_are_the_owners_own_privileges(make_db):
    current = "CREATE TABLE t (a int); REVOKE TRUNCATE ON t FROM CURRENT_USER;"
    desired = f"CREATE TABLE t (a int); ALTER TABLE t OWNER TO {OWNER};"
    a, b = inspect_database(make_db(current)), inspect_database(make_db(desired))
    assert diff_schemas(a, b) == []
    assert catalog.differences(catalog.snapshot(make_db(current)), catalog.snapshot(make_db(desired))) == []
    up = diff_schemas(a, b, owners=True)
    assert f"ALTER TABLE public.t OWNER TO {OWNER};" in _sql(up)
    assert any("owner of table public.t" in line
               for line in catalog.differences(catalog.snapshot(make_db(current), owners=True),
                                               catalog.snapshot(make_db(desired), owners=True)))


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param(("TABLE t", "CREATE TABLE t (a int);"), id="table"),
        pytest.param(("VIEW v", "CREATE VIEW v AS SELECT 1 AS a;"), id="view"),
        pytest.param(("SEQUENCE s", "CREATE SEQUENCE s;"), id="sequence"),
        pytest.param(("FUNCTION f()", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"), id="function"),
        pytest.param(("TYPE e", "CREATE TYPE e AS ENUM ('a');"), id="type"),
        pytest.param(("DOMAIN d", "CREATE DOMAIN d AS int;"), id="domain"),
        pytest.param(("SCHEMA s", "CREATE SCHEMA s;"), id="schema"),
    ],
)
def test_owner_changes_round_trip_when_managed(make_db, objects):
    alter, create = objects
    up, _ = roundtrip(make_db, create, create + f" ALTER {alter} OWNER TO {OWNER};", owners=True)
    assert any(c.kind == "owner" for c in up)


def test_owner_change_moves_the_old_owners_grants_like_postgres_does(make_db):
    base = f"CREATE TABLE t (a int); GRANT SELECT ON t TO {READER};"
    roundtrip(make_db, base, base + f" ALTER TABLE t OWNER TO {OWNER}; REVOKE DELETE ON t FROM {OWNER};",
              owners=True)


def test_the_judge_reports_a_missing_grant(make_db):
    plain = make_db("CREATE TABLE t (a int);")
    granted = make_db(f"CREATE TABLE t (a int); GRANT SELECT ON t TO {READER} WITH GRANT OPTION;")
    lines = catalog.differences(catalog.snapshot(granted), catalog.snapshot(plain))
    assert lines == [f"missing privileges on table public.t: [\"{READER}:SELECT*\"]"]


# ------------------------------------------------------------------ roles on the shadow server

def test_roles_named_by_the_sql_are_found_by_the_grammar():
    statements = parse_statements(
        "CREATE TABLE t (a int);\n"
        "GRANT SELECT ON t TO app_reader, PUBLIC;\n"
        "REVOKE ALL ON t FROM \"Quoted Role\";\n"
        "ALTER DEFAULT PRIVILEGES FOR ROLE deployer IN SCHEMA public GRANT SELECT ON TABLES TO reporting;\n"
        "ALTER TABLE t OWNER TO table_owner;\n"
        "CREATE POLICY p ON t TO policy_role USING (true);\n"
        "CREATE SCHEMA s AUTHORIZATION schema_owner;\n"
        "GRANT member_of TO app_reader;\n"
        "CREATE ROLE made_here; GRANT SELECT ON t TO made_here, CURRENT_USER;\n"
        "COMMENT ON TABLE t IS 'GRANT SELECT ON t TO not_a_role';\n"
    )
    assert mentioned_roles(statements) == sorted([
        "Quoted Role", "app_reader", "deployer", "member_of", "policy_role", "reporting", "schema_owner",
        "table_owner"])


def test_generate_creates_missing_roles_on_the_shadow_only_and_says_so(cli, shadow, shadow_url, tmp_path):
    import secrets

    role = f"privs_new_{secrets.token_hex(3)}"
    desired = tmp_path / "desired.sql"
    desired.write_text(f"CREATE TABLE t (a int);\nGRANT SELECT ON t TO {role};\n")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    # The role stays afterwards (NOLOGIN, on the shadow server only): kept templates may hold grants to it.
    result = cli("generate", "grants", "--desired", desired, "--dir", migrations, "--shadow", shadow_url)
    assert result.exit_code == 0, result.out + result.err
    assert f"created role(s) {role} on the shadow server only (NOLOGIN)" in result.err
    up = next(migrations.glob("*.up.sql")).read_text()
    assert f"GRANT SELECT ON TABLE public.t TO {role};" in up
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (False,)
    plan = cli("plan", "--desired", desired, "--dir", migrations, "--shadow", shadow_url)
    assert plan.exit_code == 0, plan.out + plan.err


def test_plan_owners_flag_and_config(cli, shadow_url, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.schemadiff.services.svc]\ntables = []\ndesired = \"d.sql\"\nmigrations = \"m\"\nowners = true\n")
    # The new owner needs CREATE on the schema (PostgreSQL docs, ALTER TABLE: only a superuser is exempt),
    # and the shadow loads as a non-superuser, as a deploy role usually is.
    (tmp_path / "d.sql").write_text(
        f"CREATE TABLE t (a int);\nGRANT CREATE ON SCHEMA public TO {OWNER};\nALTER TABLE t OWNER TO {OWNER};\n")
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    managed = cli("plan", "svc", "--shadow", shadow_url, "--format", "sql")
    assert managed.exit_code == 2 and f"ALTER TABLE public.t OWNER TO {OWNER};" in managed.out
    unmanaged = cli("plan", "svc", "--no-owners", "--shadow", shadow_url, "--format", "sql")
    assert unmanaged.exit_code == 2 and "OWNER TO" not in unmanaged.out
    (tmp_path / "pyproject.toml").write_text(
        "[tool.schemadiff.services.svc]\ntables = []\ndesired = \"d.sql\"\nmigrations = \"m\"\nowners = \"yes\"\n")
    bad = cli("plan", "svc", "--shadow", shadow_url)
    assert bad.exit_code == 1 and "owners: expected true or false" in bad.err


def test_apply_never_creates_roles_on_the_target(cli, db, tmp_path):
    import secrets

    role = f"privs_absent_{secrets.token_hex(3)}"
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "000001_grant.up.sql").write_text(f"CREATE TABLE t (a int);\nGRANT SELECT ON t TO {role};\n")
    (migrations / "000001_grant.down.sql").write_text("DROP TABLE t;\n")
    assert cli("hash", "--dir", migrations).exit_code == 0
    result = cli("apply", "--dir", migrations, "--db", db)
    assert result.exit_code == 1
    assert f'role "{role}" does not exist' in result.err
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)  # nothing half-applied


@pytest.mark.parametrize("online", [False, True], ids=["plain", "online"])
@pytest.mark.long_running  # started first: see conftest.py
def test_a_renamed_table_keeps_its_grants_and_the_rest_is_diffed_with_owners(cli, shadow_url, tmp_path, online):
    # A rename hint re-diffs the renamed state: privileges and owners must follow it.
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    current = tmp_path / "current.sql"
    # The new owner needs CREATE on the schema unless a superuser runs the migration (PostgreSQL docs,
    # ALTER TABLE); the shadow, like a deploy role, is no superuser.
    schema_grant = f"GRANT CREATE ON SCHEMA public TO {OWNER};\n"
    current.write_text(f"CREATE TABLE old_t (a int);\nGRANT SELECT ON old_t TO {READER};\n"
                       f"GRANT INSERT ON old_t TO {WRITER};\n{schema_grant}")
    desired = tmp_path / "desired.sql"
    desired.write_text(f"CREATE TABLE new_t ( -- schemadiff:renamed-from old_t\n  a int\n);\n"
                       f"GRANT SELECT ON new_t TO {READER};\n{schema_grant}ALTER TABLE new_t OWNER TO {OWNER};\n")
    first = cli("generate", "start", "--desired", current, "--dir", migrations, "--shadow", shadow_url)
    assert first.exit_code == 0, first.out + first.err
    args = ["generate", "rename", "--desired", desired, "--dir", migrations, "--shadow", shadow_url, "--owners"]
    result = cli(*args, *(["--online"] if online else []))
    assert result.exit_code == 0, result.out + result.err  # verified: privileges and owners judged
    ups = "\n".join(p.read_text() for p in sorted(migrations.glob("*rename*.up.sql")))
    assert "RENAME TO new_t" in ups and f"REVOKE INSERT ON TABLE public.new_t FROM {WRITER};" in ups
    assert f"OWNER TO {OWNER}" in ups and "GRANT SELECT" not in ups


def test_the_judge_leaves_out_the_version_tables_and_their_sequences(cli, make_db, tmp_path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "000001_t.up.sql").write_text("CREATE TABLE t (a int);\n")
    (migrations / "000001_t.down.sql").write_text("DROP TABLE t;\n")
    assert cli("hash", "--dir", migrations).exit_code == 0
    applied, plain = make_db(), make_db("CREATE TABLE t (a int);")
    assert cli("apply", "--dir", migrations, "--db", applied).exit_code == 0
    assert catalog.differences(catalog.snapshot(plain, owners=True), catalog.snapshot(applied, owners=True)) == []
