"""exportlake: NeoDay automated exports into an AWS data lake."""

import gc as _gc
import os as _os
import sys as _sys

# As the ``exportlake`` command (not in Lambda, not in tests): no cyclic garbage collection while the interpreter
# imports boto3, pyarrow and Powertools (~90k objects that live until exit; the collector kept walking them:
# ~0.15 CPU-s per sync). ``exportlake.cli.main`` freezes what was imported and turns the collector back on.
if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "exportlake" and _os.environ.get(
    "EXPORTLAKE_SLOW_EXIT", ""
) in ("", "0"):
    _gc.disable()
