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
    down = cli("apply", service, "--db", db, "--to", "0", "--allow-destructive")
    assert down.exit_code == 0, down.err
    assert sorted(p.name for p in directory.glob("*.sql"))  # files exist


@pytest.mark.parametrize("service", SERVICES)
def test_plan_from_the_orm_era_database_names_every_column(cli, shadow_url, make_db, service):
    live = make_db((FIXTURES / f"{service}.sql").read_text())
    result = cli("plan", service, "--db", live, "--shadow", shadow_url, "--format", "json")
    # The desired schema adds NOT NULL columns without a default (tenant_id) to tables holding rows:
    # an error against this live database (issue 16), with the plan still in the envelope.
    assert result.exit_code == 1, result.err
    assert "the plan fails on the live database's rows" in result.err
    assert all("holds rows" in line for line in json.loads(result.out)["results"][0]["errors"])
    rows = {row["table"]: row for row in json.loads(result.out)["results"][0]["summary"]}
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


@pytest.mark.parametrize("service", SERVICES)
def test_orm_era_database_is_adopted_by_baseline_then_planned(cli, shadow_url, make_db, tmp_path, service):
    """The adoption path: the ORM-era schema becomes migration 1, recorded without running."""
    orm_sql = (FIXTURES / f"{service}.sql").read_text()
    live = make_db(orm_sql)
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "000001_orm_baseline.up.sql").write_text(orm_sql)
    (directory / "000001_orm_baseline.down.sql").write_text("-- the ORM-era schema is not undone\n")
    assert cli("hash", "--dir", directory).exit_code == 0

    adopted = cli("apply", "--dir", directory, "--db", live, "--baseline", "1")
    assert adopted.exit_code == 0, adopted.err
    status = cli("status", "--dir", directory, "--db", live)
    assert "version 1" in status.out and "clean" in status.out

    plan = cli("plan", service, "--db", live, "--shadow", shadow_url, "--format", "json")
    # Exit 1, not 2: NOT NULL columns without a default meet the live rows (issue 16); the plan is still given.
    assert plan.exit_code == 1, plan.err
    assert "the plan fails on the live database's rows" in plan.err
    rows = {row["table"]: row for row in json.loads(plan.out)["results"][0]["summary"]}
    for table, expected in ORM_EXPECTATIONS[service].items():
        removed = {label.split(" ", 1)[1] for label in rows[f"public.{table}"]["removed"] if label.startswith("column ")}
        assert removed == set(expected["removed"]), table
    # plan only read the database: the baseline row is as apply left it.
    import psycopg

    with psycopg.connect(live) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(1, False)]
