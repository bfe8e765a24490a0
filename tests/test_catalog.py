"""The independent catalog comparison: equal schemas compare equal whatever
order they were built in, and any single change is reported readably."""

from __future__ import annotations

import pytest

from schemadiff.shadow import catalog

# One schema touching every category, as separate statements so that the
# tests can load them in another order.
SCHEMA_STATEMENTS = [
    "CREATE EXTENSION vector",
    "CREATE SCHEMA library",
    "CREATE TYPE library.shelf_state AS ENUM ('open', 'closed', 'archived')",
    "CREATE DOMAIN library.isbn AS text NOT NULL DEFAULT '000' CHECK (length(VALUE) IN (3, 13))",
    "CREATE TYPE library.dimensions AS (width_mm integer, height_mm integer)",
    "CREATE SEQUENCE library.ticket_numbers AS integer START 100 INCREMENT 5 CACHE 10",
    """CREATE TABLE library.books (
        book_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        isbn library.isbn,
        title varchar(200) NOT NULL DEFAULT 'untitled',
        state library.shelf_state NOT NULL DEFAULT 'open',
        size library.dimensions,
        title_length integer GENERATED ALWAYS AS (length(title)) STORED,
        summary_embedding vector(8),
        UNIQUE (isbn)
    )""",
    """CREATE TABLE library.loans (
        loan_id serial PRIMARY KEY,
        book_id bigint NOT NULL REFERENCES library.books (book_id) ON DELETE CASCADE,
        ticket integer DEFAULT nextval('library.ticket_numbers'),
        borrowed_on date NOT NULL,
        returned_on date,
        CONSTRAINT loans_dates CHECK (returned_on IS NULL OR returned_on >= borrowed_on)
    )""",
    "CREATE INDEX loans_open_idx ON library.loans (book_id) WHERE returned_on IS NULL",
    "CREATE INDEX books_embedding_idx ON library.books USING hnsw (summary_embedding vector_cosine_ops) WITH (m = 16)",
    "CREATE INDEX books_lower_title_idx ON library.books (lower(title))",
    "CREATE VIEW library.open_loans AS SELECT loan_id, book_id FROM library.loans WHERE returned_on IS NULL",
    "CREATE MATERIALIZED VIEW library.loan_counts AS SELECT book_id, count(*) AS n FROM library.loans GROUP BY book_id",
    """CREATE FUNCTION library.touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.returned_on := coalesce(NEW.returned_on, NULL); RETURN NEW; END $$""",
    "CREATE TRIGGER loans_touch BEFORE UPDATE ON library.loans FOR EACH ROW EXECUTE FUNCTION library.touch()",
    "ALTER TABLE library.loans ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY loans_visible ON library.loans FOR SELECT USING (returned_on IS NULL)",
    """CREATE TABLE library.events (happened_on date NOT NULL, detail text) PARTITION BY RANGE (happened_on)""",
    "CREATE TABLE library.events_2024 PARTITION OF library.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "COMMENT ON TABLE library.books IS 'Every book we hold'",
    "COMMENT ON COLUMN library.books.isbn IS 'ISBN-13 or placeholder'",
    "COMMENT ON INDEX library.loans_open_idx IS 'Loans not yet returned'",
    "COMMENT ON TYPE library.shelf_state IS 'Where a book is'",
    "COMMENT ON FUNCTION library.touch() IS 'Trigger body'",
]

