"""What changing a column's type does: rewrite, data loss, need for USING.

Types are ``format_type`` strings (``character varying(40)``,
``numeric(10,2)``, ``timestamp(3) without time zone``, ``integer[]``).
Conservative by design: a conversion not known to be lossless is flagged as
deleting data, one not known to be binary-coercible as rewriting the table.
"""

from __future__ import annotations

import re

from . import hazards as hz

_TYPMOD = re.compile(r"\(([^)]*)\)")

_INTEGERS = {"smallint": 1, "integer": 2, "bigint": 3}
_NUMERIC = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}
_STRINGS = {"text", "character varying", "character", "name", '"char"', "citext"}
_DATETIMES = {"date", "timestamp without time zone", "timestamp with time zone"}
_TIMES = {"time without time zone", "time with time zone"}
_PRECISION_TYPES = _DATETIMES | _TIMES | {"interval"}

_REWRITE = (hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE)
_LOSSY = (hz.DELETES_DATA, hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE)


def parse(type_name: str) -> tuple[str, tuple[int, ...] | None, int]:
    """(base name, typmod numbers or None, array dimensions)."""
    dims = 0
    while type_name.endswith("[]"):
        type_name = type_name[:-2]
        dims += 1
    match = _TYPMOD.search(type_name)
    typmod: tuple[int, ...] | None = None
    if match:
        try:
            typmod = tuple(int(part) for part in match.group(1).split(","))
        except ValueError:
            typmod = None
        type_name = (type_name[: match.start()] + type_name[match.end():]).strip()
    return type_name, typmod, dims


def needs_using(old: str, new: str, involves_enum: bool = False) -> bool:
    """Whether ALTER COLUMN TYPE needs an explicit USING (no assignment cast).

    Where an assignment cast exists we leave USING out on purpose: an
    explicit cast to varchar(n) silently truncates, the assignment cast
    fails instead, which is what a user who loses data would want.
    """
    if involves_enum:
        return True
    old_base, _, old_dims = parse(old)
    new_base, _, new_dims = parse(new)
    if old_dims != new_dims:
        return True
    if old_base == new_base or new_base in _STRINGS:
        return False
    for family in (_NUMERIC, _DATETIMES, _TIMES):
        if old_base in family and new_base in family:
            return False
    return True


def type_change_hazards(old: str, new: str) -> tuple[str, ...]:
    old_base, old_mod, old_dims = parse(old)
    new_base, new_mod, new_dims = parse(new)
    if old_dims != new_dims:
        return _LOSSY
    if old_base == new_base:
        return _same_base(old_base, old_mod, new_mod)
    if old_base in ("character varying", "text") and new_base in ("text", "character varying") and new_mod is None:
        return ()  # binary coercible
    if new_base in ("character varying", "character") and new_mod is not None:
        return _LOSSY  # may truncate
    if new_base == "text" or (new_base == "character varying" and new_mod is None):
        return _REWRITE  # everything prints as text
    if old_base in _INTEGERS and new_base in _INTEGERS:
        return _REWRITE if _INTEGERS[new_base] > _INTEGERS[old_base] else _LOSSY
    if old_base in _INTEGERS and new_base == "numeric" and new_mod is None:
        return _REWRITE
    if (old_base, new_base) in {("smallint", "real"), ("smallint", "double precision"),
                                ("integer", "double precision"), ("real", "double precision")}:
        return _REWRITE
    if old_base in _DATETIMES and new_base in _DATETIMES and old_base != "date" or (
            old_base == "date" and new_base.startswith("timestamp")):
        if new_base == "date":
            return _LOSSY
        return _REWRITE
    return _LOSSY


def _same_base(base: str, old_mod: tuple[int, ...] | None, new_mod: tuple[int, ...] | None) -> tuple[str, ...]:
    if old_mod == new_mod:
        return ()  # a collation change only
    if base in ("character varying", "bit varying"):
        if new_mod is None or (old_mod is not None and new_mod[0] >= old_mod[0]):
            return ()
        return _LOSSY
    if base == "numeric":
        if new_mod is None:
            return ()
        if old_mod is None:
            return _LOSSY
        old_p, old_s = (old_mod + (0,))[:2]
        new_p, new_s = (new_mod + (0,))[:2]
        if new_s == old_s and new_p >= old_p:
            return ()
        if new_p - new_s >= old_p - old_s and new_s >= old_s:
            return _REWRITE
        return _LOSSY
    if base in _PRECISION_TYPES:
        if new_mod is None or (old_mod is not None and new_mod[0] >= old_mod[0]):
            return ()
        return _LOSSY
    if base == "character":
        if old_mod is not None and new_mod is not None and new_mod[0] > old_mod[0]:
            return _REWRITE
        return _LOSSY
    return _REWRITE
