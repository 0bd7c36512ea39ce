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
    for rel in ("__init__.py", "settings.py", "cli.py", "handlers/planner.py", "local/sim.py", "__pycache__/x.pyc"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    return root


def test_asset_excludes_cli_local_and_caches(tmp_path: Path) -> None:
    root = make_package(tmp_path)
    files = {p.as_posix() for p in bundling.runtime_files(root)}
    assert files == {"exportlake/__init__.py", "exportlake/settings.py", "exportlake/handlers/planner.py"}


def test_asset_hash_follows_shipped_code_and_pins(tmp_path: Path) -> None:
    root = make_package(tmp_path / "functions")
    req = tmp_path / "requirements.txt"
    req.write_text("pyarrow==1\n")
    first = bundling.asset_hash(root, req)
    (root / "exportlake" / "cli.py").write_text("# changed, not shipped\n")
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
    assert not any(f.startswith("exportlake/local/") or f == "exportlake/cli.py" for f in files)
