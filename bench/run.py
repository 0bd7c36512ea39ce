"""``make bench``: exportlake's real copy path vs a plain dlt pipeline vs ``gzip -1``, on the same export files.

Every measured run is a child process; the parent takes its wall time and its own peak RSS from ``os.wait4``. The
moto server runs in a process of its own (its memory is not counted) and the export files are served from a
threaded HTTP server in this process, which also answers the two gateway calls the copier makes.

    python -m bench.run [--sizes 100k,1M,5M] [--shapes win_info,gamification_prize_user_id]
                        [--repeat 3] [--dlt-repeat 1] [--skip-dlt-above N] [--quick] [--skip-package]

Nothing here asserts anything: it measures, prints, and writes ``.bench/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / ".bench"
SEED = 42  # seed % 3 == 0: compact documents, no newline between records
SHAPES = {"win_info": "win-info", "gamification_prize_user_id": "prize-users"}  # document key -> export name
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
MB = 1_000_000  # throughput in decimal MB/s of JSON
MIB = 1 << 20  # memory in MiB

TARGET_RECORDS_PER_S = 400_000
TARGET_RSS_MB = 256
TARGET_DLT_SPEEDUP = 10.0
TARGET_PACKAGE_MB = 250

_ALNUM = string.ascii_lowercase + string.digits


# -- options ----------------------------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    """``100k`` / ``1M`` / ``5m`` / ``250000`` → a record count."""
    t = text.strip().lower().replace("_", "")
    factor = 1
    if t.endswith("k"):
        factor, t = 1_000, t[:-1]
    elif t.endswith("m"):
        factor, t = 1_000_000, t[:-1]
    value = float(t) * factor
    if value <= 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a record count: {text!r}")
    return int(value)


def parse_limit(text: str) -> int:
    """Like :func:`parse_size`, but 0 is allowed (``--skip-dlt-above 0``: no dlt run at all)."""
    return 0 if text.strip() == "0" else parse_size(text)


def label(n: int) -> str:
    """A record count as the options spell it (100k, 1M, 5M)."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="record counts, e.g. 100k,1M,5M (the default)")
    p.add_argument("--shapes", default=None, help=f"document keys, default {','.join(SHAPES)}")
    p.add_argument(
        "--repeat", type=int, default=3, help="runs of exportlake and the floor per file (medians are reported)"
    )
    p.add_argument(
        "--dlt-repeat",
        type=int,
        default=1,
        help="runs of dlt per file, at most --repeat (default 1: ~3 min per 5M file)",
    )
    p.add_argument("--skip-dlt-above", type=parse_limit, default=None, help="no dlt run for files above N records")
    p.add_argument("--quick", action="store_true", help="sizes 100k,1M and the win_info shape only")
    p.add_argument("--skip-package", action="store_true", help="do not build the Lambda package to size it")
    p.add_argument("--taskset", default=None, help="pin every measured child to these CPUs (e.g. 0: one vCPU)")
    p.add_argument("--report", default=None, help="print the tables and targets again from a results JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = args.sizes or "100k,1M"
        args.shapes = args.shapes or "win_info"
    args.sizes = [parse_size(s) for s in (args.sizes or "100k,1M,5M").split(",") if s.strip()]
    args.shapes = [s.strip() for s in (args.shapes or ",".join(SHAPES)).split(",") if s.strip()]
    for shape in args.shapes:
        if shape not in SHAPES:
            p.error(f"unknown shape {shape!r} (choose from {', '.join(SHAPES)})")
    if args.repeat < 1 or args.dlt_repeat < 0:
        p.error("--repeat must be >= 1 and --dlt-repeat >= 0")
    return args


# -- data -------------------------------------------------------------------------------------------------------
def export_file(shape: str, n: int) -> Path:
    """The cached export document of ``n`` records of ``shape``, generated (streamed) on first use."""
    from exportlake.local.sampledata import iter_document_bytes

    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"{shape}-{label(n)}-s{SEED}.json"
    if path.exists():
        return path
    started = time.perf_counter()
    tmp = path.with_suffix(".json.part")
    with tmp.open("wb") as f:
        for chunk in iter_document_bytes(shape, n, SEED, chunk_size=4 << 20):
            f.write(chunk)
    tmp.rename(path)
    print(f"  generated {path.name}: {path.stat().st_size / MB:.0f} MB in {time.perf_counter() - started:.0f} s")
    return path


def new_result_id() -> str:
    """A fresh 25-character result id, like the gateway's."""
    return "".join(secrets.choice(_ALNUM) for _ in range(25))


# -- the local gateway + object store ---------------------------------------------------------------------------
class BenchServer:
    """Serves the export files and answers the gateway's token and fetch calls, on 127.0.0.1."""

    def __init__(self) -> None:
        self.token = {"token_type": "Bearer", "expires_in": 3600, "access_token": "bench"}
        self.files: dict[str, Path] = {}  # name -> file
        self.results: dict[str, str] = {}  # result id -> file name
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/api/1/oauth2/access_token":
                    self._json(200, outer.token)
                else:
                    self._json(404, {"error": "not found"})

            def do_GET(self) -> None:
                prefix = "/api/1/data-exporter/automated/fetch/"
                if self.path.startswith(prefix):
                    rid = self.path[len(prefix) :]
                    name = outer.results.get(rid)
                    if name is None:
                        self._json(404, {"error": "no such result"})
                        return
                    self._json(200, {"result": {"id": rid, "download_url": f"{outer.base_url}/files/{name}"}})
                elif self.path.startswith("/files/") and self.path[len("/files/") :] in outer.files:
                    path = outer.files[self.path[len("/files/") :]]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(path.stat().st_size))
                    self.end_headers()
                    self.wfile.flush()
                    with path.open("rb") as f, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.request.sendfile(f)  # zero-copy: the server costs next to no CPU
                else:
                    self._json(404, {"error": "not found"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def add_file(self, path: Path) -> str:
        """Serve ``path``; return its download URL."""
        self.files[path.name] = path
        return f"{self.base_url}/files/{path.name}"

    def add_result(self, result_id: str, path: Path) -> None:
        """Make ``fetch/<result_id>`` point at ``path``."""
        self.add_file(path)
        self.results[result_id] = path.name

    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class MotoProcess:
    """``moto_server`` in its own process on a free loopback port."""

    def __init__(self) -> None:
        from exportlake.local.aws import free_port

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoProcess:
        import requests

        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        argv = [*cmd, "-H", "127.0.0.1", "-p", str(self.port)]
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.endpoint}/moto-api/", timeout=2)
                return self
            except requests.RequestException:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def aws_env(moto: MotoProcess, server: BenchServer) -> dict[str, str]:
    """The exportlake settings for the benchmark (moto + the local gateway)."""
    from exportlake.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, demo_env

    return demo_env(moto.endpoint, server.base_url, LOCAL_REGION, LOCAL_ACCOUNT)


def provision_aws(env: dict[str, str]) -> Callable[[str], Any]:
    """Create every resource the copier needs plus the API secret; return a ``service -> client`` factory."""
    import boto3

    from exportlake.local.aws import provision
    from exportlake.settings import Settings

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    cache: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]
        return cache[service]

    settings = Settings.from_env(env)
    provision(settings, clients)
    clients("secretsmanager").create_secret(
        Name=env["EXPORTLAKE_SECRET_ID"],
        SecretString=json.dumps({"client_id": "bench", "client_secret": "bench-secret"}),
    )
    return clients


