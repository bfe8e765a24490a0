"""[tool.schemadiff] in pyproject.toml: finding it, reading it, refusing bad values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from schemadiff.config import Config, load_config, load_config_file
from schemadiff.errors import CommandError, ConfigError

ROOT = Path(__file__).resolve().parent.parent

VALID = """
[tool.schemadiff]
archive = "schema/archive.sql"

[tool.schemadiff.services.alpha]
tables = ["accounts", "billing.invoices"]
desired = "schema/alpha.sql"
migrations = "migrations/alpha"
db_env = "ALPHA_DATABASE_URL"

[tool.schemadiff.services.beta]
desired = "schema/beta.sql"
migrations = "migrations/beta"
"""


def write_pyproject(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_the_projects_own_config_names_both_services() -> None:
    config = load_config(ROOT / "schemadiff")  # found upward from a subdirectory
    assert config.path == ROOT / "pyproject.toml"
    assert config.archive == ROOT / "schema" / "archive.sql"
    assert set(config.services) == {"cortex", "postal"}
    postal = config.service("postal")
    assert postal.tables == ["posts", "post_versions", "tags", "post_tags"]
    assert postal.desired == ROOT / "schema" / "postal.sql"
    assert postal.migrations == ROOT / "generated" / "postal"
    assert postal.db_env == "POSTAL_DATABASE_URL"


def test_paths_resolve_against_the_pyproject_directory_from_any_subdirectory(tmp_path: Path) -> None:
    write_pyproject(tmp_path / "proj", VALID)
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    config = load_config(deep)
    assert config.root == (tmp_path / "proj").resolve()
    alpha = config.service("alpha")
    assert alpha.desired == config.root / "schema" / "alpha.sql"
    assert alpha.migrations == config.root / "migrations" / "alpha"
    assert alpha.tables == ["accounts", "billing.invoices"]
    beta = config.service("beta")
    assert beta.tables == [] and beta.db_env is None


def test_without_any_pyproject_the_config_is_empty(tmp_path: Path) -> None:
    # tmp_path has no pyproject.toml above it (/tmp is outside the repository).
    config = load_config(tmp_path)
    assert config == Config(root=tmp_path.resolve())
    assert config.services == {} and config.archive is None


def test_the_nearest_pyproject_wins_even_without_schemadiff_table(tmp_path: Path) -> None:
    write_pyproject(tmp_path, VALID)
    write_pyproject(tmp_path / "other", '[project]\nname = "other"\n')
    config = load_config(tmp_path / "other")
    assert config.services == {}
    assert config.path == (tmp_path / "other" / "pyproject.toml").resolve()


def test_unknown_service_names_the_known_ones(tmp_path: Path) -> None:
    config = load_config_file(write_pyproject(tmp_path, VALID))
    with pytest.raises(ConfigError) as caught:
        config.service("gamma")
    assert "'gamma'" in caught.value.message
    assert "alpha, beta" in caught.value.message
    assert isinstance(caught.value, CommandError)


def test_unknown_service_without_any_config_says_none_are_configured(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no services are configured"):
        load_config(tmp_path).service("cortex")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[tool.schemadiff]\narchive = 3\n', r"archive: expected a path .*an integer"),
        ('[tool.schemadiff]\narchives = "a.sql"\n', r"unknown key 'archives'.*\n.*allowed keys are: archive, services"),
        ('[tool.schemadiff]\nservices = ["a"]\n', r"services: expected a table, got a list"),
        (
            '[tool.schemadiff.services.a]\ntables = "users"\ndesired = "a.sql"\nmigrations = "m"\n',
            r"services\.a\] tables: expected a list of table names, got a string",
        ),
        (
            '[tool.schemadiff.services.a]\ntables = ["Users"]\ndesired = "a.sql"\nmigrations = "m"\n',
            r"invalid table name 'Users'",
        ),
        (
            '[tool.schemadiff.services.a]\ntables = ["users", "users"]\ndesired = "a.sql"\nmigrations = "m"\n',
            r"listed more than once: users",
        ),
        ('[tool.schemadiff.services.a]\ndesired = "a.sql"\n', r"services\.a\]: missing 'migrations'"),
        (
            '[tool.schemadiff.services.a]\ndesired = "a.sql"\nmigrations = ""\n',
            r"migrations: expected a path \(a non-empty string\)",
        ),
        (
            '[tool.schemadiff.services.a]\ndesired = "a.sql"\nmigrations = "m"\ntable = ["x"]\n',
            r"unknown key 'table'",
        ),
        (
            '[tool.schemadiff.services.a]\ndesired = "a.sql"\nmigrations = "m"\ndb_env = "postgres://u:p@h/db"\n',
            r"db_env: expected an environment variable name",
        ),
        (
            '[tool.schemadiff.services.a]\ntables = ["users"]\ndesired = "a.sql"\nmigrations = "m"\n'
            '[tool.schemadiff.services.b]\ntables = ["public.users"]\ndesired = "b.sql"\nmigrations = "n"\n',
            r"table 'public\.users' is listed by both services 'a' and 'b'",
        ),
        ('[tool.schemadiff.services."a b"]\ndesired = "a.sql"\nmigrations = "m"\n', r"invalid service name 'a b'"),
        ('[tool.schemadiff\narchive = "a"\n', r"is not valid TOML"),
    ],
)
def test_invalid_config_is_one_clear_error_naming_the_file(tmp_path: Path, body: str, expected: str) -> None:
    path = write_pyproject(tmp_path, body)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(tmp_path)
    assert str(path.resolve()) in caught.value.message


def test_db_env_url_is_not_echoed_back(tmp_path: Path) -> None:
    # Someone pasting the URL itself into db_env must not see the password repeated in CI logs.
    write_pyproject(
        tmp_path,
        '[tool.schemadiff.services.a]\ndesired = "a.sql"\nmigrations = "m"\ndb_env = "postgres://u:hunter2@h/db"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "hunter2" not in str(caught.value)