# The same schema built in another order: comments and indexes before the
# objects that come later in the first list, tables in reverse order where
# dependencies allow.
REORDERED = [
    "CREATE SCHEMA library",
    "CREATE EXTENSION vector",
    "CREATE TYPE library.dimensions AS (width_mm integer, height_mm integer)",
    "CREATE DOMAIN library.isbn AS text NOT NULL DEFAULT '000' CHECK (length(VALUE) IN (3, 13))",
    "CREATE TYPE library.shelf_state AS ENUM ('open', 'closed', 'archived')",
    "COMMENT ON TYPE library.shelf_state IS 'Where a book is'",
    """CREATE FUNCTION library.touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.returned_on := coalesce(NEW.returned_on, NULL); RETURN NEW; END $$""",
    "COMMENT ON FUNCTION library.touch() IS 'Trigger body'",
    """CREATE TABLE library.events (happened_on date NOT NULL, detail text) PARTITION BY RANGE (happened_on)""",
    "CREATE TABLE library.events_2024 PARTITION OF library.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE SEQUENCE library.ticket_numbers AS integer START 100 INCREMENT 5 CACHE 10",
    """CREATE TABLE library.books (
        book_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        isbn library.isbn,
        title varchar(200) NOT NULL DEFAULT 'untitled',
        state library.shelf_state NOT NULL DEFAULT 'open',
        size library.dimensions,
        title_length integer GENERATED ALWAYS AS (length(title)) STORED,
        summary_embedding vector(8),
        UNIQUE (isbn)
    )""",
    "COMMENT ON COLUMN library.books.isbn IS 'ISBN-13 or placeholder'",
    "CREATE INDEX books_lower_title_idx ON library.books (lower(title))",
    "CREATE INDEX books_embedding_idx ON library.books USING hnsw (summary_embedding vector_cosine_ops) WITH (m = 16)",
    # Columns in another order, constraints added afterwards.
    """CREATE TABLE library.loans (
        returned_on date,
        borrowed_on date NOT NULL,
        ticket integer DEFAULT nextval('library.ticket_numbers'),
        book_id bigint NOT NULL,
        loan_id serial
    )""",
    "ALTER TABLE library.loans ADD PRIMARY KEY (loan_id)",
    "ALTER TABLE library.loans ADD CONSTRAINT loans_dates CHECK (returned_on IS NULL OR returned_on >= borrowed_on)",
    "ALTER TABLE library.loans ADD FOREIGN KEY (book_id) REFERENCES library.books (book_id) ON DELETE CASCADE",
    "CREATE POLICY loans_visible ON library.loans FOR SELECT USING (returned_on IS NULL)",
    "ALTER TABLE library.loans ENABLE ROW LEVEL SECURITY",
    "CREATE TRIGGER loans_touch BEFORE UPDATE ON library.loans FOR EACH ROW EXECUTE FUNCTION library.touch()",
    "CREATE INDEX loans_open_idx ON library.loans (book_id) WHERE returned_on IS NULL",
    "COMMENT ON INDEX library.loans_open_idx IS 'Loans not yet returned'",
    "CREATE MATERIALIZED VIEW library.loan_counts AS SELECT book_id, count(*) AS n FROM library.loans GROUP BY book_id",
    "CREATE VIEW library.open_loans AS SELECT loan_id, book_id FROM library.loans WHERE returned_on IS NULL",
    "COMMENT ON TABLE library.books IS 'Every book we hold'",
]

SCHEMA = ";\n".join(SCHEMA_STATEMENTS) + ";"


def test_same_schema_built_in_another_order_has_no_differences(make_db):
    first = catalog.snapshot(make_db(SCHEMA))
    second = catalog.snapshot(make_db(";\n".join(REORDERED) + ";"))
    assert catalog.differences(first, second) == []
    # The snapshot really saw the schema (an empty one would also compare equal).
    assert "library.books" in first["relations"]
    assert "library.loans.book_id" in first["columns"]
    assert first["types"]["library.shelf_state"]["labels"] == ["open", "closed", "archived"]
    assert "library.books_embedding_idx" in first["indexes"]
    assert "table column library.books.isbn" in first["comments"]


def test_snapshot_is_json_serialisable(make_db):
    import json

    snap = catalog.snapshot(make_db(SCHEMA))
    assert json.loads(json.dumps(snap)) == snap


def test_extension_members_system_objects_and_version_tables_are_left_out(make_db):
    bare = catalog.snapshot(make_db())
    with_extras = catalog.snapshot(
        make_db(
            "CREATE EXTENSION vector;"
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);"
            "CREATE TABLE schemadiff_history (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);"
            "COMMENT ON TABLE schemadiff_history IS 'ours';"
        )
    )
    lines = catalog.differences(bare, with_extras)
    # Only the extension itself (and its own comment) differs: not its types,
    # functions or operators, and nothing of the version tables.
    assert len(lines) == 2, lines
    assert lines[0].startswith("unexpected comment on extension vector: ")
    assert lines[1].startswith('unexpected extension vector: {"schema":"public","version":')
    assert all(category in bare for category in catalog.CATEGORIES)
    assert not any(name.startswith(("pg_catalog.", "information_schema.")) for name in bare["relations"])


