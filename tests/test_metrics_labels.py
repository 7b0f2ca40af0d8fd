"""The metrics' model label is bounded by the operator's catalog: names a client makes up (an
unknown model, a wildcard alias's suffix, another spelling) never become label values, and the
request log's "model served" stays empty when nothing was served."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.test_metrics import _logged_rows, samples

pytestmark = [pytest.mark.live]

MODEL = "deepseek/deepseek-v4-flash"


def model_labels(url: str) -> set[str]:
    scrape = samples(httpx.get(f"{url}/metrics", timeout=10).text)
    return {value for (_, labels), _ in scrape.items() for name, value in labels if name == "model"}


def test_client_made_model_names_are_not_label_values(live):
    marker = secrets.token_hex(4)
    headers = {"Authorization": f"Bearer {live.key}"}
    names = [
        f"made-up-{marker}",  # unknown: 404
        f"claude-haiku-{marker}",  # the default wildcard alias claude-haiku-* serves it
        MODEL.upper(),  # the catalog resolves names case-insensitively
    ]
    statuses, request_ids = [], []
    for name in names:
        response = httpx.post(
            f"{live.url}/v1/chat/completions",
            json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
            timeout=10,
        )
        statuses.append(response.status_code)
        request_ids.append(response.headers["x-request-id"])
    assert statuses == [404, 200, 200]
    labels = model_labels(live.url)
    assert not [label for label in labels if marker in label or label == MODEL.upper()]
    assert {"unknown", MODEL} <= labels
    rows = {row.request_id: row for row in _logged_rows(request_ids)}
    unknown, aliased, upper = (rows[request_id] for request_id in request_ids)
    assert (unknown.client_model, unknown.model) == (names[0], "")
    assert aliased.client_model == names[1] and aliased.model.startswith("claude-haiku-")
    assert marker not in aliased.model
    assert (upper.client_model, upper.model) == (names[2], MODEL)
