"""Filtered listing in O(period + page): the numbers of a listing as arithmetic
progressions, and the matches of a periodic predicate found without scanning them all."""

from __future__ import annotations

from collections.abc import Callable

PERIOD = 12  # state and labels repeat every PERIOD numbers

Segment = tuple[int, int, int]  # (first number, step, count), in listing order


def issue_segments(issues: int, pulls: int) -> list[Segment]:
    total = issues + pulls
    return [(1, 1, total)] if total else []


def pull_segments(issues: int, pulls: int) -> list[Segment]:
    both = min(issues, pulls)
    segs = [(2, 2, both)] if both else []
    if pulls > both:
        segs.append((2 * both + 1, 1, pulls - both))
    return segs


def descending(segments: list[Segment]) -> list[Segment]:
    return [(s + (c - 1) * d, -d, c) for s, d, c in reversed(segments)]


def select(
    segments: list[Segment], pred: Callable[[int], bool], offset: int, limit: int
) -> tuple[list[int], int]:
    """The matches `offset .. offset+limit` of the progressions, and how many match in all.

    `pred` has period PERIOD in the number, hence in the index of any progression, so whole
    periods are counted and skipped without being looked at."""
    out: list[int] = []
    total = 0
    for start, step, count in segments:
        head = [bool(pred(start + j * step)) for j in range(min(PERIOD, count))]
        per = sum(head)
        full, rem = divmod(count, PERIOD)
        seg_total = full * per + sum(head[:rem])
        total += seg_total
        if len(out) >= limit:
            continue
        if offset >= seg_total:
            offset -= seg_total
            continue
        skip = offset // per  # seg_total > offset >= 0 implies per > 0
        j, offset = skip * PERIOD, offset - skip * per
        while j < count and len(out) < limit:
            n = start + j * step
            if pred(n):
                if offset:
                    offset -= 1
                else:
                    out.append(n)
            j += 1
        offset = 0
    return out, total
