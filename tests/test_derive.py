"""derive: archive.sql split into each service's loadable desired state."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from orm_expectations import CONSTRAINTS, EXTENSIONS_ADDED, INDEXES, ORM_EXPECTATIONS, TABLES_ADDED
from schemadiff.config import Service, load_config
from schemadiff.derive import check, derive, derive_files, derive_text, write
from schemadiff.errors import ConfigError, SQLSyntaxError

ROOT = Path(__file__).resolve().parent.parent
ORM = ROOT / "tests" / "fixtures" / "orm"
CROSS_NOTE = "a cross-service foreign key cannot span two databases."


def services(tmp: Path, **tables: list[str]) -> dict[str, Service]:
    return {
        name: Service(name, owned, tmp / f"{name}.sql", tmp / "migrations" / name)
        for name, owned in tables.items()
    }


def rows(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params or None).fetchall()


def tables_of(url: str) -> set[str]:
    return {r[0] for r in rows(url, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")}


def columns_of(url: str, table: str) -> list[str]:
    return [r[0] for r in rows(
        url, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
        " ORDER BY ordinal_position", table)]


def constraints_of(url: str, table: str) -> dict[str, str | None]:
    """Constraint name -> referenced table (None unless a foreign key)."""
    return dict(rows(
        url, "SELECT conname, CASE WHEN confrelid <> 0 THEN confrelid::regclass::text END FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype <> 'n'", table))


def plain_indexes_of(url: str, table: str) -> set[str]:
    """Indexes that back no constraint."""
    return {r[0] for r in rows(
        url, "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = i.oid)", table)}


# -- the project's own archive ----------------------------------------------


def test_committed_service_files_are_what_derive_produces() -> None:
    results = derive_files(load_config(ROOT))
    assert {r.service for r in results} == {"cortex", "postal"}
    stale = [str(r.path) for r in results if r.changed]
    assert stale == [], "run `schemadiff derive` and commit schema/*.sql"


def test_each_derived_file_loads_alone_with_exactly_its_tables(make_db: Callable[..., str]) -> None:
    config = load_config(ROOT)
    for result in derive_files(config):
        url = make_db(result.text)
        assert tables_of(url) == set(config.service(result.service).tables)
        assert rows(url, "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]


def test_cross_service_foreign_keys_leave_their_columns_and_a_note(make_db: Callable[..., str]) -> None:
    results = {r.service: r for r in derive_files(load_config(ROOT))}
    postal = results["postal"].text
    url = make_db(postal)
    # The columns stay, their foreign keys to cortex go, each with a note.
    assert {"tenant_id", "author_id", "category_id"} <= set(columns_of(url, "posts"))
    posts = constraints_of(url, "posts")
    assert not {"posts_tenant_id_fkey", "posts_author_id_fkey", "posts_category_id_fkey"} & set(posts)
    assert "editor_id" in columns_of(url, "post_versions")
    assert "post_versions_editor_id_fkey" not in constraints_of(url, "post_versions")
    for note in (
        f"-- posts.tenant_id referenced cortex tenants(id); {CROSS_NOTE}",
        f"-- posts.author_id referenced cortex users(id); {CROSS_NOTE}",
        f"-- posts.category_id referenced cortex categories(id); {CROSS_NOTE}",
        f"-- post_versions.editor_id referenced cortex users(id); {CROSS_NOTE}",
        f"-- tags.tenant_id referenced cortex tenants(id); {CROSS_NOTE}",
    ):
        assert note + "\n" in postal
    # Same-service foreign keys are kept, on both sides.
    assert constraints_of(url, "post_versions")["post_versions_post_id_fkey"] == "posts"
    assert constraints_of(url, "post_tags")["post_tags_tag_id_fkey"] == "tags"
    cortex = make_db(results["cortex"].text)
    assert constraints_of(cortex, "users")["users_tenant_id_fkey"] == "tenants"
    assert constraints_of(cortex, "categories")["categories_parent_id_fkey"] == "categories"
    assert CROSS_NOTE not in results["cortex"].text


def test_header_names_the_archive_and_its_hash_and_output_is_deterministic(tmp_path: Path) -> None:
    import hashlib

    archive = ROOT / "schema" / "archive.sql"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    first = derive(archive, load_config(ROOT).services, label="schema/archive.sql")
    # Same archive elsewhere on disk, same label: byte for byte the same output.
    copy = tmp_path / "elsewhere" / "archive.sql"
    copy.parent.mkdir()
    shutil.copy(archive, copy)
    second = derive(copy, load_config(ROOT).services, label="schema/archive.sql")
    assert list(first.values()) == list(second.values())
    for path, text in first.items():
        header = text.splitlines()[0]
        assert header == f"-- Generated by schemadiff derive from schema/archive.sql (sha256 {digest}); do not edit."
        assert path.stem in text.splitlines()[1]
    # Any change to the archive changes the hash, so a stale file is visible.
    copy.write_text(archive.read_text() + "\n-- a comment\n")
    third = derive(copy, load_config(ROOT).services, label="schema/archive.sql")
    assert all(digest not in text for text in third.values())


# -- the ORM-era fixtures ---------------------------------------------------


@pytest.mark.parametrize("service", ["cortex", "postal"])
def test_orm_fixture_differs_from_desired_state_exactly_as_documented(make_db: Callable[..., str], service: str) -> None:
    old = make_db((ORM / f"{service}.sql").read_text())
    new = make_db((ROOT / "schema" / f"{service}.sql").read_text())
    assert tables_of(new) - tables_of(old) == set(TABLES_ADDED[service])
    assert tables_of(old) <= tables_of(new)
    assert rows(old, "SELECT count(*) FROM pg_extension WHERE extname = ANY(%s)", EXTENSIONS_ADDED[service]) == [(0,)]
    for table in tables_of(old):
        before, after = columns_of(old, table), columns_of(new, table)
        expected = ORM_EXPECTATIONS[service].get(table, {"removed": [], "added": []})
        assert [c for c in before if c not in after] == expected["removed"], table
        assert [c for c in after if c not in before] == expected["added"], table
        for what, expectations, reader in (
            ("constraints", CONSTRAINTS, constraints_of),
            ("indexes", INDEXES, plain_indexes_of),
        ):
            expected = expectations[service].get(table, {"removed": [], "added": []})
            before_names, after_names = set(reader(old, table)), set(reader(new, table))
            assert before_names - after_names == set(expected["removed"]), (table, what)
            assert after_names - before_names == set(expected["added"]), (table, what)
        # Shared columns have the same types, so a plan shows only the documented changes.
        types = "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attidentity FROM pg_attribute" \
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
        shared = set(before) & set(after)
        assert {r for r in rows(old, types, table) if r[0] in shared} == {r for r in rows(new, types, table) if r[0] in shared}


@pytest.mark.parametrize(("service", "table"), [("cortex", "users"), ("cortex", "categories"), ("postal", "posts"), ("postal", "post_versions")])
def test_orm_fixtures_hold_rows_to_lose(make_db: Callable[..., str], service: str, table: str) -> None:
    url = make_db((ORM / f"{service}.sql").read_text())
    assert rows(url, f"SELECT count(*) FROM {table}")[0][0] >= 3


# -- assignment rules, on archives written for the test ----------------------


SHARED_ARCHIVE = """
    SET check_function_bodies = on;
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE SCHEMA billing;
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
    CREATE TYPE money_pair AS (amount positive_int, currency text);
    CREATE FUNCTION slugify(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(t) $$;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.seen := now(); RETURN NEW; END $$;
    CREATE FUNCTION unused_helper() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
    CREATE SEQUENCE order_numbers;
    COMMENT ON TYPE mood IS 'how a member feels';

    CREATE TABLE members (
        id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        feeling mood NOT NULL DEFAULT 'happy',
        handle text NOT NULL DEFAULT slugify('New Member'),
        seen timestamptz
    );
    CREATE TRIGGER members_touch BEFORE UPDATE ON members FOR EACH ROW EXECUTE FUNCTION touch();

    CREATE TABLE billing.orders (
        id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        number bigint NOT NULL DEFAULT nextval('order_numbers'),
        member_id int NOT NULL,
        total money_pair
    );
    CREATE SEQUENCE billing.order_lines_seq;
    CREATE TABLE billing.order_lines (
        id int NOT NULL DEFAULT nextval('billing.order_lines_seq') PRIMARY KEY,
        order_id int NOT NULL REFERENCES billing.orders (id),
        member_id int REFERENCES members
    );
    ALTER SEQUENCE billing.order_lines_seq OWNED BY billing.order_lines.id;
"""


def load(make_db: Callable[..., str], texts: dict[str, str]) -> dict[str, str]:
    return {name: make_db(text) for name, text in texts.items()}


def present(url: str) -> dict[str, set[str]]:
    return {
        "types": {r[0] for r in rows(
            url, "SELECT typname FROM pg_type t WHERE typnamespace = 'public'::regnamespace AND (typtype IN ('e', 'd')"
            " OR typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')")},
        "functions": {r[0] for r in rows(url, "SELECT proname FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND NOT EXISTS"
            " (SELECT FROM pg_depend WHERE classid = 'pg_proc'::regclass AND objid = p.oid AND deptype = 'e')")},
        "sequences": {r[0] for r in rows(url, "SELECT relnamespace::regnamespace || '.' || relname FROM pg_class WHERE relkind = 'S' AND relname NOT LIKE '%%id_seq'")},
        "schemas": {r[0] for r in rows(url, "SELECT nspname FROM pg_namespace WHERE nspname = 'billing'")},
        "extensions": {r[0] for r in rows(url, "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")},
    }


def test_shared_definitions_go_where_they_are_used(tmp_path: Path, make_db: Callable[..., str]) -> None:
    archive = textwrap.dedent(SHARED_ARCHIVE)
    texts = derive_text(archive, services(tmp_path, people=["members"], sales=["billing.orders", "billing.order_lines"]))
    dbs = load(make_db, texts)  # each loads alone: everything it uses came with it
    people, sales = present(dbs["people"]), present(dbs["sales"])
    assert people["types"] == {"mood"}
    assert sales["types"] == {"positive_int", "money_pair"}  # the domain comes through the composite type
    # Used functions go with their users (default, trigger); the unused one goes everywhere.
    assert people["functions"] == {"slugify", "touch", "unused_helper"}
    assert sales["functions"] == {"unused_helper"}
    assert sales["sequences"] == {"public.order_numbers", "billing.order_lines_seq"}
    assert people["sequences"] == set()
    assert sales["schemas"] == {"billing"} and people["schemas"] == set()
    # Nothing references an extension by name: it goes everywhere.
    assert people["extensions"] == sales["extensions"] == {"vector"}
    # A comment goes with its object; a SET with every service.
    assert "COMMENT ON TYPE mood" in texts["people"] and "COMMENT ON TYPE mood" not in texts["sales"]
    assert all("SET check_function_bodies" in text for text in texts.values())
    # order_lines.member_id pointed at another service: column kept, key gone, noted.
    assert f"-- billing.order_lines.member_id referenced people members's primary key; {CROSS_NOTE}" in texts["sales"]
    assert "member_id" in columns_of_schema(dbs["sales"], "billing", "order_lines")
    assert rows(dbs["sales"], "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == [(1,)]  # order_id's


def columns_of_schema(url: str, schema: str, table: str) -> list[str]:
    return [r[0] for r in rows(
        url, "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s", schema, table)]


ALTER_ARCHIVE = """
    CREATE TABLE accounts (id int PRIMARY KEY);
    CREATE TABLE invoices (id int PRIMARY KEY, account_id int NOT NULL, parent_id int, note text);
    ALTER TABLE invoices ADD CONSTRAINT invoices_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
    ALTER TABLE invoices
        ADD CONSTRAINT invoices_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES invoices (id),
        ADD CONSTRAINT invoices_pair_fkey FOREIGN KEY (account_id, parent_id) REFERENCES accounts (id, id),
        ALTER COLUMN note SET DEFAULT 'none';
    ALTER TABLE invoices VALIDATE CONSTRAINT invoices_account_id_fkey;
    COMMENT ON CONSTRAINT invoices_account_id_fkey ON invoices IS 'every invoice has an account';
    COMMENT ON CONSTRAINT invoices_parent_id_fkey ON invoices IS 'credit notes point at their invoice';
    CREATE INDEX invoices_account_id_idx ON invoices (account_id);
    COMMENT ON INDEX invoices_account_id_idx IS 'for the account page';
    CREATE TABLE accounts_audit (account_id int REFERENCES accounts ON DELETE CASCADE);
    CREATE TABLE payments (id int, account_id int REFERENCES accounts, invoice_id int REFERENCES invoices);
    COMMENT ON CONSTRAINT payments_account_id_fkey ON payments IS 'default name, still cross-service';
    COMMENT ON CONSTRAINT payments_invoice_id_fkey ON payments IS 'default name, same service';
"""


def test_cross_service_keys_added_by_alter_table_are_dropped_with_what_names_them(
    tmp_path: Path, make_db: Callable[..., str]
) -> None:
    texts = derive_text(
        textwrap.dedent(ALTER_ARCHIVE),
        services(tmp_path, crm=["accounts", "accounts_audit"], ledger=["invoices", "payments"]),
    )
    ledger = make_db(texts["ledger"])
    make_db(texts["crm"])
    assert constraints_of(ledger, "invoices") == {"invoices_pkey": None, "invoices_parent_id_fkey": "invoices"}
    assert rows(ledger, "SELECT column_default FROM information_schema.columns WHERE table_name = 'invoices'"
                " AND column_name = 'note'") == [("'none'::text",)]
    assert rows(ledger, "SELECT obj_description('invoices_account_id_idx'::regclass)") == [("for the account page",)]
    assert f"-- invoices.account_id referenced crm accounts(id); {CROSS_NOTE}" in texts["ledger"]
    assert f"-- invoices(account_id, parent_id) referenced crm accounts(id, id); {CROSS_NOTE}" in texts["ledger"]
    assert "every invoice has an account" not in texts["ledger"]
    assert "credit notes point at their invoice" in texts["ledger"]
    assert "VALIDATE CONSTRAINT" not in texts["ledger"]
    assert "default name, still cross-service" not in texts["ledger"]
    assert rows(ledger, "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint"
                " WHERE conname = 'payments_invoice_id_fkey'") == [("default name, same service",)]
    # A same-service key in the other direction survives.
    assert constraints_of(make_db(texts["crm"]), "accounts_audit") == {"accounts_audit_account_id_fkey": "accounts"}


def test_a_table_no_service_lists_is_refused(tmp_path: Path) -> None:
    archive = "CREATE TABLE a (id int);\nCREATE TABLE forgotten (id int);\nCREATE TABLE lost (id int);"
    with pytest.raises(ConfigError, match=r"tables forgotten, lost belong to no service") as caught:
        derive_text(archive, services(tmp_path, one=["a"]))
    assert "refuses to drop a table silently" in caught.value.hint


def test_a_listed_table_missing_from_the_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no CREATE TABLE for ghosts \(service two\)"):
        derive_text("CREATE TABLE a (id int);", services(tmp_path, one=["a"], two=["ghosts"]))


@pytest.mark.parametrize("statement", [
    "COMMENT ON TABLE old_name IS 'left after a rename';",
    "COMMENT ON COLUMN old_name.id IS 'left after a rename';",
    "CREATE INDEX old_index ON old_name (id);",
    "ALTER TABLE old_name ADD COLUMN note text;",
    "CREATE TRIGGER old_trigger BEFORE INSERT ON old_name FOR EACH ROW EXECUTE FUNCTION f();",
])
def test_a_statement_about_a_relation_the_archive_does_not_create_is_refused(tmp_path: Path, statement: str) -> None:
    # It would reach every service's file (one without tables too) and fail there as "relation does not exist".
    archive = f"CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n{statement}"
    with pytest.raises(ConfigError, match=r"archive\.sql:3:1: this statement is about old_\w+, which no statement"):
        derive_text(archive, services(tmp_path, one=["a"], two=["b"], three=[]))
    # About what the archive creates, it goes where that lives.
    fine = statement.replace("old_name", "a")
    archive = f"CREATE TABLE a (id serial PRIMARY KEY);\nCREATE TABLE b (id int);\n{fine}\n"
    # Implicit indexes and sequences are named by PostgreSQL, not by a statement: never refused.
    archive += "COMMENT ON INDEX a_pkey IS 'implicit';\nALTER SEQUENCE a_id_seq RESTART;"
    derived = derive_text(archive, services(tmp_path, one=["a"], two=["b"], three=[]))
    assert fine.split()[0] in derived["one"] and fine not in derived["two"] + derived["three"]


def test_a_statement_over_two_services_tables_is_refused(tmp_path: Path) -> None:
    archive = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n\nCREATE VIEW ab AS SELECT * FROM a JOIN b USING (id);"
    with pytest.raises(ConfigError, match=r"archive\.sql:4:1: this statement uses tables of services one and two"):
        derive_text(archive, services(tmp_path, one=["a"], two=["b"]))


@pytest.mark.parametrize(
    "child",
    [
        "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
        "CREATE TABLE events_2026 () INHERITS (events);",
        "CREATE TABLE events_2026 (LIKE events INCLUDING ALL);",
    ],
)
def test_a_child_table_in_another_service_than_its_parent_is_refused(tmp_path: Path, child: str) -> None:
    archive = f"CREATE TABLE events (at date NOT NULL) PARTITION BY RANGE (at);\n{child}"
    if "PARTITION OF" not in child:
        archive = f"CREATE TABLE events (at date NOT NULL);\n{child}"
    with pytest.raises(ConfigError, match=r":2:1: table events_2026 \(service two\) is built on events \(service one\)"):
        derive_text(archive, services(tmp_path, one=["events"], two=["events_2026"]))
    # In the same service it is fine.
    assert "events_2026" in derive_text(archive, services(tmp_path, one=["events", "events_2026"]))["one"]


def test_views_and_owned_sequences_go_with_their_table_and_so_do_statements_about_them(
    tmp_path: Path, make_db: Callable[..., str]
) -> None:
    archive = """
        CREATE TABLE a (id int);
        CREATE TABLE b (id int);
        CREATE VIEW a_ids AS SELECT id FROM a;
        COMMENT ON VIEW a_ids IS 'ids of a';
        CREATE MATERIALIZED VIEW a_count AS SELECT count(*) AS n FROM a;
        CREATE INDEX a_count_n_idx ON a_count (n);
        COMMENT ON INDEX a_count_n_idx IS 'n of a';
        CREATE SEQUENCE b_numbers OWNED BY b.id;
        COMMENT ON SEQUENCE b_numbers IS 'numbers for b';
    """
    texts = derive_text(textwrap.dedent(archive), services(tmp_path, one=["a"], two=["b"]))
    one, two = make_db(texts["one"]), make_db(texts["two"])
    assert rows(one, "SELECT obj_description('a_ids'::regclass)") == [("ids of a",)]
    assert rows(one, "SELECT obj_description('a_count_n_idx'::regclass)") == [("n of a",)]
    assert rows(two, "SELECT obj_description('b_numbers'::regclass)") == [("numbers for b",)]
    assert "a_ids" not in texts["two"] and "a_count" not in texts["two"]
    assert "b_numbers" not in texts["one"]


def test_broken_archive_is_a_syntax_error_with_its_position(tmp_path: Path) -> None:
    archive = tmp_path / "archive.sql"
    archive.write_text("CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,, name text);\n")
    with pytest.raises(SQLSyntaxError) as caught:
        derive(archive, services(tmp_path, one=["a", "b"]))
    assert caught.value.position.line == 3
    assert caught.value.position.column == 24
    assert "CREATE TABLE b" in caught.value.statement


def test_missing_archive_is_an_input_error(tmp_path: Path) -> None:
    from schemadiff.errors import InputFileError

    with pytest.raises(InputFileError, match="archive not found"):
        derive(tmp_path / "nope.sql", services(tmp_path, one=["a"]))


def test_check_lists_stale_and_missing_files_and_write_fixes_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.schemadiff]
        archive = "model.sql"
        [tool.schemadiff.services.one]
        tables = ["a"]
        desired = "out/one.sql"
        migrations = "m/one"
        [tool.schemadiff.services.two]
        tables = ["b"]
        desired = "out/two.sql"
        migrations = "m/two"
    """))
    (tmp_path / "model.sql").write_text("CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (a_id int REFERENCES a);\n")
    config = load_config(tmp_path)
    assert sorted(p.name for p in check(config.archive, config.services)) == ["one.sql", "two.sql"]
    written = write(derive_files(config))
    assert sorted(p.name for p in written) == ["one.sql", "two.sql"]
    assert check(config.archive, config.services) == []
    assert not [r for r in derive_files(config) if r.changed]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.sql", "two.sql"]  # no temp files left
    # The header names the archive relative to the project, wherever it is checked out.
    assert "derive from model.sql (sha256 " in (tmp_path / "out" / "one.sql").read_text()

    derived_two = (tmp_path / "out" / "two.sql").read_text()
    (tmp_path / "out" / "two.sql").write_text(derived_two + "-- edited by hand, header kept\n")
    assert [p.name for p in check(config.archive, config.services)] == ["two.sql"]
    (tmp_path / "model.sql").write_text("CREATE TABLE a (id int PRIMARY KEY, name text);\nCREATE TABLE b (a_id int);\n")
    assert sorted(r.path.name for r in derive_files(config) if r.changed) == ["one.sql", "two.sql"]
    # A file without derive's header was not written by derive (a dump, a hand-written schema): replacing it
    # would lose it, so derive refuses and writes nothing.
    (tmp_path / "out" / "two.sql").write_text("-- edited by hand\nCREATE TABLE b (a_id int, note text);\n")
    with pytest.raises(ConfigError, match="which derive did not write"):
        derive_files(config)
    assert "note text" in (tmp_path / "out" / "two.sql").read_text()


