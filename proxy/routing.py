"""Which upstream credential serves a request: the seam the credential-routing issue fills in.

Credentials are read from the database at most once per CCSITE_CREDENTIAL_CACHE_SECONDS per
process and kept decrypted in memory, so choosing one costs no query on the hot path. Today a
request gets a weighted random pick among the enabled credentials that allow its model, and
retries stay on it; cooldowns, concurrency limits and failover arrive with routing.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.crypto import CredentialDecryptError, decrypt_secret
from accounts.keycache import KeyPrincipal
from accounts.selectors import credentials_enabled
from proxy.translate.errors import UPSTREAM, ClientError, FailedResponse
from proxy.translate.failures import UpstreamFailure
from proxy.translate.wire import UpstreamRequest
from proxy.upstream.commandcode import Credential, UpstreamStream, open_stream

logger = logging.getLogger(__name__)

NO_CREDENTIAL = ClientError(
    UPSTREAM,
    "No upstream Command Code credential is configured for this model; an operator must add one.",
    code="no_upstream_credential",
)


@dataclass(frozen=True, slots=True)
class RoutableCredential:
    credential: Credential
    weight: int
    allowed_models: frozenset[str]

    def serves(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


def _load_credentials() -> list[RoutableCredential]:
    routable = []
    for row in credentials_enabled():
        try:
            api_key = decrypt_secret(row.secret_encrypted)
        except CredentialDecryptError:
            logger.error("credential %s cannot be decrypted with the configured keys; skipped", row.label)
            continue
        credential = Credential(id=row.pk, label=row.label, api_key=api_key)
        routable.append(RoutableCredential(credential, row.weight, frozenset(row.allowed_models or ())))
    return routable


class CredentialPool:
    """Enabled credentials, cached per process for a few seconds."""

    def __init__(self) -> None:
        self._credentials: list[RoutableCredential] = []
        self._loaded_at = float("-inf")

    async def for_model(self, model: str) -> list[RoutableCredential]:
        if time.monotonic() - self._loaded_at > settings.CCSITE_CREDENTIAL_CACHE_SECONDS:
            self._credentials = await sync_to_async(_load_credentials)()
            self._loaded_at = time.monotonic()
        return [entry for entry in self._credentials if entry.serves(model)]

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")


pool = CredentialPool()


class WeightedChooser:
    """Picks one credential by weight and keeps it for the retries of this request."""

    def __init__(self, candidates: list[RoutableCredential]) -> None:
        self._candidates = candidates
        self._chosen: Credential | None = None

    def choose(self, failed: Credential | None, failure: UpstreamFailure | None) -> Credential | None:
        if self._chosen is None and len(self._candidates) == 1:
            self._chosen = self._candidates[0].credential
        if self._chosen is None:
            weights = [max(entry.weight, 0) for entry in self._candidates]
            if not any(weights):
                weights = [1] * len(self._candidates)
            self._chosen = random.choices(self._candidates, weights=weights)[0].credential
        return self._chosen

    def report(self, credential: Credential, failure: UpstreamFailure | None) -> None:
        # Routing will record last errors and cooldowns here (persisted after the response).
        return None


async def open_upstream(principal: KeyPrincipal | None, request: UpstreamRequest) -> UpstreamStream:
    """Open the upstream stream for a translated request, or raise an error the views render."""
    candidates = await pool.for_model(request.model)
    if not candidates:
        raise FailedResponse(NO_CREDENTIAL)
    return await open_stream(request, chooser=WeightedChooser(candidates))
