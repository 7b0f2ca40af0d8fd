"""A management command base whose argument errors are one line, never a usage dump or traceback."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser


class OneLineCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        prog = f"{prog_name} {subcommand}"

        def one_line_error(message: str) -> NoReturn:
            if not parser.called_from_command_line:
                raise CommandError(f"Error: {message}")
            sys.stderr.write(f"{prog}: error: {message} (see --help)\n")
            sys.exit(2)

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser
