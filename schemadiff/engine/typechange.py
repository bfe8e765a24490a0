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
    """What ``ALTER COLUMN ... TYPE new`` does to a column of type ``old`` (``format_type`` strings).

    Returns hazard codes: ``()`` when PostgreSQL only changes the catalog
    (binary-coercible, or a typmod it need not check: ALTER TABLE docs,
    "Notes"), the rewrite hazards when every row is converted, plus
    ``deletes-data`` when some value of ``old`` cannot come back unchanged
    from ``new`` (see :func:`lossless`).
    """
    old_base, old_mod, old_dims = parse(old)
    new_base, new_mod, new_dims = parse(new)
    if old_dims != new_dims:
        return _LOSSY
    if old_base == new_base:
        return _same_base(old_base, old_mod, new_mod)
    if not lossless(old, new):
        return _LOSSY
    if old_base in ("character varying", "text") and new_base in ("text", "character varying") and new_mod is None:
        return ()  # binary coercible
    return _REWRITE


# Digits of the largest value of each integer type, and its text length with the sign.
_INT_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_INT_CHARS = {"smallint": 6, "integer": 11, "bigint": 20}
# Largest numeric(p, 0) precision each integer type holds entirely (9999 <= 32767, ...).
_INT_HOLDS_DIGITS = {"smallint": 4, "integer": 9, "bigint": 18}
# Floating-point types hold integers exactly up to 2^24 (real) and 2^53
# (double precision): every smallint fits a real, every integer a double.
_FLOAT_HOLDS_INT = {"real": {"smallint"}, "double precision": {"smallint", "integer"}}
_FLOAT_HOLDS_DIGITS = {"real": 7, "double precision": 15}  # numeric(p, 0) with p <= this fits
# Fixed text lengths of types whose every value prints within them.
_TEXT_LENGTH = {"boolean": 5, "uuid": 36}


def lossless(old: str, new: str) -> bool:
    """Whether every value of type ``old`` survives conversion to ``new`` (and back) unchanged.

    ``old`` and ``new`` are ``format_type`` strings of different base types
    (the same base is :func:`_same_base`'s case), same array dimensions.
    Known-lossless conversions, everything else is treated as lossy:

    - to ``text`` or unbounded ``varchar``, and to ``varchar(n)`` when the
      longest text of ``old`` fits (``char(m)``, m <= n; integers; boolean;
      uuid): every type has a text form;
    - integer to a wider integer, to ``numeric`` with at least its digits
      before the point (``integer`` -> ``numeric(20,2)``: 18 >= 10), to a
      floating type that holds it exactly (smallint -> real, integer ->
      double precision);
    - ``numeric(p,0)`` to an integer or floating type holding p digits;
    - ``real`` -> ``double precision``;
    - ``date`` -> ``timestamp[tz]``, and between ``timestamp`` and
      ``timestamptz`` (or ``time`` and ``timetz``) with no less fractional
      precision. PostgreSQL converts these in the session's ``TimeZone``:
      exact in a zone without daylight-saving jumps (UTC, the usual server
      setting); local times inside a DST jump are shifted. Run such a
      migration with the zone the values were written in.
    """
    old_base, old_mod, _ = parse(old)
    new_base, new_mod, _ = parse(new)
    if new_base == "text" or (new_base == "character varying" and new_mod is None):
        return True
    if new_base == "character varying":
        limit = new_mod[0] if new_mod else 0
        if old_base == "character":
            return old_mod is not None and old_mod[0] <= limit
        length = _INT_CHARS.get(old_base) or _TEXT_LENGTH.get(old_base)
        return length is not None and length <= limit
    if old_base in _INTEGERS:
        if new_base in _INTEGERS:
            return _INTEGERS[new_base] > _INTEGERS[old_base]
        if new_base == "numeric":
            return new_mod is None or _digits_before_point(new_mod) >= _INT_DIGITS[old_base]
        return old_base in _FLOAT_HOLDS_INT.get(new_base, ())
    if old_base == "numeric":
        if old_mod is None or _scale(old_mod) != 0:
            return False  # unbounded or fractional: no integer or binary float holds every value
        if new_base in _INTEGERS:
            return old_mod[0] <= _INT_HOLDS_DIGITS[new_base]
        return old_mod[0] <= _FLOAT_HOLDS_DIGITS.get(new_base, -1)
    if (old_base, new_base) == ("real", "double precision"):
        return True
    if old_base == "date":
        return new_base in ("timestamp without time zone", "timestamp with time zone")
    if {old_base, new_base} in ({"timestamp without time zone", "timestamp with time zone"},
                                {"time without time zone", "time with time zone"}):
        return _fraction_digits(new_mod) >= _fraction_digits(old_mod)
    return False


def _digits_before_point(typmod: tuple[int, ...]) -> int:
    return typmod[0] - _scale(typmod)


def _scale(typmod: tuple[int, ...]) -> int:
    return typmod[1] if len(typmod) > 1 else 0


def _fraction_digits(typmod: tuple[int, ...] | None) -> int:
    """Fractional-second digits of a time type: its precision, 6 when unspecified (PostgreSQL's maximum)."""
    return typmod[0] if typmod else 6


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
