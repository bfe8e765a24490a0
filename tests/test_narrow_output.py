"""plan's text output at 80 columns never splits an identifier (issue #14).

rich folds a word longer than its column: a 60-character table name came
out as three fragments in the summary table, which read as other names and
cannot be copied. Names must come out whole, in a pipe and on a terminal.
"""

from __future__ import annotations

import io
import re

TABLE = "orders_archive_by_customer_region_and_fulfilment_center_2024"  # 60 characters
INDEX = "orders_archive_by_customer_region_created_at_idx"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _desired(tmp_path):
    assert len(TABLE) == 60
    path = tmp_path / "desired.sql"
    path.write_text(
        f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, customer_id bigint NOT NULL, created_at timestamptz);\n"
        f"CREATE INDEX {INDEX} ON {TABLE} (customer_id, created_at);\n"
        f"CREATE TABLE small (id int PRIMARY KEY);\n"
    )
    return path


def _names_whole(text: str) -> None:
    lines = text.splitlines()
    for name in (f"public.{TABLE}", f"{TABLE[:58]}_pkey", INDEX, "public.small"):
        assert any(name in line for line in lines), (name, text)
    # No line holds a piece of the long name that is not the whole name.
    for line in lines:
        for piece in re.findall(r"orders_archive\w*", line):
            assert piece in (TABLE, TABLE[:58] + "_pkey", INDEX), (piece, text)


def test_plan_summary_keeps_long_names_whole_at_80_columns(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    done = cli("plan", "--desired", _desired(tmp_path))
    assert done.exit_code == 2, done.err
    summary = done.out.split("CREATE TABLE", 1)[0]
    _names_whole(summary)
    # What fits stays within 80 columns: only a name longer than a line may run past it.
    assert all(len(line) <= 80 or TABLE in line for line in summary.splitlines()[1:])


def test_plan_on_an_80_column_terminal_keeps_names_whole(tmp_path, monkeypatch):
    from schemadiff.cli import run

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = _Terminal(), io.StringIO()
    assert run(["plan", "--desired", str(_desired(tmp_path))], out=out, err=err) == 2, err.getvalue()
    _names_whole(re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()))


def test_short_names_still_get_the_table(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "small.sql"
    path.write_text("CREATE TABLE small (id int PRIMARY KEY);\nCREATE INDEX small_id ON small (id);\n")
    done = cli("plan", "--desired", path)
    assert done.exit_code == 2
    assert "┃Table" in done.out and "public.small" in done.out
    assert max(len(line) for line in done.out.splitlines() if line.startswith(("┃", "│", "┏", "└"))) <= 80


def test_the_summary_lists_tables_by_name_whatever_the_statement_order(cli, tmp_path):
    # Statement order follows dependencies; a reviewer looks a table up by name.
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "000001_a.up.sql").write_text(
        "CREATE TABLE zeta (id int PRIMARY KEY);\nCREATE TABLE mid (id int PRIMARY KEY);\n"
        "CREATE TABLE alpha (id int PRIMARY KEY, z int REFERENCES zeta);\n")
    desired = tmp_path / "d.sql"
    desired.write_text("CREATE TABLE zeta (id int PRIMARY KEY, z int);\nCREATE TABLE mid (id int PRIMARY KEY, m int);\n"
                       "CREATE TABLE alpha (id int PRIMARY KEY, z int REFERENCES zeta, a int);\n"
                       "CREATE TABLE beta (id int PRIMARY KEY);\n")
    done = cli("plan", "--desired", desired, "--dir", directory, "--format", "json")
    assert done.exit_code == 2, done.err
    import json

    tables = [row["table"] for row in json.loads(done.out)["results"][0]["summary"]]
    assert tables == ["public.alpha", "public.beta", "public.mid", "public.zeta"]


def test_a_hinted_index_rename_is_summarised_under_its_table(cli, tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "000001_a.up.sql").write_text(
        "CREATE TABLE items (id int PRIMARY KEY, note text);\nCREATE INDEX items_old_note ON items (note);\n")
    desired = tmp_path / "d.sql"
    desired.write_text("CREATE TABLE items (id int PRIMARY KEY, note text);\n"
                       "CREATE INDEX items_note ON items (note); -- schemadiff:renamed-from items_old_note\n")
    done = cli("plan", "--desired", desired, "--dir", directory, "--format", "json")
    assert done.exit_code == 2, done.err
    import json

    summary = json.loads(done.out)["results"][0]["summary"]
    assert summary == [{"table": "public.items", "added": [], "removed": [], "changed": ["index items_note"]}]
