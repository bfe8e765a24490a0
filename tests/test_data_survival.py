"""Data survives migrations: the services' tables full of rows (vectors
included) go through a chain of generated changes, up and back down, and
every kept column keeps every value."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "orm"
DIMENSIONS = 1536


def _vector(rng: random.Random) -> str:
    return "[" + ",".join(f"{rng.uniform(-1, 1):.6f}" for _ in range(DIMENSIONS)) + "]"


def fill_cortex(url: str) -> None:
    rng = random.Random(1)
    with psycopg.connect(url, autocommit=True) as conn:
        for t in range(1, 4):
            conn.execute("INSERT INTO tenants (name, slug) VALUES (%s, %s)", [f"Tenant {t}", f"tenant-{t}"])
            for u in range(1, 6):
                conn.execute(
                    "INSERT INTO users (tenant_id, email, username, password_hash, bio, ai_preferences)"
                    " VALUES (%s, %s, %s, 'x', %s, %s)",
                    [t, f"user{u}@t{t}.example", f"user{u}", f"bio {t}/{u}", json.dumps({"tone": u})],
                )
            for c in range(1, 4):
                conn.execute(
                    "INSERT INTO categories (tenant_id, name, slug, color, embedding) VALUES (%s, %s, %s, %s, %s)",
                    [t, f"Cat {c}", f"cat-{c}", "#00aa1" + str(c), _vector(rng)],
                )


def fill_postal(url: str) -> None:
    rng = random.Random(2)
    with psycopg.connect(url, autocommit=True) as conn:
        for p in range(1, 13):
            conn.execute(
                "INSERT INTO posts (tenant_id, author_id, category_id, title, slug, content, status,"
                " content_embedding, quality_score, view_count) VALUES (1, %s, %s, %s, %s, %s, 'draft', %s, %s, %s)",
                [p % 5 + 1, p % 3 + 1, f"Post {p}", f"post-{p}", f"content {p} " * 20, _vector(rng), p / 20, p * 7],
            )
            for v in range(1, 3):
                conn.execute(
                    "INSERT INTO post_versions (post_id, version, title, content) VALUES (%s, %s, %s, %s)",
                    [p, v, f"Post {p} v{v}", f"old content {p}/{v}"],
                )
        for g in range(1, 5):
            conn.execute("INSERT INTO tags (tenant_id, name, slug) VALUES (1, %s, %s)", [f"Tag {g}", f"tag-{g}"])
        for p in range(1, 13):
            conn.execute("INSERT INTO post_tags (post_id, tag_id) VALUES (%s, %s)", [p, p % 4 + 1])


def table_contents(url: str) -> dict[str, dict[str, list[str]]]:
    """table -> column -> sorted values as text (row order does not matter)."""
    contents: dict[str, dict[str, list[str]]] = {}
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name NOT IN ('schema_migrations', 'schemadiff_history') ORDER BY 1, 2"
        ).fetchall()
        for table, column in columns:
            values = conn.execute(f'SELECT "{column}"::text FROM "{table}"').fetchall()
            contents.setdefault(table, {})[column] = sorted(str(v[0]) for v in values)
    return contents


def assert_kept(before: dict, after: dict, renamed: dict[tuple[str, str], str] | None = None) -> None:
    """Every column of ``before`` still holds the same values (under its new name if renamed)."""
    renamed = renamed or {}
    for table, columns in before.items():
        assert table in after, f"table {table} disappeared"
        for column, values in columns.items():
            now = renamed.get((table, column), column)
            assert now in after[table], f"column {table}.{column} disappeared"
            assert after[table][now] == values, f"values of {table}.{column} changed"


# Each step: (name, how the desired file changes, (table, old column) -> new name while it applies)
Step = tuple[str, Callable[[str], str], dict]

POSTAL_CHAIN: list[Step] = [
    (
        "add_columns_with_defaults",
        lambda sql: sql.replace(
            "  created_at timestamptz NOT NULL DEFAULT now(),\n  CONSTRAINT posts_tenant_id_slug_key",
            "  created_at timestamptz NOT NULL DEFAULT now(),\n  excerpt varchar(100) DEFAULT '',\n"
            "  translation_of integer,\n  CONSTRAINT posts_tenant_id_slug_key",
        ),
        {},
    ),
    (
        "rename_version_content",
        lambda sql: sql.replace(
            "  content text NOT NULL,\n  editor_id integer,",
            "  body text NOT NULL, -- schemadiff:renamed-from content\n  editor_id integer,",
        ),
        {("post_versions", "content"): "body"},
    ),
    ("widen_excerpt", lambda sql: sql.replace("excerpt varchar(100)", "excerpt varchar(500)"), {}),
    (
        "partial_author_index",
        lambda sql: sql.replace("  ON posts (author_id);", "  ON posts (author_id)\n  WHERE status = 'published';"),
        {},
    ),
    (
        "not_null_column_with_default",
        lambda sql: sql.replace("  translation_of integer,", "  translation_of integer,\n  pinned boolean NOT NULL DEFAULT false,"),
        {},
    ),
    (
        "translation_foreign_key",
        lambda sql: sql.replace(
            "  CONSTRAINT posts_tenant_id_slug_key UNIQUE (tenant_id, slug),",
            "  CONSTRAINT posts_tenant_id_slug_key UNIQUE (tenant_id, slug),\n"
            "  CONSTRAINT posts_translation_of_fkey FOREIGN KEY (translation_of) REFERENCES posts (id),",
        ),
        {},
    ),
    (
        "tune_embedding_index",
        lambda sql: sql.replace(
            "USING hnsw (content_embedding vector_cosine_ops);",
            "USING hnsw (content_embedding vector_cosine_ops) WITH (m = 24, ef_construction = 100);",
        ),
        {},
    ),
]

CORTEX_CHAIN: list[Step] = [
    (
        "rename_bio",
        lambda sql: sql.replace("  bio text,", "  about text, -- schemadiff:renamed-from bio"),
        {("users", "bio"): "about"},
    ),
    (
        "tune_category_index",
        lambda sql: sql.replace(
            "USING hnsw (embedding vector_cosine_ops);",
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 32);",
        ),
        {},
    ),
]


@pytest.mark.parametrize("online", [False, True], ids=["plain", "online"])
@pytest.mark.parametrize(
    "service, chain, fill", [("cortex", CORTEX_CHAIN, fill_cortex), ("postal", POSTAL_CHAIN, fill_postal)]
)
@pytest.mark.long_running  # started first: see conftest.py
def test_rows_survive_a_chain_of_changes_up_and_down(
    cli, shadow_url, make_db, tmp_path, monkeypatch, service, chain, fill, online
):
    monkeypatch.chdir(tmp_path)
    desired_sql = (ROOT / "schema" / f"{service}.sql").read_text()
    desired = tmp_path / "desired.sql"
    desired.write_text(desired_sql)
    migrations = tmp_path / "migrations"
    flags = ["--desired", desired, "--dir", migrations, "--shadow", shadow_url]
    assert cli("generate", "init", "--create-dir", *flags).exit_code == 0

    live = make_db()
    assert cli("apply", "--dir", migrations, "--db", live).exit_code == 0
    fill(live)
    original = table_contents(live)

    versions = [1]
    renamed: dict = {}
    for name, change, renames in chain:
        before_step = table_contents(live)
        desired_sql = change(desired_sql)
        assert desired_sql != desired.read_text(), f"step {name} changed nothing in the desired file"
        desired.write_text(desired_sql)
        generated = cli("generate", name, *flags, "--online" if online else "--no-online")
        assert generated.exit_code == 0, f"{name}: {generated.err}"
        up = cli("apply", "--dir", migrations, "--db", live)
        assert up.exit_code == 0, f"{name}: {up.err}"
        step_renames = {(t, renamed.get((t, c), c)): new for (t, c), new in renames.items()}
        assert_kept(before_step, table_contents(live), step_renames)
        assert cli("plan", *flags[:2], "--db", live, "--shadow", shadow_url).exit_code == 0, name
        renamed.update({key: new for key, new in renames.items()})
        versions.append(int(sorted(p.name for p in migrations.glob("*.up.sql"))[-1][:6]))

    # All the way back down, step by step: every original value is still there.
    for version in reversed(versions[:-1]):
        down = cli("apply", "--dir", migrations, "--db", live, "--to", str(version), "--allow-destructive")
        assert down.exit_code == 0, down.err
    assert_kept(original, table_contents(live))
    assert table_contents(live) == original


@pytest.mark.parametrize("service", ["cortex", "postal"])
def test_orm_era_columns_are_reported_as_data_deleting(cli, shadow_url, make_db, tmp_path, monkeypatch, service):
    from orm_expectations import ORM_EXPECTATIONS

    monkeypatch.chdir(tmp_path)
    orm_sql = (FIXTURES / f"{service}.sql").read_text()
    live = make_db(orm_sql)
    desired = ROOT / "schema" / f"{service}.sql"
    plan = cli("plan", "--desired", desired, "--db", live, "--shadow", shadow_url, "--format", "json")
    # The desired schema adds NOT NULL columns without a default (tenant_id) to tables that hold rows:
    # an error against this live database (issue 16), with the plan still printed.
    assert plan.exit_code == 1, plan.err
    result = json.loads(plan.out)["results"][0]
    assert result["errors"] and all("holds rows" in line for line in result["errors"])
    assert "the plan fails on the live database's rows" in plan.err
    changes = result["changes"]
    dropped = {c["name"].rsplit(".", 1)[1] for c in changes if c["kind"] == "column" and c["action"] == "drop"}
    for table, expected in ORM_EXPECTATIONS[service].items():
        for column in expected["removed"]:
            matching = [c for c in changes if c["name"] == f"public.{table}.{column}" and c["action"] == "drop"]
            assert matching and all("deletes-data" in c["hazards"] for c in matching), f"{table}.{column}"
    assert dropped

    # The ORM-era schema as the baseline migration: the next generate must refuse to drop its columns.
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "000001_orm_baseline.up.sql").write_text(orm_sql)
    (migrations / "000001_orm_baseline.down.sql").write_text("-- the ORM-era schema cannot be undone\n")
    assert cli("hash", "--dir", migrations).exit_code == 0
    refused = cli("generate", "adopt", "--desired", desired, "--dir", migrations, "--shadow", shadow_url)
    assert refused.exit_code == 1
    for table, expected in ORM_EXPECTATIONS[service].items():
        for column in expected["removed"]:
            assert f"public.{table}.{column}" in refused.err
    assert not list(migrations.glob("000002_*"))