# (change applied to the second database, substring the report must contain)
SINGLE_CHANGES = [
    ("ALTER TABLE library.loans ALTER COLUMN borrowed_on TYPE timestamp",
     "column library.loans.borrowed_on differs: type: expected 'date', got 'timestamp without time zone'"),
    ("ALTER TABLE library.books ALTER COLUMN title SET DEFAULT 'none'",
     "column library.books.title differs: default: expected \"'untitled'::character varying\", got \"'none'::character varying\""),
    ("ALTER TABLE library.loans ALTER COLUMN returned_on SET NOT NULL",
     "column library.loans.returned_on differs: not_null: not expected, got 'true'"),
    ("ALTER TABLE library.books ADD COLUMN meta jsonb",
     "unexpected column library.books.meta: jsonb"),
    ("ALTER TABLE library.books DROP COLUMN size",
     "missing column library.books.size: library.dimensions"),
    ("ALTER TABLE library.books ALTER COLUMN book_id SET GENERATED BY DEFAULT",
     "column library.books.book_id differs: identity: expected 'always', got 'by default'"),
    ("ALTER TABLE library.events ALTER COLUMN detail SET DATA TYPE text COLLATE \"C\"",
     "column library.events.detail differs: collation: not expected, got 'pg_catalog.\"C\"'"),
    ("DROP INDEX library.loans_open_idx; CREATE INDEX loans_open_idx ON library.loans (book_id) WHERE returned_on IS NOT NULL",
     "index library.loans_open_idx differs: definition: expected"),
    ("ALTER INDEX library.loans_open_idx RENAME TO loans_unreturned_idx",
     "missing index library.loans_open_idx: CREATE INDEX loans_open_idx ON library.loans USING btree (book_id)"),
    ("DROP INDEX library.books_embedding_idx; CREATE INDEX books_embedding_idx ON library.books"
     " USING hnsw (summary_embedding vector_cosine_ops) WITH (m = 24)",
     "index library.books_embedding_idx differs: definition: expected"),
    ("ALTER TABLE library.loans DROP CONSTRAINT loans_dates;"
     " ALTER TABLE library.loans ADD CONSTRAINT loans_dates CHECK (returned_on > borrowed_on)",
     "constraint library.loans.loans_dates differs: definition: expected 'CHECK (((returned_on IS NULL) OR"),
    ("ALTER TABLE library.loans ALTER CONSTRAINT loans_book_id_fkey DEFERRABLE INITIALLY DEFERRED",
     "constraint library.loans.loans_book_id_fkey differs: deferrable: not expected, got 'true'; definition: expected"),
    ("ALTER TABLE library.loans DROP CONSTRAINT loans_dates;"
     " ALTER TABLE library.loans ADD CONSTRAINT loans_dates CHECK (returned_on IS NULL OR returned_on >= borrowed_on) NOT VALID",
     "not_valid: not expected, got 'true'"),
    ("ALTER TYPE library.shelf_state ADD VALUE 'lost'",
     "enum type library.shelf_state differs: labels: expected '[\"open\",\"closed\",\"archived\"]', got '[\"open\",\"closed\",\"archived\",\"lost\"]'"),
    ("ALTER TYPE library.shelf_state RENAME VALUE 'closed' TO 'shut'",
     "enum type library.shelf_state differs: labels"),
    ("ALTER DOMAIN library.isbn DROP CONSTRAINT isbn_check;"
     " ALTER DOMAIN library.isbn ADD CONSTRAINT isbn_check CHECK (length(VALUE) = 13)",
     "domain type library.isbn differs: checks: expected"),
    ("ALTER DOMAIN library.isbn DROP NOT NULL",
     "domain type library.isbn differs: not_null: expected 'true', not set"),
    ("ALTER DOMAIN library.isbn SET DEFAULT '111'",
     "domain type library.isbn differs: default: expected \"'000'::text\", got \"'111'::text\""),
    ("ALTER TYPE library.dimensions ADD ATTRIBUTE depth_mm integer",
     "composite type library.dimensions differs: attributes"),
    ("COMMENT ON COLUMN library.books.isbn IS 'Only ISBN-13'",
     "comment on table column library.books.isbn differs: expected 'ISBN-13 or placeholder', got 'Only ISBN-13'"),
    ("COMMENT ON TABLE library.books IS NULL",
     "missing comment on table library.books: Every book we hold"),
    ("COMMENT ON CONSTRAINT loans_dates ON library.loans IS 'sane dates'",
     "unexpected comment on table constraint loans_dates on library.loans: sane dates"),
    ("ALTER TABLE library.loans DISABLE TRIGGER loans_touch",
     "trigger library.loans.loans_touch differs: enabled: not expected, got 'disabled'"),
    ("DROP TRIGGER loans_touch ON library.loans;"
     " CREATE TRIGGER loans_touch BEFORE INSERT ON library.loans FOR EACH ROW EXECUTE FUNCTION library.touch()",
     "trigger library.loans.loans_touch differs: definition: expected"),
    ("ALTER POLICY loans_visible ON library.loans USING (returned_on IS NOT NULL)",
     "policy library.loans.loans_visible differs: using: expected '(returned_on IS NULL)', got '(returned_on IS NOT NULL)'"),
    ("DROP POLICY loans_visible ON library.loans",
     "missing policy library.loans.loans_visible"),
    ("ALTER TABLE library.loans FORCE ROW LEVEL SECURITY",
     "table library.loans differs: force_row_security: not expected, got 'true'"),
    ("ALTER TABLE library.loans DISABLE ROW LEVEL SECURITY",
     "table library.loans differs: row_security: expected 'true', not set"),
    ("""CREATE OR REPLACE FUNCTION library.touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RETURN NEW; END $$""",
     "function library.touch() differs: definition: expected"),
    ("ALTER FUNCTION library.touch() SECURITY DEFINER",
     "function library.touch() differs: definition"),
    ("CREATE OR REPLACE VIEW library.open_loans AS SELECT loan_id, book_id FROM library.loans WHERE returned_on IS NOT NULL",
     "view library.open_loans differs: definition: expected"),
    ("DROP MATERIALIZED VIEW library.loan_counts; CREATE MATERIALIZED VIEW library.loan_counts AS"
     " SELECT book_id, count(*) AS n FROM library.loans GROUP BY book_id WITH NO DATA",
     "materialized view library.loan_counts differs: with_no_data: not expected, got 'true'"),
    ("DROP MATERIALIZED VIEW library.loan_counts",
     "missing materialized view library.loan_counts"),
    ("ALTER SEQUENCE library.ticket_numbers INCREMENT 10",
     "sequence library.ticket_numbers differs: increment: expected '5', got '10'"),
    ("ALTER SEQUENCE library.ticket_numbers AS bigint",
     "sequence library.ticket_numbers differs: max: expected '2147483647', got '9223372036854775807'; type: expected 'integer', got 'bigint'"),
    ("ALTER SEQUENCE library.ticket_numbers OWNED BY library.loans.ticket",
     "sequence library.ticket_numbers differs: owned_by: not expected, got 'library.loans.ticket'"),
    ("ALTER SEQUENCE library.loans_loan_id_seq RENAME TO loan_numbers",
     "missing sequence library.loans_loan_id_seq"),
    ("ALTER TABLE library.events_2024 SET UNLOGGED",
     "table library.events_2024 differs: persistence: not expected, got 'unlogged'"),
    ("ALTER TABLE library.books SET (fillfactor = 70)",
     "table library.books differs: options: not expected, got '[\"fillfactor=70\"]'"),
    ("CREATE TABLE library.events_2025 PARTITION OF library.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
     "unexpected table library.events_2025: {\"parents\":[\"library.events\"],\"partition_bound\":\"FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')\"}"),
    ("CREATE SCHEMA archive", "unexpected schema archive"),
    ("ALTER EXTENSION vector SET SCHEMA library",
     "extension vector differs: schema: expected 'public', got 'library'"),
    ("DROP EXTENSION vector CASCADE", "missing extension vector"),
]


