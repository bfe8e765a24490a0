"""Keeping what was computed from unchanged inputs.

Loading SQL into the shadow server is the slow part of every run, and teams
run ``plan`` on every pull request with inputs that rarely change. Three
caches, all keyed by content (never by time or path):

- inspected models (pickles in the cache directory), keyed by the input's
  text (or, for a live database, its catalog fingerprint: see
  ``inspect.catalog_fingerprint``) and the shadow server's identity, so an
  unchanged desired file, migration directory or live database costs no
  database work;
- results (pickles too): a plan's changes, a generated and verified pair,
  keyed by the keys of both inputs, so the same job asked again is answered
  without comparing or verifying again;
- template databases on the embedded server (``schemadiff_tpl_<key>``), so
  ``generate`` clones a replayed directory instead of replaying it again.

Every key includes the source of schemadiff itself: a changed inspector,
engine or verifier never reads what an older one computed. A cache entry
that cannot be read is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .. import __version__

NO_CACHE_ENV = "SCHEMADIFF_NO_CACHE"  # set to 1: recompute everything, keep nothing
CACHE_DIR_ENV = "SCHEMADIFF_CACHE_DIR"  # where caches and the embedded server live


def cache_dir() -> Path:
    """The directory for caches and the embedded server's data: ``$SCHEMADIFF_CACHE_DIR``, else the user cache directory."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_cache_path("schemadiff")


def enabled() -> bool:
    return os.environ.get(NO_CACHE_ENV, "") in ("", "0")


@lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    # Models come from inspect.py, results from the engine and the verifier:
    # any changed module (an upgrade, a local edit) must miss every entry
    # written before. Hashing the whole package is simpler than knowing
    # which module feeds which entry, and costs a millisecond.
    digest = hashlib.sha256(__version__.encode())
    package = _package_root()
    for path in code_files():
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def code_files() -> list[Path]:
    """Every module of the schemadiff package (its subpackages included), sorted: what a cache entry is keyed on.

    The whole package, not this module's folder: models come from
    ``inspect.py``, results from ``engine/`` and ``shadow/verify.py``, and
    an entry must miss as soon as any of them changes.
    """
    return sorted(_package_root().rglob("*.py"))


def key(*parts: str | bytes) -> str:
    digest = hashlib.sha256(_code_fingerprint().encode())
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def directory_digest(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A digest of a directory's files, given as (file name, content) pairs in the given order.

    The contents come from the caller (``MigrationFile.read_bytes``): the key
    covers the very bytes the replay runs, not a second read of the files.
    """
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.digest()


class PickleCache:
    """Pickles in one directory, by key; the least recently used beyond a limit are pruned."""

    def __init__(self, directory: Path, kept: int) -> None:
        self.directory = directory
        self.kept = kept

    def get(self, entry: str):
        if not enabled():
            return None
        path = self.directory / f"{entry}.pickle"
        try:
            with path.open("rb") as handle:
                model = pickle.load(handle)
        except Exception:  # missing, truncated, or from an incompatible version
            return None
        os.utime(path)  # recently used entries survive pruning
        return model

    def has(self, entry: str) -> bool:
        return enabled() and (self.directory / f"{entry}.pickle").exists()

    def put(self, entry: str, model) -> None:
        if not enabled():
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.directory / f"{entry}.pickle")
            self._prune()
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _prune(self) -> None:
        entries = sorted(self.directory.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[self.kept:]:
            stale.unlink(missing_ok=True)


def model_cache() -> PickleCache:
    """Inspected models (``inspect.Schema``), by input key."""
    return PickleCache(cache_dir() / "models", kept=64)


def result_cache() -> PickleCache:
    """Finished results (plans, verified migrations), by the keys of their inputs."""
    return PickleCache(cache_dir() / "results", kept=256)