# -- measuring --------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One measured child process."""

    tool: str
    shape: str
    records: int
    json_bytes: int
    wall_s: float
    work_s: float | None
    peak_rss_mb: float
    verified_rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the output holds exactly the file's records (always for the floor)."""
        return self.tool == "gzip -1" or self.verified_rows == self.records


class Spawner:
    """``bench.spawn`` in its own small process: it starts each measured child (see its docstring for why)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.spawn"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            text=True,
        )

    def run(self, cmd: list[str], env: dict[str, str] | None, stdout: str | None, stderr: str) -> dict[str, Any]:
        """Run ``cmd`` to completion; its wall seconds, ``maxrss_kib`` and return code."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        req = {"cmd": cmd, "env": env, "cwd": str(REPO_ROOT), "stdout": stdout, "stderr": stderr}
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the spawner died")
        return dict(json.loads(line))

    def close(self) -> None:
        """Let the spawner end."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)


_spawner: Spawner | None = None
_cpu_prefix: list[str] = []  # ["taskset", "-c", CPUS] with --taskset


def measure(
    cmd: list[str], env: dict[str, str] | None = None, stdout_to_null: bool = False
) -> tuple[float, float, str]:
    """Run ``cmd`` as a child (of the spawner); return (wall seconds, its own peak RSS in MiB, its stdout)."""
    global _spawner  # noqa: PLW0603 - one spawner per harness run
    if _spawner is None:
        _spawner = Spawner()
    with tempfile.TemporaryDirectory(prefix="bench-io-") as io_dir:
        out, err = os.path.join(io_dir, "out"), os.path.join(io_dir, "err")
        child_env = env if env is not None else dict(os.environ)
        reply = _spawner.run([*_cpu_prefix, *cmd], child_env, None if stdout_to_null else out, err)
        stdout = "" if stdout_to_null else Path(out).read_text(errors="replace")
        stderr = Path(err).read_text(errors="replace")
    if reply["returncode"] != 0:
        raise RuntimeError(f"{cmd[:4]} exited with {reply['returncode']}:\n{stderr[-4000:]}")
    return reply["wall_s"], reply["maxrss_kib"] / 1024, stdout  # Linux: ru_maxrss is in KiB


def last_json_line(stdout: str) -> dict[str, Any]:
    """The JSON line a job printed last."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"no result line in the job's output: {stdout[-500:]!r}")


