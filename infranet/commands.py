"""How a component adds its sub-commands to the `infranet` command line.

The components' `cli` modules use this; `infranet.cli` (the wiring) calls their
`register(subparsers)`. Kept apart so that no component imports the wiring.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from infranet.context import AppContext

# A sub-command's function: it runs with a ready AppContext and returns the exit status.
Handler = Callable[[AppContext, argparse.Namespace], Awaitable[int | None]]


def add_command(
    subparsers: Any, name: str, handler: Handler, help: str, *, prepare_db: bool = True,
) -> argparse.ArgumentParser:
    """Add a sub-command whose handler runs with a ready AppContext."""
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler, prepare_db=prepare_db)
    return parser
