"""The gateway process's garbage-collector settings."""

from __future__ import annotations

import gc

from ccsite import runtime


def test_tune_gc_freezes_start_up_objects_and_widens_the_young_generation():
    threshold = gc.get_threshold()
    try:
        runtime.tune_gc()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == (runtime.YOUNG_GENERATION, 50, 100)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
