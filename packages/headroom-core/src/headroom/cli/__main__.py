"""``python -m headroom.cli``: the same entry point as the ``headroom`` command."""

import sys

from headroom.cli.main import main

sys.exit(main())