@pytest.mark.parametrize(("change", "expected_line"), SINGLE_CHANGES, ids=[c[0][:60] for c in SINGLE_CHANGES])
def test_a_single_change_is_reported_readably(make_db, change, expected_line):
    expected = catalog.snapshot(make_db(SCHEMA))
    actual = catalog.snapshot(make_db(SCHEMA + "\n" + change + ";"))
    lines = catalog.differences(expected, actual)
    assert lines, f"no difference reported for: {change}"
    assert any(expected_line in line for line in lines), "\n".join(lines)
    assert lines == sorted(lines)
    # Reversed roles: the same change is reported from the other side.
    assert catalog.differences(actual, expected)


def test_column_order_is_ignored_but_enum_order_is_not(make_db):
    one = catalog.snapshot(make_db("CREATE TABLE t (a int, b text); CREATE TYPE e AS ENUM ('x', 'y')"))
    other = catalog.snapshot(make_db("CREATE TABLE t (b text, a int); CREATE TYPE e AS ENUM ('y', 'x')"))
    assert catalog.differences(one, other) == [
        "enum type public.e differs: labels: expected '[\"x\",\"y\"]', got '[\"y\",\"x\"]'"
    ]


def test_long_definitions_are_trimmed_around_the_difference():
    body = "SELECT " + ", ".join(f"column_{i}" for i in range(200))
    expected = {"relations": {"public.v": {"kind": "view", "definition": body}}}
    actual = {"relations": {"public.v": {"kind": "view", "definition": body.replace("column_150", "column_XYZ")}}}
    (line,) = catalog.differences(expected, actual)
    assert "column_150" in line and "column_XYZ" in line
    assert "column_1," not in line  # the far-away common start is cut
    assert len(line) < 500
