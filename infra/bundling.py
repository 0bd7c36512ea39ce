"""Lambda asset bundling without Docker: ``pip install`` for the Lambda platform plus the runtime package.

``cdk synth`` and ``cdk deploy`` must work on a machine with no Docker daemon, so the asset is built by an
``ILocalBundling`` that always succeeds locally (the Docker image CDK asks for is never pulled). The asset holds the
pinned runtime dependencies for the Lambda platform and ``functions/exportlake`` minus what only the CLI and the
local mode use.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import py_compile
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE = "exportlake"
REQUIREMENTS = REPO_ROOT / "requirements.txt"

PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
#: pyarrow publishes only manylinux_2_28 wheels for aarch64, the others may publish only manylinux2014: name both.
PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64")

#: Paths inside the package that the Lambda functions never import: the CLI and its exit helper, the emulator, the
#: in-process runner that plays the Lambda service, and the query engines (DuckDB, Athena) of ``exportlake query``.
EXCLUDED_PACKAGE_PATHS = ("cli", "emulator", "query", "runner.py", "fastexit.py")
_EXCLUDED_NAMES = ("__pycache__", ".pytest_cache", ".mypy_cache")
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
#: Parts of the installed dependencies the runtime never loads (tests, C headers, Cython sources, scripts).
_PRUNE_DIRS = ("bin", "pyarrow/tests", "pyarrow/include", "pyarrow/src")
_PRUNE_SUFFIXES = (".pyx", ".pxd", ".pxi", ".pyc")
#: pyarrow files the runtime never loads (it imports ``pyarrow`` and ``pyarrow.parquet`` and writes Parquet):
#: Flight, the Python modules of Acero/Substrait/Dataset/ORC/CSV/JSON/Feather, the cloud and HDFS filesystems with
#: libarrow_s3, Parquet encryption, Gandiva and the C++ test module. The C++ libraries of dataset, acero, substrait
#: and compute stay: ``pyarrow.lib`` links them. ``tests/infra/test_bundling.py`` imports and converts with a pyarrow
#: pruned by this list.
PYARROW_PRUNE = (
    "*flight*",
    "_acero.*",
    "_substrait.*",
    "_dataset*.so",
    "_orc.*",
    "_csv.*",
    "_json.*",
    "_feather.*",
    "_s3fs.*",
    "libarrow_s3.*",
    "_gcsfs.*",
    "_azurefs.*",
    "_hdfs.*",
    "_parquet_encryption.*",
    "libarrow_python_parquet_encryption.*",
    "*gandiva*",
    "_pyarrow_cpp_tests.*",
)
#: ``libX.so`` and ``libX.so.A.B.C`` beside ``libX.so.A``: wheels hold no symlinks, so these are full copies of the
#: library the loader opens by its soname (``libX.so.A``).
_SONAME = re.compile(r"^lib.+\.so\.\d+$")


def _is_soname_copy(name: str, names: set[str]) -> bool:
    if name.endswith(".so") and name.startswith("lib"):
        return any(_SONAME.match(n) and n.rsplit(".", 1)[0] == name for n in names)
    full = re.match(r"^(lib.+\.so\.\d+)\.\d+\.\d+$", name)
    return bool(full) and full.group(1) in names  # type: ignore[union-attr]


def _is_excluded(rel: Path) -> bool:
    parts = rel.parts
    if any(p in _EXCLUDED_NAMES for p in parts) or rel.suffix in _EXCLUDED_SUFFIXES:
        return True
    if len(parts) < 2 or parts[0] != PACKAGE:
        return False
    inner = "/".join(parts[1:])
    return any(inner == p or inner.startswith(p + "/") for p in EXCLUDED_PACKAGE_PATHS)


def runtime_files(functions_dir: Path = FUNCTIONS_DIR) -> Iterator[Path]:
    """The package files that go into the asset, relative to ``functions_dir``, in a stable order."""
    for path in sorted((functions_dir / PACKAGE).rglob("*")):
        rel = path.relative_to(functions_dir)
        if path.is_file() and not _is_excluded(rel):
            yield rel


def asset_hash(functions_dir: Path = FUNCTIONS_DIR, requirements: Path = REQUIREMENTS) -> str:
    """A hash of everything that decides the asset's content: the shipped files, the pins and the platform."""
    digest = hashlib.sha256()
    digest.update(f"{PYTHON_VERSION}|{','.join(PLATFORMS)}|{_BYTECODE}|".encode())
    digest.update(requirements.read_bytes())
    for rel in runtime_files(functions_dir):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update((functions_dir / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def pip_command(target: str, requirements: Path = REQUIREMENTS) -> list[str]:
    """The ``pip install`` that fetches the Lambda-platform wheels of the pinned requirements."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    cmd += ["--target", target, "--implementation", "cp", "--python-version", PYTHON_VERSION]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    return [*cmd, "--only-binary=:all:", "--upgrade", "-r", str(requirements)]


def prune_pyarrow(pyarrow_dir: Path) -> list[str]:
    """Delete what the runtime never loads from an installed ``pyarrow`` package; return the names removed."""
    if not pyarrow_dir.is_dir():
        return []
    files = [p for p in sorted(pyarrow_dir.iterdir()) if p.is_file()]
    names = {p.name for p in files}
    removed = []
    for path in files:
        if any(path.match(pattern) for pattern in PYARROW_PRUNE) or _is_soname_copy(path.name, names):
            path.unlink()
            removed.append(path.name)
    return removed


#: The asset carries bytecode compiled by the build interpreter (the runtime's Python version): ``/var/task`` is
#: read-only, so without it every cold start compiles every module it imports from source (measured: the copier's
#: imports 1.05 -> 0.38 CPU-s; +7 MiB unzipped). ``unchecked-hash``: used whatever the zip does to mtimes.
_BYTECODE = "pyc-unchecked-hash"


def compile_bytecode(output: Path) -> bool:
    """Compile every ``.py`` under ``output`` to ``__pycache__`` for the runtime's Python; False (and nothing
    written) when this interpreter is another version, whose bytecode the runtime would ignore."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != PYTHON_VERSION:
        print(f"exportlake: no bytecode in the asset (building with Python {here}, the runtime is {PYTHON_VERSION})")
        return False
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    return bool(compileall.compile_dir(str(output), quiet=2, invalidation_mode=mode))


def _prune(output: Path) -> None:
    for rel in _PRUNE_DIRS:
        shutil.rmtree(output / rel, ignore_errors=True)
    prune_pyarrow(output / "pyarrow")
    for path in list(output.rglob("*")):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in _PRUNE_SUFFIXES:
            path.unlink()


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundling:
    """Builds the asset in-process: pip for the Lambda platform, then copy the runtime package."""

    def __init__(self, functions_dir: Path = FUNCTIONS_DIR, requirements: Path = REQUIREMENTS) -> None:
        self.functions_dir = functions_dir
        self.requirements = requirements

    def try_bundle(self, output_dir: str, options: cdk.BundlingOptions) -> bool:
        del options  # the Docker-only settings (image, command) do not apply
        started = time.monotonic()
        subprocess.run(pip_command(output_dir, self.requirements), check=True)  # noqa: S603 - our own argv, no shell
        output = Path(output_dir)
        _prune(output)
        for rel in runtime_files(self.functions_dir):
            dest = output / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.functions_dir / rel, dest)
        compile_bytecode(output)
        size = sum(f.stat().st_size for f in output.rglob("*") if f.is_file())
        elapsed = time.monotonic() - started
        print(f"exportlake: bundled Lambda asset in {elapsed:.1f}s ({size / 2**20:.1f} MiB unzipped)", file=sys.stderr)
        return True


def lambda_code() -> lambda_.Code:
    """One asset for both functions: ``exportlake`` and its dependencies at the root of the zip."""
    if not os.path.isdir(FUNCTIONS_DIR / PACKAGE):
        raise FileNotFoundError(f"runtime package not found at {FUNCTIONS_DIR / PACKAGE}")
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,  # never pulled: the local bundler always succeeds
            # jsii hands try_bundle the options as one positional struct, unlike the generated stub's keywords.
            local=LocalPythonBundling(),  # type: ignore[arg-type]
            command=["false"],
        ),
    )
