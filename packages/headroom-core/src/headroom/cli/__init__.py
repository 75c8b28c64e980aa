"""The ``headroom`` command line: ``headroom demo`` and ``headroom memory ...``.

:mod:`headroom.cli.main` parses arguments and dispatches; each command lives in its own module
(:mod:`~headroom.cli.memory`, :mod:`~headroom.cli.demo`) and imports its dependencies lazily, so
``headroom --help`` stays instant.
"""

from __future__ import annotations

from headroom.cli.errors import CliError
from headroom.cli.main import build_parser, main

__all__ = ["CliError", "build_parser", "main"]
