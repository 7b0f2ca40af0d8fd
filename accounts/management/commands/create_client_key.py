"""Create a client API key for a user; the secret is printed alone on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.base import OneLineCommand
from accounts.models import User
from accounts.services import AccountsError, client_key_create, user_get_or_create


class Command(OneLineCommand):
    help = "Create a client API key for USER and print it (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="user name")
        parser.add_argument("--name", default="default", help="a label for the key")
        parser.add_argument("--create-user", action="store_true", help="create the user if missing")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["user"].strip()
        try:
            if options["create_user"]:
                user, created = user_get_or_create(username=username)
                if created:
                    self.stdout.write(f"Created user {username}.")
            else:
                user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r} (add --create-user to create it)") from None
        except AccountsError as exc:
            raise CommandError(str(exc)) from None
        if not user.password or not user.has_usable_password():
            self.stdout.write(
                f"{username} has no password, so cannot log in to the self-service page (/) yet: "
                f"set one with `manage.py changepassword {username}` or on the admin's user page."
            )
        key, secret = client_key_create(user=user, name=options["name"])
        self.stdout.write(f"Key {key.name!r} for {username} (prefix {key.prefix}); it is shown only once:")
        self.stdout.write(secret)
