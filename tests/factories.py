"""factory_boy factories; keys and credentials go through the services, like the product."""

from __future__ import annotations

import factory

from accounts.models import ClientKey, UpstreamCredential, User
from accounts.services import CredentialOptions, client_key_create, credential_add


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"member{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")


def make_client_key(
    *, user: User | None = None, name: str = "default", **kwargs: object
) -> tuple[ClientKey, str]:
    return client_key_create(user=user or UserFactory(), name=name, **kwargs)  # type: ignore[arg-type]


def make_credential(
    *, label: str = "main", api_key: str = "user_testkey_0000000000abcd", **options: object
) -> UpstreamCredential:
    return credential_add(label=label, api_key=api_key, options=CredentialOptions(**options))  # type: ignore[arg-type]