def warm(path: Path) -> None:
    """Read ``path`` once, untimed, so each measured tool starts on a file in the page cache.

    This machine's disk is slow and its page cache is reclaimed within minutes (a cold 5M file made ``gzip -1``
    take 39 s instead of 7 s), while the measured work is a copy from the network, not from this disk.
    """
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def run_exportlake(
    path: Path, shape: str, n: int, server: BenchServer, env: dict[str, str], clients: Callable[[str], Any]
) -> Run:
    """The real copy path in a child; verify the manifest's row count afterwards, then drop the objects."""
    rid = new_result_id()
    server.add_result(rid, path)
    child_env = {**os.environ, **env, "POWERTOOLS_METRICS_NAMESPACE": "bench"}
    wall, rss, stdout = measure([sys.executable, "-m", "bench.jobs", "exportlake", SHAPES[shape], rid], child_env)
    result = last_json_line(stdout)
    s3, bucket = clients("s3"), env["EXPORTLAKE_BUCKET"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=result["manifest_key"])["Body"].read())
    run = Run("exportlake", shape, n, path.stat().st_size, wall, result["work_s"], rss, int(manifest["rows"]))
    run.extra = {
        "start_s": result["start_s"],
        "parts": len(manifest["parts"]),
        "parquet_bytes": sum(p["bytes"] for p in manifest["parts"]),
        "raw_gzip_bytes": manifest["raw"]["gzip_bytes"],
    }
    # Keep moto's memory bounded across runs: the objects are verified, drop them (outside the timing).
    keys = [manifest["raw"]["key"], result["manifest_key"], *(p["key"] for p in manifest["parts"])]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    return run


