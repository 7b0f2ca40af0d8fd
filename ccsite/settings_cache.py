"""Django settings as plain attributes, for code that reads them on every request.

``django.conf.settings`` answers each attribute through ``LazyObject.__getattribute__``, a
Python-level hook that costs about a microsecond; a small /v1 request reads some forty
settings (2% of the gateway's CPU in scenario d of ``make bench``). ``cached_settings.NAME``
reads the setting once and keeps it as an ordinary attribute. Django's ``setting_changed``
signal (``override_settings``, pytest-django's ``settings`` fixture) empties the cache, so a
changed setting is read afresh.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed

_lock = threading.Lock()
_generation = [0]  # bumped by every clear; kept outside the instance, whose dict is the cache
_derived: list[dict[str, Any]] = []  # the values from_settings keeps, emptied with the cache


def _keep(store: dict[str, Any], name: str, value: Any, generation: int) -> None:
    """Store ``value`` unless a clear came in since ``generation`` was read: a thread that read
    the old value while another changed the setting must not store it after the change."""
    with _lock:
        if _generation[0] == generation:
            store[name] = value


class CachedSettings:
    def __getattr__(self, name: str) -> Any:  # only called when the attribute is not cached yet
        generation = _generation[0]
        value = getattr(settings, name)
        _keep(self.__dict__, name, value, generation)
        return value

    def clear(self, **_signal: Any) -> None:
        with _lock:
            _generation[0] += 1
            self.__dict__.clear()
            for kept in _derived:
                kept.clear()


cached_settings = CachedSettings()
setting_changed.connect(cached_settings.clear, weak=False)

T = TypeVar("T")


def from_settings(build: Callable[[], T]) -> Callable[[], T]:
    """``build()`` (a value made of settings) made once and kept until a setting changes."""
    kept: dict[str, Any] = {}
    _derived.append(kept)

    @functools.wraps(build)
    def value() -> T:
        try:
            return kept["value"]  # type: ignore[no-any-return]
        except KeyError:
            generation = _generation[0]
            made = build()
            _keep(kept, "value", made, generation)
            return made

    return value
