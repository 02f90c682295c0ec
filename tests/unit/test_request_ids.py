"""New request ids: unique, 32 hex digits, never shared between a process and its forked children."""

from __future__ import annotations

import os
import re

from flagsvc.middleware import RequestIds


def test_request_ids__32_hex_digits_and_unique():
    ids = RequestIds()
    drawn = [ids.new() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in drawn)
    assert len(set(drawn)) == len(drawn)


def test_request_ids__two_generators_do_not_collide():
    first, second = RequestIds(), RequestIds()
    assert {first.new() for _ in range(100)}.isdisjoint({second.new() for _ in range(100)})


def test_request_ids__a_forked_child_draws_a_new_prefix():
    ids = RequestIds()
    parent = ids.new()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's teardown
        os.write(write_end, ids.new().encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:20] != parent[:20]
    assert child != ids.new()
