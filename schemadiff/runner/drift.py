"""Drift: is the live schema the one a migration was proven from?

``generate`` proves a pair on the shadow server, starting from the schema
the directory's earlier files produce. Production may have drifted from it
(a hand-made index, a hotfix), and a file proven from one schema can do
something else on another. So the generated up file records, in a header
comment golang-migrate ignores, a fingerprint of the schema it was proven
from::

    -- schemadiff:proven-from sha256:<64 hex digits>

and ``apply`` compares the live schema's fingerprint with it before running
the file (pg-schema-diff keeps such a hash in its plans; Atlas checks drift
before applying). On a difference the directory is replayed on the shadow
server up to the previous version and the two schemas are compared, to name
what differs.

The fingerprint is taken by ``schemadiff.shadow.catalog`` (the independent judge,
sharing no code with the diff engine): the schema as it compares it, so
owners, privileges, OIDs, the database's name and the version tables never
count. Installed extensions are left out too (their objects already are):
the shadow server's pgvector version is not production's, and an extension
a DBA installed for monitoring (pg_stat_statements) is not drift a migration
could trip over.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

from ..shadow import catalog
from ..shadow.catalog import Snapshot
from ..migrations import MigrationDirectory

MARKER = "-- schemadiff:proven-from"
_MARKER_LINE = re.compile(r"^-- schemadiff:proven-from sha256:([0-9a-f]{64})\s*$")


def fingerprint(snapshot: Snapshot) -> str:
    """SHA-256 (hex) of a ``catalog.snapshot``, without the list of installed extensions."""
    normalised = _without_extensions(snapshot)
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def schema_fingerprint(url: str, bookkeeping: tuple[tuple[str, str], ...] = ()) -> str:
    """The fingerprint of the schema of the database at ``url`` (reads the catalogs only).

    ``bookkeeping``: version tables under custom names, left out (see ``catalog.snapshot``).
    """
    return fingerprint(catalog.snapshot(url, bookkeeping=bookkeeping))


def header_line(digest: str) -> str:
    """The header comment a generated up file carries."""
    return f"{MARKER} sha256:{digest}"


def proven_from(text: str) -> str | None:
    """The fingerprint recorded in a migration's header (its leading comment lines), or None."""
    for line in _header(text):
        match = _MARKER_LINE.match(line)
        if match:
            return match[1]
    return None


def _header(text: str) -> Iterator[str]:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            return
        yield stripped


def replayed_snapshot(migrations: MigrationDirectory, upto: int | None, shadow_url: str | None) -> Snapshot:
    """The schema the directory's up files produce up to version ``upto`` (None: none), read on the shadow server.

    Raises what the shadow server or the replay raise (``ShadowServerError``,
    ``MigrationDirectoryError`` for a file that does not replay).
    """
    from ..shadow.replay import replay_directory
    from ..shadow.server import ShadowServer

    upto_migrations = MigrationDirectory(
        migrations.path, tuple(m for m in migrations.migrations if upto is not None and m.version <= upto)
    )
    shadow = ShadowServer.open(shadow_url)
    with shadow.temporary_database() as url:
        replay_directory(url, upto_migrations)
        return catalog.snapshot(url)


def differences_from_replay(
    live_url: str, migrations: MigrationDirectory, upto: int | None, shadow_url: str | None,
    bookkeeping: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """How the live schema differs from the directory replayed up to ``upto``, one line each (empty: none).

    Lines read as the judge's: "missing ..." is in the replay but not live,
    "unexpected ..." is live only. Installed extensions are not compared,
    nor the live side's version tables under custom names (``bookkeeping``).
    """
    expected = _without_extensions(replayed_snapshot(migrations, upto, shadow_url))
    actual = _without_extensions(catalog.snapshot(live_url, bookkeeping=bookkeeping))
    return catalog.differences(expected, actual)


def _without_extensions(snapshot: Snapshot) -> Snapshot:
    # An extension's own comment (pg_description of pg_extension) goes with it.
    result = {category: objects for category, objects in snapshot.items() if category != "extensions"}
    if "comments" in result:
        result["comments"] = {k: v for k, v in result["comments"].items() if not k.startswith("extension ")}
    return result
