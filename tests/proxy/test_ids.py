"""Per-request identifiers (proxy/ids.py): the shapes the standard library gives, random or time-ordered."""

from __future__ import annotations

import functools
import operator
import re
import uuid

from proxy.ids import random_hex, random_uuid4


def test_random_uuid4_is_a_canonical_version_4_uuid_like_the_standard_library():
    drawn = [random_uuid4() for _ in range(5000)]
    for text in drawn:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lowercase, hyphenated, 36 characters
    assert len(set(drawn)) == len(drawn)
    # Only the six fixed bits never change: version 0100 (bits 79-76), variant 10 (bits 63-62).
    values = [uuid.UUID(text).int for text in drawn]
    always_one = functools.reduce(operator.and_, values)
    always_zero = functools.reduce(operator.and_, [~value & (2**128 - 1) for value in values])
    assert always_one == (1 << 78) | (1 << 63)
    assert always_zero == (1 << 79) | (1 << 77) | (1 << 76) | (1 << 62)


def test_random_hex_has_the_shape_of_secrets_token_hex():
    drawn = [random_hex(12) for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", text) for text in drawn)
    assert len(set(drawn)) == len(drawn)
    assert any(text.startswith("0") for text in drawn)  # leading zero digits are kept
    assert re.fullmatch(r"[0-9a-f]{48}", random_hex(24))


def test_a_forked_process_draws_other_ids_than_its_parent():
    # A server that forks its workers after import (a pre-forking process manager) must not
    # hand every worker the same generator state: secrets and uuid4 never did, and the standard
    # library reseeds only its own module-level generator at fork.
    import os

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its next ids and leave at once
        try:
            os.write(write_end, f"{random_hex(12)} {random_uuid4()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = pipe.read().decode().split()
    os.waitpid(child, 0)
    assert child_ids and child_ids != [random_hex(12), random_uuid4()]


def test_time_ordered_hex_sorts_by_creation_time_and_stays_unique():
    import time

    from proxy.ids import time_ordered_hex
    from proxy.request_meta import new_request_id

    before = time.time_ns() // 1_000_000
    drawn = [time_ordered_hex(12) for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{24}", text) for text in drawn)
    assert len(set(drawn)) == len(drawn)
    stamps = [int(text[:11], 16) for text in drawn]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    time.sleep(0.002)
    later = time_ordered_hex(12)
    assert later > max(drawn)  # a later millisecond sorts after every earlier id
    assert re.fullmatch(r"req_[0-9a-f]{24}", new_request_id())
    assert new_request_id()[4:15] >= later[:11]  # request ids are the time-ordered kind
