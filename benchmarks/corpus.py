"""Schema-change cases in sqldef's YAML form: loading and filtering.

A case is one top-level key of a ``*.yml`` file with ``current`` (the schema
as it is; missing means an empty database) and ``desired`` SQL. The other
keys say whether the case applies to us; see /work/shared/corpus/README.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

# Whole files that target another product.
SKIPPED_FILES = frozenset({"tests_aurora_dsql.yml"})

# Keys that configure sqldef itself: such cases test settings we do not have.
SQLDEF_SETTINGS = ("user", "managed_roles", "manage", "config")


@dataclass(frozen=True)
class Case:
    file: str  # file name, e.g. tests_indices.yml
    name: str  # the case's key in that file
    current: str
    desired: str

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass(frozen=True)
class SkippedCase:
    file: str
    name: str
    reason: str


class CorpusError(Exception):
    """A path does not hold readable cases."""


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named by ``paths``: files as given, directories' ``*.yml`` sorted."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"no such file or directory: {path}")
    return files


def _major(version: object) -> int:
    """Major version of a bound like "12", '15.0', 9.1 (9.x majors are 9)."""
    return int(str(version).strip().split(".")[0])


def skip_reason(spec: dict, server_major: int) -> str | None:
    """Why a case does not apply to this tool and server, or None when it does."""
    if "error" in spec:
        return "expects an error"
    if spec.get("flavor") not in (None, "pgvector"):
        return f"flavor {spec['flavor']}"
    if "min_version" in spec and server_major < _major(spec["min_version"]):
        return f"needs PostgreSQL >= {spec['min_version']}"
    if "max_version" in spec and server_major > _major(spec["max_version"]):
        return f"needs PostgreSQL <= {spec['max_version']}"
    for key in SQLDEF_SETTINGS:
        if key in spec:
            return f"sqldef setting {key}"
    if spec.get("enable_drop") is False:
        return "enable_drop: false"
    if "desired" not in spec:
        return "no desired state"
    return None


def load_cases(
    paths: Iterable[str | Path], server_major: int, name_filter: str | Iterable[str] | None = None
) -> tuple[list[Case], list[SkippedCase]]:
    """Every applicable case under ``paths`` (and those skipped, with why).

    ``name_filter``: keep only cases whose ``file::name`` contains one of these
    substrings (case-insensitive).
    """
    filters = [name_filter] if isinstance(name_filter, str) else list(name_filter or [])
    filters = [f.lower() for f in filters if f]
    cases: list[Case] = []
    skipped: list[SkippedCase] = []
    for path in case_files(paths):
        if path.name in SKIPPED_FILES:
            continue
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CorpusError(f"cannot read {path}: {exc}") from None
        if not isinstance(document, dict):
            raise CorpusError(f"{path}: expected a mapping of case names to cases")
        for name, spec in document.items():
            if not isinstance(spec, dict):
                continue
            if filters and not any(f in f"{path.name}::{name}".lower() for f in filters):
                continue
            reason = skip_reason(spec, server_major)
            if reason:
                skipped.append(SkippedCase(path.name, str(name), reason))
                continue
            cases.append(Case(path.name, str(name), spec.get("current") or "", spec.get("desired") or ""))
    return cases, skipped
