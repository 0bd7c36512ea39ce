"""Counts the AWS API calls of a measured child, by operation (on ``PYTHONPATH`` only for ``bench.yeartwo``).

Python imports ``sitecustomize`` at start-up. When ``EXPORTLAKE_BENCH_AWS_CALLS`` names a file, this module waits
for ``boto3.session`` to be imported (a meta-path hook: nothing is imported early, so the child's CPU is its own),
then registers a botocore ``before-call`` handler on every session, and writes ``{"service.Operation": n}`` to the
file at exit (``atexit`` runs on the CLI's fast exit too).
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import json
import os
import sys
from collections import Counter
from typing import Any

_OUT = os.environ.get("EXPORTLAKE_BENCH_AWS_CALLS", "")
_calls: Counter[str] = Counter()


def _count(model: Any = None, **_: Any) -> None:
    if model is not None:
        _calls[f"{model.service_model.service_name}.{model.name}"] += 1


def _patch(module: Any) -> None:
    original = module.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.events.register("before-call", _count)

    module.Session.__init__ = init


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "boto3.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _write() -> None:
    with open(_OUT, "w") as f:
        json.dump(dict(_calls), f)


if _OUT:
    sys.meta_path.insert(0, _Finder())
    atexit.register(_write)
