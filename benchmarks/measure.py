"""Running a command and measuring it: wall time and the peak memory of its process.

Peak memory is the ``ru_maxrss`` that ``wait4`` returns for that one child:
the largest resident set of the process itself or of any of its own
children that it waited for (Linux keeps the maximum, not the sum). The
PostgreSQL server the command talks to is a separate, already running
process and is not included (it is the same server for schemadiff and its
peers).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class CommandFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Run:
    seconds: float
    exit_code: int
    stdout: str
    stderr: str
    max_rss_mb: float  # peak resident set of the process (and its waited-for children)
    cpu_seconds: float  # user + system CPU of the process; wall time minus this is mostly waiting on the server


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    ok_codes: Sequence[int] = (0,),
    timeout: float = 900,
) -> Run:
    """Run ``argv`` to completion; raise :class:`CommandFailed` on an unexpected exit code."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
        out.seek(0)
        err.seek(0)
        run = Run(
            seconds, process.returncode, out.read(), err.read(), usage.ru_maxrss / 1024,
            usage.ru_utime + usage.ru_stime,
        )
    if run.exit_code not in ok_codes:
        raise CommandFailed(
            f"{' '.join(argv)} exited {run.exit_code} (expected {'/'.join(map(str, ok_codes))}) after"
            f" {seconds:.1f}s\n--- stderr ---\n{run.stderr[-4000:]}\n--- stdout ---\n{run.stdout[-2000:]}"
        )
    return run


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
