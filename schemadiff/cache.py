"""Keeping what was computed from unchanged inputs.

Loading SQL into the shadow server is the slow part of every run, and teams
run ``plan`` on every pull request with inputs that rarely change. Two
caches, both keyed by content (never by time or path):

- inspected models (pickles in the cache directory), keyed by the input's
  text, the shadow server's identity and the inspection code itself, so an
  unchanged desired file or migration directory costs no database work;
- template databases on the embedded server (``schemadiff_tpl_<key>``), so
  ``generate`` clones a replayed directory instead of replaying it again.

A cache entry that cannot be read is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path

from . import __version__

_MODELS_KEPT = 64
NO_CACHE_ENV = "SCHEMADIFF_NO_CACHE"  # set to 1: recompute everything, keep nothing


def enabled() -> bool:
    return os.environ.get(NO_CACHE_ENV, "") in ("", "0")


@lru_cache(maxsize=1)
def _engine_fingerprint() -> str:
    # The model's shape and content come from inspect.py: a changed
    # inspector must never read a model pickled by an older one.
    source = Path(__file__).with_name("inspect.py").read_bytes()
    return hashlib.sha256(source + __version__.encode()).hexdigest()


def key(*parts: str | bytes) -> str:
    digest = hashlib.sha256(_engine_fingerprint().encode())
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def directory_digest(files: list[Path]) -> bytes:
    """Names and contents of a directory's files, in the given order."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.digest()


class ModelCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

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
        for stale in entries[_MODELS_KEPT:]:
            stale.unlink(missing_ok=True)


def model_cache() -> ModelCache:
    from .shadow import cache_dir

    return ModelCache(cache_dir() / "models")
