"""Text from untrusted SQL never reaches a terminal as control characters.

Names, COMMENT ON text, SQL quoted in errors (ours and the server's), file
names and a failed migration's recorded error may carry ESC sequences (CSI
colours and cursor moves, OSC 8 links, OSC 52 clipboard writes), BEL, CR,
C1 controls or bidi overrides. Human output shows them as visible escapes;
JSON escapes them as JSON does; SQL for a pipe stays exact.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import psycopg

from schemadiff.cli import visible

# What a terminal must never receive from untrusted text (tab and newline are fine).
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")

ESC = "\x1b"
HOSTILE = {
    "csi": f"{ESC}[31m{ESC}[2J",  # colour, clear screen
    "osc8": f"{ESC}]8;;https://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\",
    "osc52": f"{ESC}]52;c;ZXZpbA==\x07",  # write the clipboard
    "c1": "\u009b31m\u0085",
    "bidi": "\u202eeliforp\u202c\u2066x\u2069",
    "cr": "shown\rhidden\x08\x7f",
    "zero-width": "users\u200b",
}


def _sql_string(text: str) -> str:
    """An E'' literal holding ``text`` (the file itself stays plain ASCII)."""
    return "E'" + "".join(c if 32 <= ord(c) < 127 and c not in "'\\" else f"\\u{ord(c):04x}" for c in text) + "'"


# Python's universal newlines and str.splitlines() take CR, NEL (U+0085) and U+2028 for line breaks in
# files and pg_dump's output: names keep to the other characters (comments hold them all).
_LINE_BREAKS = str.maketrans("", "", "\r\x85\u2028\u2029")


def _name(index: int, text: str) -> str:
    return f"t{index}{text.translate(_LINE_BREAKS)}"


def _hostile_desired(tmp_path: Path, comments: bool = True) -> Path:
    lines = []
    for index, (kind, text) in enumerate(HOSTILE.items()):
        name = _name(index, text)  # a quoted identifier may hold any character but NUL
        quoted = '"' + name.replace('"', '""') + '"'
        lines.append(f"-- {kind}: {text}" if "\r" not in text else f"/* {kind}: {text} */")  # CR ends a -- comment
        lines.append(f"CREATE TABLE {quoted} (id int);")
        if comments:
            lines.append(f"COMMENT ON TABLE {quoted} IS {_sql_string(text)};")
    desired = tmp_path / "desired.sql"
    desired.write_text("\n".join(lines) + "\n")
    return desired


def _assert_safe(text: str) -> None:
    found = UNSAFE.search(text)
    assert found is None, (repr(found[0]), text[max(0, found.start() - 80): found.end() + 80])


def test_plan_text_output_shows_control_characters_as_escapes(cli, tmp_path):
    desired = _hostile_desired(tmp_path)
    result = cli("plan", "--desired", desired)
    assert result.exit_code == 2, result.err
    _assert_safe(result.out + result.err)
    for text in HOSTILE.values():  # each still readable, as an escape
        assert visible(text) in result.out, text
    assert "\\x1b]52;c;ZXZpbA==\\x07" in result.out and "\\u202e" in result.out


def test_plan_json_escapes_them_as_json_does(cli, tmp_path):
    desired = _hostile_desired(tmp_path)
    result = cli("plan", "--desired", desired, "--format", "json")
    assert result.exit_code == 2, result.err
    _assert_safe(result.out)
    document = json.loads(result.out)
    tables = {change["table"] for plan in document["results"] for change in plan["changes"]}
    for index, text in enumerate(HOSTILE.values()):  # the exact names, once decoded
        assert f"public.{_name(index, text)}" in tables


def test_plan_sql_for_a_pipe_stays_exact(cli, tmp_path):
    desired = _hostile_desired(tmp_path)
    result = cli("plan", "--desired", desired, "--format", "sql")
    assert result.exit_code == 2, result.err
    assert HOSTILE["osc52"] in result.out  # SQL meant for a file or psql is not altered


def test_errors_quoting_untrusted_sql_are_safe(cli, tmp_path):
    cases = {
        # the server quotes the value in its message
        "server": f"CREATE TABLE a (id int);\nSELECT {_sql_string(HOSTILE['osc52'])}::int;\n",
        # our message quotes the statement's first lines
        "statement": f"CREATE TABLE a (id int);\nSELECT 1/0 AS \"{HOSTILE['csi']}\";\n",
        # the parser's message quotes the line
        "syntax": f"CREATE TABLE a (id int) -- {HOSTILE['bidi']}\nCREATE TABEL b{HOSTILE['c1']} ();\n",
    }
    for kind, text in cases.items():
        desired = tmp_path / f"{kind}.sql"
        desired.write_text(text)
        for extra in ((), ("--format", "json")):
            result = cli("plan", "--desired", desired, *extra)
            assert result.exit_code == 1, (kind, result.out, result.err)
            _assert_safe(result.out + result.err)
            assert "\\x1b" in result.err or "\\u202e" in result.err or "\\x9b" in result.err, (kind, result.err)


def test_apply_and_status_show_a_failed_migrations_error_safely(cli, db, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "000001_a.up.sql").write_text("CREATE TABLE a (id int);\n")
    (directory / "000001_a.down.sql").write_text("DROP TABLE a;\n")
    (directory / "000002_b.up.sql").write_text(
        "-- schemadiff:no-transaction\nCREATE TABLE b (id int);\n"
        f"SELECT {_sql_string(HOSTILE['osc8'] + HOSTILE['csi'])}::int;\n"
    )
    (directory / "000002_b.down.sql").write_text("DROP TABLE b;\n")
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 1, applied.err
    _assert_safe(applied.out + applied.err)
    assert "\\x1b]8;;https://evil.example/" in applied.err
    with psycopg.connect(db) as conn:  # the raw error is kept as the server gave it
        assert conn.execute("SELECT dirty FROM schema_migrations").fetchone() == (True,)
    for extra in ((), ("--format", "json")):
        status = cli("status", "--dir", directory, "--db", db, *extra)
        _assert_safe(status.out + status.err)
    assert "\\x1b[31m" in cli("status", "--dir", directory, "--db", db).out


def test_generate_output_is_safe(cli, tmp_path):
    desired = _hostile_desired(tmp_path, comments=False)
    directory = tmp_path / "migrations"
    directory.mkdir()
    result = cli("generate", f"init{HOSTILE['csi'][:1]}x", "--desired", desired, "--dir", directory)
    _assert_safe(result.out + result.err)
    result = cli("generate", "init", "--desired", desired, "--dir", directory)
    assert result.exit_code == 0, result.err
    _assert_safe(result.out + result.err)
    up = next(directory.glob("*.up.sql")).read_text()
    assert _name(2, HOSTILE["osc52"]) in up  # the migration holds the SQL exactly as desired


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; its exit code and everything it wrote."""
    main, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "schemadiff", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=child, stderr=child,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"},
    )
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_only_rich_own_colours_are_escape_sequences(tmp_path):
    desired = _hostile_desired(tmp_path)
    for args in (["plan", "--desired", str(desired)], ["plan", "--desired", str(desired), "--format", "sql"]):
        code, text = _on_a_terminal(args, tmp_path)
        assert code == 2, text
        # rich's own styles are SGR sequences (ESC [ digits ; m) and its spinner's cursor controls; after
        # removing those, nothing a terminal acts on is left.
        rest = re.sub(r"\x1b\[[0-9;]*m|\x1b\[2K|\x1b\[1A|\x1b\[\?25[lh]", "", text)
        # The terminal's CR LF, and the spinner's CR before each frame (braille dots) and at its end.
        rest = re.sub(r"\r(?=[\n\u2800-\u28ff])|(?<=\n)\r", "", rest)
        _assert_safe(rest)
        assert "\\x1b]52;c;ZXZpbA==\\x07" in text
        assert "\\u202e" in text
