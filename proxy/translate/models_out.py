"""The model catalog in each surface's list shape."""

from __future__ import annotations

from typing import Any

from proxy.translate.catalog import ModelInfo

# A fixed creation time: the catalog has no dates, and a stable value keeps clients' caches calm.
CATALOG_CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
CATALOG_CREATED_ISO = "2026-01-01T00:00:00Z"


def openai_model(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": CATALOG_CREATED, "owned_by": info.owned_by}


def openai_model_list(models: list[ModelInfo]) -> dict[str, Any]:
    return {"object": "list", "data": [openai_model(info) for info in models]}


def anthropic_model(info: ModelInfo) -> dict[str, Any]:
    return {"type": "model", "id": info.id, "display_name": info.id, "created_at": CATALOG_CREATED_ISO}


def anthropic_model_list(models: list[ModelInfo]) -> dict[str, Any]:
    data = [anthropic_model(info) for info in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
