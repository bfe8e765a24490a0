"""Time ``generate`` with rename hints: the rename map (in memory) against another checkout.

    python benchmarks/rename_hints.py --tables 100 --reps 3 [--other /path/to/another/checkout]

Builds the synthetic schema of ``scale_schema`` (identity keys, a foreign
key to the previous table, CHECKs, indexes, a view every 50 tables), writes
its first migration, then times ``schemadiff generate`` of a desired file
that renames one table (other tables' foreign keys and its identity sequence
follow) and one column (an index uses it), each with a hint. Every run
starts from the same directory copy, with the caches off
(``SCHEMADIFF_NO_CACHE=1``), on the same embedded server (the caller's
``SCHEMADIFF_CACHE_DIR``): a user's first ``generate`` after editing the file.
With ``--other``, the same runs use that checkout's ``schemadiff`` package
(``PYTHONPATH``), alternating with this one, so both see the same load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scale_schema import original_schema  # noqa: E402


def renamed_schema(text: str) -> str:
    """The schema with t0003 renamed (hint on its CREATE TABLE line) and t0005.name renamed to label."""
    text = text.replace("CREATE TABLE t0003 (", "CREATE TABLE t0003_items ( -- schemadiff:renamed-from t0003", 1)
    text = text.replace("REFERENCES t0003 (id)", "REFERENCES t0003_items (id)")
    text = text.replace("CREATE INDEX t0003_tenant_created_idx ON t0003 ", "CREATE INDEX t0003_tenant_created_idx ON t0003_items ")
    text = text.replace("CREATE INDEX t0003_name_idx ON t0003 ", "CREATE INDEX t0003_name_idx ON t0003_items ")
    start = text.index("CREATE TABLE t0005 (")
    head, tail = text[:start], text[start:]
    tail = tail.replace("  name varchar(100) NOT NULL DEFAULT '',",
                        "  label varchar(100) NOT NULL DEFAULT '', -- schemadiff:renamed-from name", 1)
    tail = tail.replace("CREATE INDEX t0005_name_idx ON t0005 (name);", "CREATE INDEX t0005_name_idx ON t0005 (label);", 1)
    return head + tail


def schemadiff(args: list[str], pythonpath: str | None) -> float:
    env = dict(os.environ, SCHEMADIFF_NO_CACHE="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "schemadiff", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"schemadiff {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--other", help="another checkout whose schemadiff package is timed alongside")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rename-hints-"))
    try:
        before, after = work / "before.sql", work / "after.sql"
        text = original_schema(options.tables)
        before.write_text(text)
        after.write_text(renamed_schema(text))
        start = work / "start"
        schemadiff(["generate", "init", "--desired", str(before), "--dir", str(start), "--create-dir"], None)
        sides = [("this checkout", None)] + ([("other", options.other)] if options.other else [])
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        for rep in range(options.reps):
            for name, path in sides if rep % 2 == 0 else reversed(sides):
                directory = work / f"run-{rep}-{len(times[name])}-{name.replace(' ', '-')}"
                shutil.copytree(start, directory)
                times[name].append(schemadiff(["generate", "rename", "--desired", str(after), "--dir",
                                               str(directory)], path))
                written = next(directory.glob("*_rename.up.sql")).read_text()
                if "DROP TABLE" in written or "DROP COLUMN" in written:
                    raise SystemExit(f"{name}: the hints were not applied:\n{written}")
        for name, measured in times.items():
            print(f"{name}: generate with 2 rename hints, {options.tables} tables: median"
                  f" {statistics.median(measured):.2f} s of {', '.join(f'{t:.2f}' for t in measured)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
