"""A hinted rename of a table or column with a serial column keeps its sequence (issue #14).

PostgreSQL never renames a serial's sequence (``tags_id_seq`` stays after
``ALTER TABLE tags RENAME TO labels``), while a database built from the
desired file has ``labels_id_seq``: the plan dropped the old sequence and
created a new one starting at 1 (refused as deleting data, or with
--allow-destructive handing out ids already used). The sequence is renamed
and keeps its position, as for identity columns. Through the real CLI.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

BEFORE = "CREATE TABLE tags (id serial PRIMARY KEY, name text);\nCREATE TABLE notes (n bigserial PRIMARY KEY);\n"
TABLE_RENAMED = (
    "CREATE TABLE labels ( -- schemadiff:renamed-from tags\n    id serial PRIMARY KEY,\n    name text\n);\n"
    "CREATE TABLE notes (n bigserial PRIMARY KEY);\n"
)
COLUMN_RENAMED = (
    "CREATE TABLE tags (id serial PRIMARY KEY, name text);\n"
    "CREATE TABLE notes (\n    note_id bigserial PRIMARY KEY -- schemadiff:renamed-from n\n);\n"
)


def _write(path, text):
    path.write_text(text)
    return path


def _live_with_rows(cli, db, tmp_path):
    directory = tmp_path / "m"
    first = _write(tmp_path / "before.sql", BEFORE)
    assert cli("generate", "init", "--desired", first, "--dir", directory, "--create-dir").exit_code == 0
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO tags (name) SELECT 'x' FROM generate_series(1, 3)")
        conn.execute("INSERT INTO notes DEFAULT VALUES")
        conn.execute("INSERT INTO notes DEFAULT VALUES")
    return directory


def _sequences(db):
    with psycopg.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S'")}


def test_a_hinted_table_rename_renames_its_serial_sequence_and_keeps_the_position(cli, db, tmp_path):
    directory = _live_with_rows(cli, db, tmp_path)
    desired = _write(tmp_path / "renamed.sql", TABLE_RENAMED)
    done = cli("generate", "rename", "--desired", desired, "--dir", directory)  # no --allow-destructive
    assert done.exit_code == 0, done.out + done.err
    up = next(directory.glob("*_rename.up.sql")).read_text()
    assert "ALTER SEQUENCE public.tags_id_seq RENAME TO labels_id_seq;" in up
    assert "DROP SEQUENCE" not in up and "CREATE SEQUENCE" not in up
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    assert "labels_id_seq" in _sequences(db) and "tags_id_seq" not in _sequences(db)
    with psycopg.connect(db) as conn:
        assert conn.execute("INSERT INTO labels (name) VALUES ('y') RETURNING id").fetchone() == (4,)
    for where in (("--dir", directory), ("--db", db)):
        again = cli("plan", "--desired", desired, *where)
        assert again.exit_code == 0, (where, again.out + again.err)
    # And back down: the sequence takes its old name again, still counting.
    assert cli("apply", "--dir", directory, "--db", db, "--down", "1").exit_code == 0
    with psycopg.connect(db) as conn:
        assert conn.execute("INSERT INTO tags (name) VALUES ('z') RETURNING id").fetchone() == (5,)


def test_a_hinted_column_rename_of_a_bigserial_renames_its_sequence(cli, db, tmp_path):
    directory = _live_with_rows(cli, db, tmp_path)
    desired = _write(tmp_path / "renamed.sql", COLUMN_RENAMED)
    done = cli("generate", "rename", "--desired", desired, "--dir", directory)
    assert done.exit_code == 0, done.out + done.err
    up = next(directory.glob("*_rename.up.sql")).read_text()
    assert "RENAME COLUMN n TO note_id" in up and "RENAME TO notes_note_id_seq" in up
    assert "DROP SEQUENCE" not in up
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    with psycopg.connect(db) as conn:
        assert conn.execute("INSERT INTO notes DEFAULT VALUES RETURNING note_id").fetchone() == (3,)


@pytest.fixture
def live(shadow):
    """A database not named like schemadiff's temporary ones (``make_db``'s are), which rename hints
    would take for a shadow copy to write to."""
    name = f"live_serial_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield shadow.admin_url_for(name)
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_plan_against_a_live_database_renames_the_sequence_too(cli, live, tmp_path):
    db = live
    _live_with_rows(cli, db, tmp_path)
    done = cli("plan", "--desired", _write(tmp_path / "renamed.sql", TABLE_RENAMED), "--db", db, "--format", "sql")
    assert done.exit_code == 2, done.out + done.err
    assert "ALTER SEQUENCE public.tags_id_seq RENAME TO labels_id_seq;" in done.out
    assert "DROP SEQUENCE" not in done.out and "deletes-data" not in done.err


def test_without_a_hint_a_new_table_gets_a_new_sequence(cli, db, tmp_path):
    # Another table is another table: its sequence is not the old one's.
    _live_with_rows(cli, db, tmp_path)
    desired = _write(tmp_path / "other.sql", TABLE_RENAMED.replace(" -- schemadiff:renamed-from tags", ""))
    done = cli("plan", "--desired", desired, "--db", db, "--format", "sql")
    assert done.exit_code == 2
    assert "RENAME" not in done.out and "DROP TABLE public.tags;" in done.out
    assert "CREATE SEQUENCE public.labels_id_seq" in done.out
