"""What the counts in generate, apply and force say (issue #14), through the real CLI.

- generate --online: the count is of the statements in the files written
  (one change becomes several statements over several files), not of the
  changes planned;
- apply going down says "rolled back", as golang-migrate does, not "applied";
- force with its arguments swapped (``force cortex 3``) says the right order.
"""

from __future__ import annotations

import re

import pglast
import psycopg


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_generate_online_counts_the_statements_it_wrote(cli, tmp_path):
    directory = tmp_path / "m"
    first = _write(tmp_path / "one.sql", "CREATE TABLE t (id int PRIMARY KEY, a int, b text);\n")
    assert cli("generate", "init", "--desired", first, "--dir", directory, "--create-dir").exit_code == 0
    second = _write(tmp_path / "two.sql", "CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b text);\n"
                                          "CREATE INDEX t_a ON t (a);\nCREATE INDEX t_b ON t (b);\n")
    done = cli("generate", "more", "--desired", second, "--dir", directory, "--online")
    assert done.exit_code == 0, done.err
    ups = sorted(directory.glob("*_more*.up.sql"))
    assert len(ups) > 1  # the online form takes several files
    statements = sum(len(pglast.split(path.read_text())) for path in ups)
    found = re.search(r"(\d+) statement\(s\) up in (\d+) migration\(s\)", done.out)
    assert found, done.out
    assert (int(found[1]), int(found[2])) == (statements, len(ups))


def _three(tmp_path):
    directory = tmp_path / "m"
    for version in (1, 2, 3):
        _write(directory / f"00000{version}_t{version}.up.sql", f"CREATE TABLE t{version} (id int);\n")
        _write(directory / f"00000{version}_t{version}.down.sql", f"DROP TABLE t{version};\n")
    return directory


def test_apply_down_says_rolled_back(cli, db, tmp_path):
    directory = _three(tmp_path)
    up = cli("apply", "--dir", directory, "--db", db)
    assert up.exit_code == 0, up.err
    assert "3 migration(s) applied" in up.out and "rolled back" not in up.out
    down = cli("apply", "--dir", directory, "--db", db, "--down", "2", "--allow-destructive")
    assert down.exit_code == 0, down.out + down.err
    assert "2 migration(s) rolled back" in down.out and "applied." not in down.out
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchone() == (1,)


def test_force_with_swapped_arguments_names_the_right_order_and_forces_nothing(cli, db, tmp_path):
    directory = _three(tmp_path)
    assert cli("apply", "--dir", directory, "--db", db, "--to", "2").exit_code == 0
    done = cli("force", "cortex", "3", "--dir", directory, "--db", db)
    assert done.exit_code == 1
    assert "version first, then the service" in done.err and "schemadiff force 3 cortex" in done.err
    assert "Traceback" not in done.err
    bad = cli("force", "three", "--dir", directory, "--db", db)
    assert bad.exit_code == 1 and "whole number" in bad.err
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchone() == (2, False)
    assert cli("force", "-1", "--dir", directory, "--db", db).exit_code == 0  # golang-migrate's -1 still works
