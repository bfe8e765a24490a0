"""The repository's own services: derived files, generated migrations, and
the ORM-era databases they replace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from orm_expectations import ORM_EXPECTATIONS, TABLES_ADDED

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "orm"
SERVICES = ["cortex", "postal"]


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for env in ("CORTEX_DATABASE_URL", "POSTAL_DATABASE_URL", "SCHEMADIFF_SHADOW_URL"):
        monkeypatch.delenv(env, raising=False)


def test_derived_files_are_up_to_date(cli):
    result = cli("derive", "--check")
    assert result.exit_code == 0, result.out + result.err


@pytest.mark.parametrize("service", SERVICES)
def test_generated_migrations_match_the_desired_state(cli, shadow_url, service):
    """Fails when someone edits the schema without generating a migration."""
    result = cli("plan", service, "--shadow", shadow_url)
    assert result.exit_code == 0, result.out + result.err
    assert "In sync" in result.out


@pytest.mark.parametrize("service", SERVICES)
def test_generated_directory_verifies_and_applies(cli, db, service):
    directory = ROOT / "generated" / service
    up = cli("apply", service, "--db", db)
    assert up.exit_code == 0, up.err
    down = cli("apply", service, "--db", db, "--to", "0")
    assert down.exit_code == 0, down.err
    assert sorted(p.name for p in directory.glob("*.sql"))  # files exist


@pytest.mark.parametrize("service", SERVICES)
def test_plan_from_the_orm_era_database_names_every_column(cli, shadow_url, make_db, service):
    live = make_db((FIXTURES / f"{service}.sql").read_text())
    result = cli("plan", service, "--db", live, "--shadow", shadow_url, "--format", "json")
    assert result.exit_code == 2, result.err
    rows = {row["table"]: row for row in json.loads(result.out)["summary"]}
    for table, expected in ORM_EXPECTATIONS[service].items():
        row = rows[f"public.{table}"]
        removed = {label.split(" ", 1)[1] for label in row["removed"] if label.startswith("column ")}
        added = {label.split(" ", 1)[1] for label in row["added"] if label.startswith("column ")}
        assert removed == set(expected["removed"]), table
        assert added == set(expected["added"]), table
    for table in TABLES_ADDED[service]:
        assert rows[f"public.{table}"]["added"] == ["table"] or "table" in rows[f"public.{table}"]["added"]


def test_derive_check_reports_stale_files(cli, tmp_path, monkeypatch):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "schema", copy / "schema")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    monkeypatch.chdir(copy)
    archive = copy / "schema" / "archive.sql"
    archive.write_text(archive.read_text() + "\nCOMMENT ON COLUMN tags.slug IS 'URL-safe name';\n")
    stale = cli("derive", "--check")
    assert stale.exit_code == 2
    assert "postal.sql" in stale.out and "stale" in stale.out
    assert cli("derive").exit_code == 0
    assert cli("derive", "--check").exit_code == 0
