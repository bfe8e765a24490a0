"""The documented workflow walked as a new team member walks it (issue 14).

Every test drives the real CLI against the embedded PostgreSQL, in a copy of
this repository (its pyproject.toml, schema/ and generated/), so the
configuration, the derived files and the migration directories are the ones
the README describes.
"""

from __future__ import annotations

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
