"""The stream process's per-tenant memory of recent events (audit.stream._Feed)."""

from __future__ import annotations

from audit.stream import HUB_MEMORY, _Feed


def frames(first: int, count: int) -> list[tuple[int, bytes]]:
    return [(n, f"e{n}".encode()) for n in range(first, first + count)]


def test_feed_since__cursor_inside_memory__only_later_frames_in_order():
    feed = _Feed(last=10)
    feed.add(frames(11, 5))

    assert [event_id for event_id, _ in feed.since(12) or []] == [13, 14, 15]
    assert feed.since(15) == []
    assert feed.since(99) == []  # ahead of the feed: the later events come when it reads them


def test_feed_since__cursor_before_memory__none_so_the_subscriber_reads_the_outbox():
    feed = _Feed(last=10)
    feed.add(frames(11, 3))

    assert feed.since(9) is None
    assert [event_id for event_id, _ in feed.since(10) or []] == [11, 12, 13]


def test_feed_add__past_its_memory__forgets_the_oldest_and_says_so():
    feed = _Feed(last=0)
    feed.add(frames(1, 2 * HUB_MEMORY + 1))

    assert len(feed.ids) == HUB_MEMORY
    assert feed.since(feed.floor - 1) is None
    assert [event_id for event_id, _ in feed.since(feed.floor) or []] == feed.ids
    assert feed.last == 2 * HUB_MEMORY + 1
