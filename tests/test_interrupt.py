"""Ctrl-C or SIGTERM in the middle of a run leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg


def _temporary_databases(admin_url: str, pid: int) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"schemadiff\\_tmp\\_{pid}\\_%"]
        ).fetchall()
    return [row[0] for row in rows]


def _sleeping(admin_url: str) -> bool:
    with psycopg.connect(admin_url) as conn:
        return bool(
            conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
            .fetchall()
        )


def test_sigterm_while_loading_drops_the_temporary_databases(shadow_url, tmp_path: Path):
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE slow (id int);\nSELECT pg_sleep(30);\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "schemadiff", "plan", "--desired", str(desired), "--shadow", shadow_url],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SCHEMADIFF_NO_CACHE": "1"},
    )
    deadline = time.monotonic() + 30
    while not _sleeping(shadow_url):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the desired file never started loading"
        time.sleep(0.1)
    assert _temporary_databases(shadow_url, process.pid), "plan should be working in a temporary database"

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert _temporary_databases(shadow_url, process.pid) == []
