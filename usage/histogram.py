"""Latency histograms: a fine bucket on each log row, a fixed coarse histogram in the roll-ups.

Both scales are logarithmic in ``ms + 1`` (so 0 ms has a bucket and small values stay apart):

- a log row stores its **fine** bucket, ``ceil(16 * log2(ms + 1))`` (16 per doubling, each at
  most 4.4% wide);
- an hourly roll-up keeps one count per **coarse** bucket, 4 per doubling: bucket ``i`` holds
  ``2**(i/4) < ms + 1 <= 2**((i+1)/4)`` (bucket 0 also holds 0 ms), for ``i`` from 0 to 79,
  that is up to 2**20 - 1 ms (17.5 minutes), and bucket 80 holds everything longer.
  A fine bucket ``f`` lies in coarse bucket ``ceil(f / 4) - 1``: the roll-up can be rebuilt
  from the rows' fine buckets alone.

A percentile read from coarse counts (nearest rank) is reported as the geometric middle of its
bucket in ``ms + 1``: the exact nearest-rank value ``v`` lies in that bucket, so the reported
``r`` satisfies ``2**(-1/8) <= (r + 1) / (v + 1) <= 2**(1/8)``, i.e. within 9.1% of ``v + 1``
(for the overflow bucket, ``r`` is its lower edge, 2**20 - 1 ms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FINE_PER_DOUBLING = 16
PER_DOUBLING = 4
_FINE_PER_COARSE = FINE_PER_DOUBLING // PER_DOUBLING
DOUBLINGS = 20
OVERFLOW = DOUBLINGS * PER_DOUBLING  # index of the last, open-ended bucket
BUCKETS = OVERFLOW + 1
# Relative precision of a reported percentile, in ms + 1 (see the module docstring).
PRECISION = 2 ** (1 / (2 * PER_DOUBLING))


def fine_bucket(ms: float) -> int:
    """The fine bucket of a latency in ms (stored on each log row)."""
    return max(0, math.ceil(math.log2(ms + 1.0) * FINE_PER_DOUBLING))


def fine_upper_ms(bucket: int) -> float:
    return float(2 ** (bucket / FINE_PER_DOUBLING) - 1.0)


def coarse_bucket(fine: int) -> int:
    """The roll-up's histogram index (0 to OVERFLOW) of a row's fine bucket."""
    return min(max(-(-fine // _FINE_PER_COARSE), 1), BUCKETS) - 1


def reported_ms(index: int) -> float:
    """What a percentile falling in coarse bucket ``index`` is reported as, in ms."""
    if index >= OVERFLOW:
        return float(2**DOUBLINGS - 1)
    return float(2 ** ((index + 0.5) / PER_DOUBLING) - 1.0)


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in (0, 1]) of a coarse histogram, in ms
    rounded to 0.1; None when the histogram is empty."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, math.ceil(total * fraction))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return round(reported_ms(index), 1)
    raise AssertionError("unreachable: the ranks add up to the total")
