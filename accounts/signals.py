"""Signals of accounts that other apps act on (routing reloads credentials on a change)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``ids`` (credential primary keys) and ``enabled`` (True/False, or None for other
# edits) after credentials changed, including bulk updates that post_save does not see.
credentials_changed = Signal()
