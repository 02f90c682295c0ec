"""Fail loudly when the PostgreSQL or Redis that the test suite needs is not reachable (never skip)."""

from __future__ import annotations

import sys

import psycopg
import redis


def main(postgres_url: str, redis_url: str) -> int:
    try:
        with psycopg.connect(postgres_url, connect_timeout=5) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        print(
            f"PostgreSQL is required for `make test` and is not reachable at {postgres_url}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"PostgreSQL {version[0] if version else '?'} reachable at {postgres_url}")
    try:
        info = redis.Redis.from_url(redis_url, socket_connect_timeout=5).info("server")
    except redis.RedisError as exc:
        print(
            f"Redis is required for `make test` and is not reachable at {redis_url}: {exc}", file=sys.stderr
        )
        return 1
    print(f"Redis {info.get('redis_version', '?')} reachable at {redis_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