def test_derive_files_without_an_archive_says_how_to_configure_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no archive is configured \(no pyproject.toml in .* or above\)") as caught:
        derive_files(load_config(tmp_path))
    assert 'archive = "schema/archive.sql"' in caught.value.hint
    (tmp_path / "pyproject.toml").write_text('[tool.schemadiff.services.a]\ndesired = "a.sql"\nmigrations = "m"\n')
    with pytest.raises(ConfigError, match=f"no archive is configured in {tmp_path.resolve()}/pyproject.toml"):
        derive_files(load_config(tmp_path))


def test_no_services_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no services are configured"):
        derive_text("CREATE TABLE a (id int);", {})


def test_write_replaces_nothing_when_one_file_cannot_be_written(tmp_path: Path) -> None:
    import os

    from schemadiff.derive import DeriveResult
    from schemadiff.errors import InputFileError

    if os.geteuid() == 0:  # root writes anywhere; a file where a directory should be blocks everyone
        blocked = tmp_path / "blocked"
        blocked.write_text("not a directory")
        second = blocked / "two.sql"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        second = tmp_path / "ro" / "two.sql"
    first = tmp_path / "one.sql"
    first.write_text("old\n")
    results = [DeriveResult("one", first, "new\n", True), DeriveResult("two", second, "new\n", True)]
    with pytest.raises(InputFileError, match="cannot write") as caught:
        write(results)
    assert "nothing was replaced" in caught.value.hint
    assert first.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left
