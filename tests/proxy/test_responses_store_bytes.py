"""The Responses store is bounded in bytes as well as in entries: a few clients sending big
inputs cannot make a process keep gigabytes (5,000 entries of a 64 MiB body each)."""

from __future__ import annotations

import pytest

from proxy.responses_store import ResponseStore
from proxy.translate.errors import InvalidRequest


def test_the_least_recently_used_go_first_once_the_bytes_are_over_the_bound(settings):
    settings.CCSITE_RESPONSES_STORE_SECONDS, settings.CCSITE_RESPONSES_STORE_MAX = 60, 100
    settings.CCSITE_RESPONSES_STORE_MAX_BYTES = 1_000
    store = ResponseStore()
    store.save(1, "resp_a", parent=None, items=[{"n": 1}], size=400)
    store.save(1, "resp_b", parent=None, items=[{"n": 2}], size=400)
    store.conversation(1, "resp_a")  # used: now the most recent
    store.save(1, "resp_c", parent=None, items=[{"n": 3}], size=400)
    assert store.conversation(1, "resp_a") == [{"n": 1}]
    assert store.conversation(1, "resp_c") == [{"n": 3}]
    with pytest.raises(InvalidRequest):
        store.conversation(1, "resp_b")
    assert store.bytes == 800


def test_an_entry_bigger_than_the_bound_is_not_kept(settings):
    settings.CCSITE_RESPONSES_STORE_SECONDS, settings.CCSITE_RESPONSES_STORE_MAX = 60, 100
    settings.CCSITE_RESPONSES_STORE_MAX_BYTES = 1_000
    store = ResponseStore()
    store.save(1, "resp_small", parent=None, items=[], size=10)
    store.save(1, "resp_huge", parent=None, items=[], size=1_001)
    with pytest.raises(InvalidRequest):
        store.conversation(1, "resp_huge")
    assert store.conversation(1, "resp_small") == [] and store.bytes == 10


def test_replacing_an_entry_counts_its_bytes_once(settings):
    settings.CCSITE_RESPONSES_STORE_SECONDS, settings.CCSITE_RESPONSES_STORE_MAX = 60, 100
    settings.CCSITE_RESPONSES_STORE_MAX_BYTES = 1_000
    store = ResponseStore()
    store.save(1, "resp_a", parent=None, items=[], size=300)
    store.save(1, "resp_a", parent=None, items=[], size=200)
    assert store.bytes == 200
    store.clear()
    assert store.bytes == 0
