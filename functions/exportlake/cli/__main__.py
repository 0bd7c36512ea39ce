"""``python -m exportlake.cli``: the ``exportlake`` command."""

import sys

from exportlake.cli.main import main

sys.exit(main())
