"""The model catalog in each surface's list shape (OpenAI list, Anthropic paginated page).

Entries are ``(name, info)``: the name a client lists and uses (a model id or an operator
alias) and the model it serves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxy.translate.catalog import ModelInfo

# When a model's first sighting is unknown: a stable value keeps clients' caches calm.
CATALOG_CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
CATALOG_CREATED_ISO = "2026-01-01T00:00:00Z"

Entry = tuple[str, ModelInfo]


def _created(info: ModelInfo) -> int:
    return info.created or CATALOG_CREATED


def openai_model(entry: Entry) -> dict[str, Any]:
    name, info = entry
    return {"id": name, "object": "model", "created": _created(info), "owned_by": info.owned_by}


def openai_model_list(entries: list[Entry]) -> dict[str, Any]:
    return {"object": "list", "data": [openai_model(entry) for entry in entries]}


def anthropic_model(entry: Entry) -> dict[str, Any]:
    name, info = entry
    display = info.display_name or info.id
    if name != info.id:
        display = f"{name} (alias of {info.id})"
    created = datetime.fromtimestamp(_created(info), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "model",
        "id": name,
        "display_name": display,
        "created_at": created,
        "lifecycle": "active",  # listed models are the enabled ones
        "max_input_tokens": info.context_window,
    }


def anthropic_model_page(
    entries: list[Entry], *, limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """One page of Anthropic's ``GET /v1/models`` (``has_more``, ``first_id``, ``last_id``).

    ``after_id``: the page right after that id; ``before_id``: the page right before it.
    An id not in the list gives an empty page.
    """
    names = [name for name, _ in entries]
    if after_id is not None:
        start = names.index(after_id) + 1 if after_id in names else len(names)
        page, has_more = entries[start : start + limit], start + limit < len(entries)
    elif before_id is not None:
        end = names.index(before_id) if before_id in names else 0
        page, has_more = entries[max(0, end - limit) : end], end - limit > 0
    else:
        page, has_more = entries[:limit], limit < len(entries)
    data = [anthropic_model(entry) for entry in page]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
