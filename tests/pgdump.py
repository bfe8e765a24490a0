"""A second, independent judge for tests: ``pg_dump --schema-only`` text.

Uses the pg_dump binary shipped in the embedded server's wheel (pgserver),
never schemadiff's code, so that a test comparing two dumps checks the
engine's result against PostgreSQL's own account of a schema. The dump is
normalised only where two databases with the same schema legitimately
differ: comments pg_dump writes about itself, session SETs, blank lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pgserver


def pg_dump_path() -> Path:
    """The pg_dump of the embedded server's wheel (site-packages/pgserver/pginstall/bin)."""
    return Path(pgserver.__file__).resolve().parent / "pginstall" / "bin" / "pg_dump"


def schema_dump(url: str) -> str:
    """``pg_dump --schema-only`` of the database at ``url``, normalised for comparison.

    Raises subprocess.CalledProcessError (with pg_dump's message) on failure.
    """
    done = subprocess.run([str(pg_dump_path()), "--schema-only", "--dbname", url],
                          capture_output=True, text=True, check=True)
    kept = []
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith("--"):
            continue
        if line.startswith(("SET ", "SELECT pg_catalog.set_config(", "\\restrict", "\\unrestrict")):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"