def run_dlt(path: Path, shape: str, n: int, server: BenchServer) -> Run:
    """A plain dlt pipeline in a child (its own temp working dir, no telemetry); count the rows it wrote."""
    import pyarrow.parquet as pq

    url = server.add_file(path)
    work = Path(tempfile.mkdtemp(prefix="bench-dlt-"))
    try:
        env = {
            **os.environ,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "DLT_DATA_DIR": str(work / "data"),
            "DLT_PROJECT_DIR": str(work),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        wall, rss, stdout = measure([sys.executable, "-m", "bench.jobs", "dlt", url, shape, str(work)], env)
        result = last_json_line(stdout)
        files = sorted((work / "lake" / "bench" / shape).rglob("*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        run = Run("dlt", shape, n, path.stat().st_size, wall, result["work_s"], rss, rows)
        run.extra = {"parquet_files": len(files), "parquet_bytes": sum(f.stat().st_size for f in files)}
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_floor(path: Path, shape: str, n: int) -> Run:
    """``gzip -1`` over the same bytes: the cheapest thing that reads and transforms every byte."""
    wall, rss, _ = measure(["gzip", "-1", "-c", str(path)], stdout_to_null=True)
    return Run("gzip -1", shape, n, path.stat().st_size, wall, None, rss)


# -- the package and the import time ----------------------------------------------------------------------------
def start_package_build(target: Path) -> subprocess.Popen[bytes]:
    """Build the Lambda asset with ``infra.bundling.LocalPythonBundling`` into ``target`` (in a child)."""
    code = (
        "import sys; from infra.bundling import LocalPythonBundling; "
        "LocalPythonBundling().try_bundle(sys.argv[1], None)"
    )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    log = (BENCH_DIR / "package-build.log").open("wb")
    return subprocess.Popen([sys.executable, "-c", code, str(target)], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)


def package_report(target: Path) -> dict[str, Any]:
    """Total unzipped size and the biggest top-level packages of the built asset."""
    sizes: dict[str, int] = {}
    for f in target.rglob("*"):
        if f.is_file():
            top = f.relative_to(target).parts[0]
            if top.endswith(".dist-info"):
                top = top.split("-")[0].lower()
            elif top.endswith(".libs"):  # auditwheel's vendored shared libraries (numpy.libs, pyarrow.libs)
                top = top[: -len(".libs")]
            else:
                top = top.removesuffix(".py")
            sizes[top] = sizes.get(top, 0) + f.stat().st_size
    total = sum(sizes.values())
    top5 = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)[:5]
    return {
        "total_mb": total / MIB,
        "top": [{"name": k, "mb": v / MIB} for k, v in top5],
        "entries": len(sizes),
    }


def import_time(repeats: int = 5) -> dict[str, float]:
    """Median wall seconds of a bare interpreter and of one importing the copier handler (each in a child)."""

    def median_of(code: str) -> float:
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=os.environ.copy())
            walls.append(time.perf_counter() - started)
        return statistics.median(walls)

    bare = median_of("pass")
    handler = median_of("import exportlake.handlers.copier")
    return {"python_pass_s": bare, "import_handler_s": handler, "import_only_s": handler - bare}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- summary ----------------------------------------------------------------------------------------------------
@dataclass
class Row:
    """Medians of one tool on one file."""

    tool: str
    shape: str
    records: int
    json_mb: float
    runs: int
    wall_s: float
    work_s: float | None
    peak_rss_mb: float
    verified: bool
    #: The median of the runs' peaks: what the flatness check compares (a single peak varies by ~5 MB run to run).
    median_rss_mb: float = 0.0
    #: The lowest of the runs' peaks (with ``peak_rss_mb``, the spread between runs of the same file).
    min_rss_mb: float = 0.0

    @property
    def records_per_s(self) -> float:
        """Whole child process, interpreter start included."""
        return self.records / self.wall_s

    @property
    def work_records_per_s(self) -> float | None:
        """The copy call alone (no interpreter start, no imports)."""
        return self.records / self.work_s if self.work_s else None

    @property
    def mb_per_s(self) -> float:
        """JSON MB per wall second."""
        return self.json_mb / self.wall_s


def summarize(runs: list[Run]) -> list[Row]:
    """One row per (shape, size, tool) with medians over the repeats."""
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.shape, r.records, r.tool), []).append(r)
    rows = []
    for (shape, n, tool), rs in groups.items():
        works = [r.work_s for r in rs if r.work_s is not None]
        rows.append(
            Row(
                tool=tool,
                shape=shape,
                records=n,
                json_mb=rs[0].json_bytes / MB,
                runs=len(rs),
                wall_s=statistics.median(r.wall_s for r in rs),
                work_s=statistics.median(works) if works else None,
                peak_rss_mb=max(r.peak_rss_mb for r in rs),
                median_rss_mb=statistics.median(r.peak_rss_mb for r in rs),
                min_rss_mb=min(r.peak_rss_mb for r in rs),
                verified=all(r.ok for r in rs),
            )
        )
    return rows


