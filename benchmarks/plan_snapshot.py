"""What the engine plans, plain and online, for every corpus case in both directions: a text snapshot.

Usage:
    python benchmarks/plan_snapshot.py PATH... --out FILE [-k SUBSTRING]

A refactoring of the engine, the online rewrite or the renderer must not
change generated SQL unless a change is a fix. Run this before and after
and ``diff`` the two files: every difference is either a fix to name or a
regression.

For each applicable case (the corpus protocol's step 1,
/work/shared/corpus/README.md) ``current`` and ``desired`` are loaded into
two fresh databases of the embedded server, and for each direction
(current -> desired, desired -> current) the snapshot holds:

* the plan: each change's statement text, with its typed fields (action,
  kind, name, statement kind, lock, hazards, transactionality);
* the online plan: ``split_files(make_online(changes, settings))`` with the
  partitioned tables of the database the plan starts from, each file's
  suffix, transactionality and full text (preamble and statements), and the
  typed fields of its changes.

No migration is written or applied; the caches are not used.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.conformance import _load, server_major  # noqa: E402
from benchmarks.corpus import load_cases  # noqa: E402
from schemadiff.engine.diff import diff_schemas  # noqa: E402
from schemadiff.inspect import inspect_database  # noqa: E402
from schemadiff.online import OnlineSettings, make_online, split_files, with_partitions  # noqa: E402
from schemadiff.shadow.server import ShadowServer  # noqa: E402


def _fields(change) -> str:
    lock = change.lock.name if change.lock is not None else "-"
    return (f"-- [{change.action} {change.kind} {change.name} | {change.statement or '-'} | lock {lock}"
            f" on {change.relation or '-'} | hazards {','.join(change.hazards) or '-'}"
            f" | {'tx' if change.transactional else 'no-tx'}]")


def _direction(lines: list[str], title: str, current_url: str, current, desired) -> None:
    changes = diff_schemas(current, desired)
    lines.append(f"## {title}: plan, {len(changes)} changes")
    for change in changes:
        lines.append(_fields(change))
        lines.append(change.sql)
    if not changes:
        return
    settings = with_partitions(OnlineSettings(), current_url)
    files = split_files(make_online(changes, settings))
    lines.append(f"## {title}: online, {len(files)} files")
    for number, planned in enumerate(files, start=1):
        lines.append(f"### file {number} suffix={planned.suffix!r} {'tx' if planned.transactional else 'no-tx'}")
        lines.extend(_fields(change) for change in planned.changes)
        lines.append(planned.sql())


def snapshot_case(case, shadow: ShadowServer) -> list[str]:
    lines = [f"# {case.id}"]
    with shadow.temporary_database() as a, shadow.temporary_database() as b:
        try:
            _load(shadow, a, case.current, "current")
            _load(shadow, b, case.desired, "desired")
        except Exception as exc:  # a case PostgreSQL refuses is invalid, as in the conformance protocol
            lines.append(f"invalid: {type(exc).__name__}")
            return lines
        current, desired = inspect_database(a), inspect_database(b)
        for title, url, old, new in (("up", a, current, desired), ("down", b, desired, current)):
            try:
                _direction(lines, title, url, old, new)
            except Exception as exc:
                lines.append(f"## {title}: ERROR {type(exc).__name__}: {exc}")
                lines.extend(traceback.format_exc().splitlines()[-3:])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("-k", dest="name_filter")
    args = parser.parse_args(argv)
    shadow = ShadowServer.open()
    cases, _ = load_cases(args.paths, server_major(shadow), args.name_filter)
    with args.out.open("w", encoding="utf-8") as out:
        for number, case in enumerate(cases, start=1):
            out.write("\n".join(snapshot_case(case, shadow)) + "\n\n")
            if number % 50 == 0:
                print(f"{number}/{len(cases)}", file=sys.stderr, flush=True)
    print(f"{len(cases)} cases written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
