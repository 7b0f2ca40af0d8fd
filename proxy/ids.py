"""Per-request identifiers that must be unique, not unguessable.

Request ids, completion and message ids, upstream thread ids and trace ids name a request;
knowing one grants nothing. They are drawn from a generator seeded once from ``os.urandom``
rather than with a system call per id (``secrets``/``uuid4``): about 2% of the gateway's CPU
on small requests. Anything that authorizes (client keys, stored-response ids, slot tokens
that guard a release) keeps using ``secrets``.
"""

from __future__ import annotations

import os
import random

_ids = random.Random()  # seeded from os.urandom
# A forked child would otherwise repeat its parent's ids (the standard library reseeds only its
# own module-level generator at fork).
os.register_at_fork(after_in_child=_ids.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the variant bits
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def random_hex(nbytes: int) -> str:
    """``2 * nbytes`` lowercase hex digits, as ``secrets.token_hex(nbytes)`` shapes them."""
    return f"{_ids.getrandbits(8 * nbytes):0{2 * nbytes}x}"


def random_uuid4() -> str:
    """A random (version 4) UUID in its canonical 36-character form, as ``str(uuid.uuid4())``."""
    digits = f"{_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
