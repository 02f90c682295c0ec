"""Fail loudly when the PostgreSQL that the test suite needs is not reachable (never skip)."""

from __future__ import annotations

import sys

import psycopg


def main(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        print(f"PostgreSQL is required for `make test` and is not reachable at {url}: {exc}", file=sys.stderr)
        return 1
    print(f"PostgreSQL {version[0] if version else '?'} reachable at {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
