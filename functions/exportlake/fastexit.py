"""Leave the ``exportlake`` command without interpreter finalization.

At exit CPython tears down every module and frees every object one by one; after a sync that holds boto3,
botocore's service models and pyarrow that measured ~1 s of CPU on a 5M-record copy, for nothing: the process ends
anyway. ``exit_now`` runs what an orderly exit must (atexit handlers, logging's flush, stdout/stderr) and then ends
the process with ``os._exit``. Only the console script does this; ``main(argv)`` called in-process (tests) returns.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["exit_now", "is_console_script", "resume_gc"]

#: Set to 1 to keep the normal interpreter exit (e.g. to debug a leak report at exit).
OPT_OUT = "EXPORTLAKE_SLOW_EXIT"


def is_console_script(argv: Sequence[str] | None) -> bool:
    """True when ``main()`` runs as the ``exportlake`` command (or ``python -m exportlake.cli``), not in-process."""
    if argv is not None or os.environ.get(OPT_OUT, "") not in ("", "0"):
        return False
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return os.path.basename(sys.argv[0] if sys.argv else "") == "exportlake" or (
        spec is not None and spec.name in ("exportlake.cli", "exportlake.cli.__main__")
    )


def exit_now(code: int, argv: Sequence[str] | None = None) -> int:
    """As the console script: flush, run the atexit handlers and ``os._exit(code)``; otherwise return ``code``."""
    if not is_console_script(argv):
        return code
    try:
        atexit._run_exitfuncs()  # what sys.exit would run (logging.shutdown is one of them)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:  # an unflushable stream must not turn a good result into a traceback
        return code  # fall back to the normal exit
    os._exit(code)


def resume_gc() -> None:
    """Freeze every object alive now (imports, settings) and turn the cyclic collector on if ``exportlake`` paused it.

    The package turns the collector off while the console script imports (see ``exportlake/__init__.py``); frozen
    objects are never walked again by later collections, which then only see what the command itself allocates.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
