"""The rich console every command prints through."""

from __future__ import annotations

import os

from rich.console import Console

PIPE_WIDTH = 140  # rich assumes 80 columns when output is not a terminal; tables need more


def make_console(stderr: bool = False, quiet: bool = False) -> Console:
    con = Console(stderr=stderr, highlight=False, soft_wrap=False, quiet=quiet)
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con = Console(stderr=stderr, highlight=False, soft_wrap=False, quiet=quiet, width=PIPE_WIDTH)
    return con
