"""`make run` on another port: the sample command it prints uses that port (issue 10, item 10)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("host", "port", "base"),
    [
        ("127.0.0.1", 9123, "http://127.0.0.1:9123"),
        ("0.0.0.0", 8080, "http://127.0.0.1:8080"),
        ("::1", 8001, "http://[::1]:8001"),
    ],
)
def test_seed__prints_a_token_command_for_the_port_the_server_listens_on(db, host, port, base):
    out = io.StringIO()
    with override_settings(HOST=host, PORT=port):
        call_command("seed", stdout=out)
    assert f"curl -s -X POST {base}/v1/auth/token " in out.getvalue()
    assert ":8000" not in out.getvalue() or port == 8000


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run__passes_its_port_to_the_seed_command():
    dry_run = subprocess.run(
        ["make", "-n", "run", "PORT=9123"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    seed_line = next(line for line in dry_run.splitlines() if "manage.py seed" in line)
    assert "PORT=9123" in seed_line