def find(rows: list[Row], shape: str, n: int, tool: str) -> Row | None:
    """The row of one tool on one file, if it ran."""
    return next((r for r in rows if (r.shape, r.records, r.tool) == (shape, n, tool)), None)


def ratios(rows: list[Row], shape: str, n: int) -> dict[str, float | None]:
    """exportlake's speed-up over dlt (wall time) and its records/s relative to the floor's."""
    ex, dl, fl = (find(rows, shape, n, t) for t in ("exportlake", "dlt", "gzip -1"))
    return {
        "speedup_vs_dlt": dl.wall_s / ex.wall_s if ex and dl else None,
        "speedup_vs_dlt_work": dl.work_s / ex.work_s if ex and dl and ex.work_s and dl.work_s else None,
        "vs_floor": ex.records_per_s / fl.records_per_s if ex and fl else None,
    }


def targets(rows: list[Row], package: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each target of issue 4 with the measured figure and whether it is met."""
    out: list[dict[str, Any]] = []
    ex_rows = sorted((r for r in rows if r.tool == "exportlake"), key=lambda r: (r.shape, r.records))
    # Throughput and the dlt ratio are judged on the large files (1M and up), where the conversion dominates; at
    # 100k the ~0.6 s of interpreter start and imports is most of a run. Throughput is the copy call (download
    # → raw archive → Parquet → multipart → catalog → ledger → SNS), the whole-process figure stands beside it.
    big_rows = [r for r in ex_rows if r.records >= 1_000_000]
    for r in big_rows:
        if r.shape == "win_info":
            work = r.work_records_per_s or 0.0
            out.append(
                {
                    "target": f"win_info {label(r.records)}: >= {TARGET_RECORDS_PER_S:,} records/s",
                    "measured": f"{work:,.0f}/s copy call, {r.records_per_s:,.0f}/s whole process",
                    "met": work >= TARGET_RECORDS_PER_S,
                }
            )
    for r in ex_rows:
        out.append(
            {
                "target": f"{r.shape} {label(r.records)}: peak RSS <= {TARGET_RSS_MB} MB",
                "measured": f"{r.peak_rss_mb:.0f} MB",
                "met": r.peak_rss_mb <= TARGET_RSS_MB,
            }
        )
    for shape in sorted({r.shape for r in ex_rows}):
        small, big = find(rows, shape, 1_000_000, "exportlake"), find(rows, shape, 5_000_000, "exportlake")
        if small and big:
            out.append(
                {
                    "target": f"{shape}: peak RSS flat, 5M <= 1M (medians of {big.runs} and {small.runs} runs)",
                    "measured": f"5M {big.median_rss_mb:.0f} MB vs 1M {small.median_rss_mb:.0f} MB"
                    + (  # the spread between runs of one file, for scale
                        f" (runs {big.min_rss_mb:.0f}-{big.peak_rss_mb:.0f} vs {small.min_rss_mb:.0f}-"
                        f"{small.peak_rss_mb:.0f})"
                        if big.runs > 1 or small.runs > 1
                        else ""
                    ),
                    "met": big.median_rss_mb <= small.median_rss_mb,
                }
            )
    for r in big_rows:
        sp = ratios(rows, r.shape, r.records)["speedup_vs_dlt"]
        if sp is not None:
            out.append(
                {
                    "target": f"{r.shape} {label(r.records)}: >= {TARGET_DLT_SPEEDUP:.0f}x dlt (wall)",
                    "measured": f"{sp:.1f}x",
                    "met": sp >= TARGET_DLT_SPEEDUP,
                }
            )
    if package is not None:
        out.append(
            {
                "target": f"Lambda package <= {TARGET_PACKAGE_MB} MB unzipped",
                "measured": f"{package['total_mb']:.1f} MB",
                "met": package["total_mb"] <= TARGET_PACKAGE_MB,
            }
        )
    if any(not r.verified for r in rows):
        out.append({"target": "every output holds every record", "measured": "row count mismatch", "met": False})
    return out


def fmt(value: float | None, spec: str) -> str:
    """Format or dash."""
    return "–" if value is None else format(value, spec)


def markdown(rows: list[Row]) -> str:
    """The results as a markdown table (for README / docs)."""
    head = (
        "| shape | records | JSON MB | tool | wall s | copy s | records/s | MB/s | peak RSS MB | vs dlt | vs floor |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in sorted(rows, key=lambda r: (list(SHAPES).index(r.shape), r.records, _TOOL_ORDER.index(r.tool))):
        rt = ratios(rows, r.shape, r.records) if r.tool == "exportlake" else {}
        sp, fl = rt.get("speedup_vs_dlt"), rt.get("vs_floor")
        lines.append(
            f"| {r.shape} | {label(r.records)} | {r.json_mb:.0f} | {r.tool} | {r.wall_s:.2f} | {fmt(r.work_s, '.2f')} "
            f"| {r.records_per_s:,.0f} | {r.mb_per_s:.1f} | {r.peak_rss_mb:.0f} "
            f"| {fmt(sp, '.1f') + 'x' if sp else '–'} | {fmt(fl, '.2f') + 'x' if fl else '–'} |"
        )
    return "\n".join(lines)


_TOOL_ORDER = ["exportlake", "dlt", "gzip -1"]


def print_report(
    rows: list[Row], package: dict[str, Any] | None, imports: dict[str, float], checks: list[dict[str, Any]]
) -> None:
    """Rich tables per file, then package, import time and the targets."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    files = sorted({(r.shape, r.records) for r in rows}, key=lambda k: (list(SHAPES).index(k[0]), k[1]))
    for shape, n in files:
        some = find(rows, shape, n, "exportlake") or next(r for r in rows if (r.shape, r.records) == (shape, n))
        table = Table(title=f"{shape}, {label(n)} records, {some.json_mb:.0f} MB JSON")
        for col in ("tool", "wall s", "copy s", "records/s", "MB/s", "peak RSS MB", "rows ok"):
            table.add_column(col, justify="left" if col == "tool" else "right")
        for tool in _TOOL_ORDER:
            r = find(rows, shape, n, tool)
            if r is None:
                continue
            table.add_row(
                tool,
                f"{r.wall_s:.2f}",
                fmt(r.work_s, ".2f"),
                f"{r.records_per_s:,.0f}",
                f"{r.mb_per_s:.1f}",
                f"{r.peak_rss_mb:.0f}",
                "yes" if r.verified else "NO",
            )
        rt = ratios(rows, shape, n)
        caption = []
        if rt["speedup_vs_dlt"] is not None:
            work = fmt(rt["speedup_vs_dlt_work"], ".1f")
            caption.append(f"exportlake/dlt: {rt['speedup_vs_dlt']:.1f}x faster (copy call {work}x)")
        if rt["vs_floor"] is not None:
            caption.append(f"exportlake/floor records/s: {rt['vs_floor']:.2f}x")
        table.caption = " · ".join(caption)
        console.print(table)
    console.print(
        "[dim]wall s = the whole child process (interpreter start, imports and building the copier included); "
        "copy s = the copy call alone, measured inside the child; records/s and MB/s use wall s.[/dim]"
    )
    if package is not None:
        top = ", ".join(f"{p['name']} {p['mb']:.1f}" for p in package["top"])
        console.print(f"Lambda package (unzipped): [bold]{package['total_mb']:.1f} MB[/bold]; largest (MB): {top}")
    console.print(
        f"Import time (median of 5 children): python -c pass {imports['python_pass_s'] * 1000:.0f} ms, "
        f"import exportlake.handlers.copier {imports['import_handler_s'] * 1000:.0f} ms "
        f"(+{imports['import_only_s'] * 1000:.0f} ms)"
    )
    table = Table(title="Targets (issue 4)")
    for col in ("target", "measured", "result"):
        table.add_column(col)
    for c in checks:
        table.add_row(c["target"], c["measured"], "[green]target met[/green]" if c["met"] else "[red]missed[/red]")
    console.print(table)


# -- main -------------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Generate, serve, measure, print, write ``.bench/results.json``."""
    global _spawner  # noqa: PLW0603 - one spawner per harness run
    args = parse_args(argv)
    if args.report:
        return report_again(Path(args.report))
    BENCH_DIR.mkdir(exist_ok=True)
    _spawner = Spawner()  # first, while this process is still small
    if args.taskset:
        _cpu_prefix[:] = ["taskset", "-c", args.taskset]
    print(f"exportlake bench: sizes {', '.join(map(label, args.sizes))}; shapes {', '.join(args.shapes)}; "
          f"repeat {args.repeat} (dlt {min(args.dlt_repeat, args.repeat)})"
          + (f"; children pinned to CPUs {args.taskset}" if args.taskset else ""))  # fmt: skip
    package_dir = Path(tempfile.mkdtemp(prefix="bench-package-"))
    build = None if args.skip_package else start_package_build(package_dir)
    files = {(shape, n): export_file(shape, n) for shape in args.shapes for n in args.sizes}
    package: dict[str, Any] | None = None
    if build is not None:
        if build.wait() == 0:
            package = package_report(package_dir)
        else:
            print(f"  package build failed; see {BENCH_DIR / 'package-build.log'}")
    shutil.rmtree(package_dir, ignore_errors=True)

    runs: list[Run] = []
    with BenchServer() as server, MotoProcess() as moto:
        env = aws_env(moto, server)
        clients = provision_aws(env)
        for n in args.sizes:
            for shape in args.shapes:
                path = files[(shape, n)]
                for i in range(args.repeat):
                    tag = f"  {shape} {label(n)} #{i + 1}:"
                    warm(path)
                    r = run_exportlake(path, shape, n, server, env, clients)
                    runs.append(r)
                    print(f"{tag} exportlake {r.wall_s:.2f}s {r.peak_rss_mb:.0f}MB rows={r.verified_rows}", flush=True)
                    if i < args.dlt_repeat and (args.skip_dlt_above is None or n <= args.skip_dlt_above):
                        warm(path)
                        r = run_dlt(path, shape, n, server)
                        runs.append(r)
                        print(f"{tag} dlt {r.wall_s:.2f}s {r.peak_rss_mb:.0f}MB rows={r.verified_rows}", flush=True)
                    warm(path)
                    r = run_floor(path, shape, n)
                    runs.append(r)
                    print(f"{tag} gzip -1 {r.wall_s:.2f}s {r.peak_rss_mb:.0f}MB", flush=True)

    _spawner.close()
    imports = import_time()
    rows = summarize(runs)
    checks = targets(rows, package)
    print_report(rows, package, imports, checks)
    table = markdown(rows)
    print("\nMarkdown:\n")
    print(table)
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "options": {
            "sizes": args.sizes,
            "shapes": args.shapes,
            "repeat": args.repeat,
            "dlt_repeat": args.dlt_repeat,
            "seed": SEED,
            "taskset": args.taskset,
        },
        "runs": [asdict(r) for r in runs],
        "summary": [
            {**asdict(r), "records_per_s": r.records_per_s, "mb_per_s": r.mb_per_s, **ratios(rows, r.shape, r.records)}
            for r in rows
        ],
        "package": package,
        "import_time": imports,
        "targets": checks,
        "markdown": table,
    }
    out = BENCH_DIR / (f"results-taskset-{args.taskset}.json" if args.taskset else "results.json")
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out.relative_to(REPO_ROOT)}")
    return 0


def report_again(path: Path) -> int:
    """Print the tables and targets of an earlier run from its results JSON."""
    data = json.loads(path.read_text())
    runs = [Run(**r) for r in data["runs"]]
    rows = summarize(runs)
    checks = targets(rows, data.get("package"))
    print_report(rows, data.get("package"), data.get("import_time"), checks)
    print("\nMarkdown:\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
