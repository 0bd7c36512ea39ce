"""The Lambda asset: what goes in, for which platform, and when it is rebuilt."""

from __future__ import annotations

from pathlib import Path

from infra import bundling


def test_pip_targets_the_lambda_platform() -> None:
    cmd = bundling.pip_command("/tmp/out")
    joined = " ".join(cmd)
    for platform in ("manylinux_2_28_aarch64", "manylinux2014_aarch64"):
        assert f"--platform {platform}" in joined
    assert "--only-binary=:all:" in cmd
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert cmd[-1] == str(bundling.REQUIREMENTS)


def make_package(root: Path) -> Path:
    pkg = root / "exportlake"
    for rel in (
        "__init__.py",
        "settings.py",
        "cli/main.py",
        "handlers/planner.py",
        "emulator/server.py",
        "query/lake.py",
        "runner.py",
        "__pycache__/x.pyc",
    ):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    return root


def test_asset_excludes_cli_emulator_query_and_caches(tmp_path: Path) -> None:
    root = make_package(tmp_path)
    files = {p.as_posix() for p in bundling.runtime_files(root)}
    assert files == {"exportlake/__init__.py", "exportlake/settings.py", "exportlake/handlers/planner.py"}


def test_asset_hash_follows_shipped_code_and_pins(tmp_path: Path) -> None:
    root = make_package(tmp_path / "functions")
    req = tmp_path / "requirements.txt"
    req.write_text("pyarrow==1\n")
    first = bundling.asset_hash(root, req)
    (root / "exportlake" / "cli" / "main.py").write_text("# changed, not shipped\n")
    assert bundling.asset_hash(root, req) == first
    (root / "exportlake" / "settings.py").write_text("# changed\n")
    second = bundling.asset_hash(root, req)
    assert second != first
    req.write_text("pyarrow==2\n")
    assert bundling.asset_hash(root, req) != second


def test_real_runtime_package_is_shipped() -> None:
    files = {p.as_posix() for p in bundling.runtime_files()}
    assert "exportlake/settings.py" in files
    assert "exportlake/domain/schemas.py" in files
    assert not any(f.startswith(("exportlake/cli/", "exportlake/emulator/", "exportlake/query/")) for f in files)
    assert "exportlake/runner.py" not in files and "exportlake/handlers/copier.py" in files


def test_cli_only_modules_stay_out_of_the_asset(tmp_path: Path) -> None:
    pkg = tmp_path / "exportlake"
    for rel in ("__init__.py", "fastexit.py", "query/lake.py", "adapters/gateway.py", "handlers/copier.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    files = {p.as_posix() for p in bundling.runtime_files(tmp_path)}
    assert files == {"exportlake/__init__.py", "exportlake/adapters/gateway.py", "exportlake/handlers/copier.py"}


def test_bytecode_is_compiled_for_the_runtime_and_used_without_mtime_checks(tmp_path: Path) -> None:
    import importlib.util
    import sys

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    compiled = bundling.compile_bytecode(tmp_path)
    if f"{sys.version_info.major}.{sys.version_info.minor}" != bundling.PYTHON_VERSION:
        assert not compiled and not list(tmp_path.rglob("*.pyc"))
        return
    assert compiled
    pyc = Path(importlib.util.cache_from_source(str(tmp_path / "pkg" / "mod.py")))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked: valid whatever the zip does to the sources' mtimes


def test_soname_copies_are_recognised() -> None:
    names = {"libarrow.so.2600", "libarrow_python.so", "libarrow_python.so.2600", "libarrow_python.so.2600.1.0"}
    names |= {"lib.cpython-312-x86_64-linux-gnu.so", "libonly.so"}
    assert bundling._is_soname_copy("libarrow_python.so", names)
    assert bundling._is_soname_copy("libarrow_python.so.2600.1.0", names)
    assert not bundling._is_soname_copy("libarrow_python.so.2600", names)
    assert not bundling._is_soname_copy("lib.cpython-312-x86_64-linux-gnu.so", names)  # pyarrow.lib itself
    assert not bundling._is_soname_copy("libonly.so", names)  # no soname beside it: it is the library


def test_the_pruned_pyarrow_imports_and_converts(tmp_path: Path) -> None:
    """Prune a (hard-linked) copy of the installed pyarrow with the asset's list, then run the copier's whole
    conversion on it in a child that can see no other pyarrow: import, JSON records -> Parquet, read back."""
    import os
    import shutil
    import subprocess
    import sys

    import pyarrow

    installed = Path(pyarrow.__file__).parent
    site = tmp_path / "site"
    shutil.copytree(installed, site / "pyarrow", copy_function=os.link)
    removed = bundling.prune_pyarrow(site / "pyarrow")
    assert any("flight" in n for n in removed) and any(n.startswith("libarrow_s3") for n in removed)
    code = """
import io, json, sys
import pyarrow as pa, pyarrow.parquet as pq
assert pa.__file__.startswith(sys.argv[1]), pa.__file__
import exportlake.handlers.copier  # the Lambda entry point imports
from exportlake import bootstrap
from exportlake.convert.records import RecordStream
from exportlake.convert.parquet import write_parquet
bootstrap._lean_allocators()
out = {}
class Sink(io.BytesIO):
    def close(self):
        out["data"] = self.getvalue()
        super().close()
doc = b'{"win_info": [{"userid": "u1", "haswon": "1"}, {"userid": "u2", "haswon": null, "n": 1e400}]}'
write_parquet(RecordStream([doc]).batches(), lambda i: Sink(), background=False)  # as stream.py writes
rows = pq.ParquetFile(io.BytesIO(out["data"])).read().to_pylist()
assert rows == [{"userid": "u1", "haswon": "1", "n": None}, {"userid": "u2", "haswon": None, "n": "1e400"}], rows
plain = [{"userid": f"u{i:05d}", "haswon": str(i % 2)} for i in range(5000)]  # the fast path's Arrow kernels
stream = RecordStream([json.dumps({"win_info": plain}).encode()], batch_bytes=4096, fast_batch_bytes=4096)
write_parquet(stream.batches(), lambda i: Sink(), background=False)
assert stream.fast_ranges > 10 and pq.ParquetFile(io.BytesIO(out["data"])).read().to_pylist() == plain
print("ok")
"""
    functions = Path(bundling.FUNCTIONS_DIR)
    # PYTHONPATH comes before site-packages: the pruned copy is the pyarrow imported (the child asserts it).
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{functions}"}
    done = subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", code, str(site)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
