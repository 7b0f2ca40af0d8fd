"""``manage.py models``: the operator's catalog from a shell (list, enable, disable, alias,
refresh, price). Errors are one line on stderr with a non-zero exit status."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.management.base import OneLineCommand
from catalog import services
from catalog.models import Model
from catalog.refresh import refresh


def _price(value: Any) -> str | None:
    return None if value is None else str(value)


def model_json(row: Model) -> dict[str, Any]:
    return {
        "id": row.upstream_id,
        "display_name": row.display_name,
        "enabled": row.enabled,
        "source": row.source,
        "context_window": row.context_window,
        "accepts_images": row.accepts_images,
        "reasoning_levels": row.reasoning_levels,
        "missing_upstream": row.missing_upstream,
        "aliases": sorted(alias.name for alias in row.aliases.all()),
        "prices_per_million": {
            "input": _price(row.price_input),
            "cache_read": _price(row.price_cache_read),
            "cache_write": _price(row.price_cache_write),
            "output": _price(row.price_output),
        },
    }


class Command(OneLineCommand):
    help = "List and change the model catalog: list, enable, disable, alias, refresh, price."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="the catalog")
        listing.add_argument("--enabled", action="store_true", help="only enabled models")
        listing.add_argument("--json", action="store_true", help="JSON instead of a table")
        for name in ("enable", "disable"):
            toggle = actions.add_parser(name, help=f"{name} models")
            toggle.add_argument("ids", nargs="+", metavar="ID")
        alias = actions.add_parser("alias", help="point NAME at model TARGET, or --remove NAME")
        alias.add_argument("name", nargs="?", metavar="NAME")
        alias.add_argument("target", nargs="?", metavar="TARGET")
        alias.add_argument("--remove", metavar="NAME", help="delete this alias")
        actions.add_parser("refresh", help="fetch the upstream's live model list now")
        price = actions.add_parser("price", help="set prices per million tokens (empty string clears)")
        price.add_argument("id", metavar="ID")
        price.add_argument("--input", required=True)
        price.add_argument("--output", required=True)
        price.add_argument("--cache-read", default=None)
        price.add_argument("--cache-write", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except services.CatalogError as exc:
            raise CommandError(str(exc)) from None

    def _list(self, options: dict[str, Any]) -> None:
        rows = Model.objects.prefetch_related("aliases").order_by("upstream_id")
        if options["enabled"]:
            rows = rows.filter(enabled=True)
        if options["json"]:
            self.stdout.write(json.dumps([model_json(row) for row in rows], indent=2))
            return
        for row in rows:
            state = "on " if row.enabled else "off"
            missing = " (missing upstream)" if row.missing_upstream else ""
            aliases = ", ".join(sorted(alias.name for alias in row.aliases.all()))
            self.stdout.write(
                f"{state} {row.upstream_id:45} {row.source:7}{missing}"
                + (f"  aliases: {aliases}" if aliases else "")
            )

    def _toggle(self, options: dict[str, Any], enabled: bool) -> None:
        rows = services.set_enabled(options["ids"], enabled)
        word = "Enabled" if enabled else "Disabled"
        self.stdout.write(f"{word}: {', '.join(row.upstream_id for row in rows)}")

    def _enable(self, options: dict[str, Any]) -> None:
        self._toggle(options, True)

    def _disable(self, options: dict[str, Any]) -> None:
        self._toggle(options, False)

    def _alias(self, options: dict[str, Any]) -> None:
        if options["remove"]:
            if options["name"] or options["target"]:
                raise CommandError("--remove takes the alias name alone")
            services.remove_alias(options["remove"])
            self.stdout.write(f"Removed alias {options['remove']}")
            return
        if not (options["name"] and options["target"]):
            raise CommandError("usage: models alias NAME TARGET, or models alias --remove NAME")
        alias = services.set_alias(options["name"], options["target"])
        self.stdout.write(f"Alias {alias.name} -> {alias.model.upstream_id}")

    def _refresh(self, options: dict[str, Any]) -> None:
        record = refresh("cli")
        if not record.ok:
            raise CommandError(f"refresh failed, the catalog is unchanged: {record.error}")
        self.stdout.write(
            f"Listed {record.listed}; added {len(record.added)}: {', '.join(record.added) or '-'}; "
            f"vanished {len(record.vanished)}: {', '.join(record.vanished) or '-'}; "
            f"back {len(record.returned)}: {', '.join(record.returned) or '-'}"
        )

    def _price(self, options: dict[str, Any]) -> None:
        row = services.set_prices(
            options["id"],
            input=options["input"],
            output=options["output"],
            cache_read=options["cache_read"],
            cache_write=options["cache_write"],
        )
        self.stdout.write(
            f"{row.upstream_id}: input {row.price_input}, output {row.price_output}, "
            f"cache read {row.price_cache_read}, cache write {row.price_cache_write} per million tokens"
        )
