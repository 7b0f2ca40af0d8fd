"""Garbage-collector settings for a long-running gateway process.

Django, ninja, Twisted and their imports leave a few hundred thousand long-lived objects that
the collector would otherwise walk again and again while requests allocate small, short-lived
ones (events, frames, dicts). Freezing what exists after start-up moves it out of the
collector's way, and a larger young generation makes collections rarer. Measured with
`make bench`: 4.1 -> 3.3 us of CPU per relayed event, 1,547 -> 1,778 small requests/s, and
the p99 latencies of the loaded scenarios halved. A young generation of 50,000 was no faster
and doubled the memory per open stream; 10,000 keeps it near 40 KB.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 10_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, 50, 100)
