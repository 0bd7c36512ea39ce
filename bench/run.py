"""``make bench``: the whole ``exportlake sync`` process vs a plain dlt pipeline vs ``gzip -1``, on the same files.

What a one-vCPU Lambda bills is the process's CPU time, so the headline figure is **records per CPU-second of the
whole ``exportlake sync`` child** (start to exit, user + system time of all its threads from ``os.wait4``), on data
with real-export cardinalities (``bench.realdata``: a random 25-character ``userid`` per record, 500 ``stackid``,
``json.dumps`` default separators, one line). Beside it: the copy call's own wall time (``bench.jobs``), dlt and
``gzip -1`` over the same bytes in the same run, peak RSS, a profile summary of one copy, the Lambda package size,
the copier's cold import time, and a backfill scale run (many exports x many small results).

    python -m bench.run [--sizes 1M,5M] [--repeat 3] [--dlt-repeat 1] [--skip-dlt-above N] [--quick]
                        [--skip-package] [--no-profile] [--scale 1000,10000] [--taskset CPUS]

Nothing here asserts anything: it measures, prints, and writes ``.bench/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from urllib.parse import parse_qs, unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / ".bench"
SEED = 42
SHAPES = {"win_info": "win-info", "gamification_prize_user_id": "prize-users"}  # document key -> export name
DEFAULT_SIZES = (1_000_000, 5_000_000)
MB = 1_000_000  # throughput in decimal MB/s of JSON
MIB = 1 << 20  # memory in MiB

#: Targets of issue 10 (records per CPU-second of the whole sync process; peak RSS; package; cold import).
TARGET_CPU_RATE = {1_000_000: 380_000, 5_000_000: 450_000}
TARGET_RSS_MB = 200
TARGET_FLAT = 0.05  # the 5M peak within 5 % of the 1M peak
TARGET_PACKAGE_MB = 150
TARGET_IMPORT_S = 0.5

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
    p.add_argument("--sizes", default=None, help="record counts, e.g. 1M,5M (default 1M; --full: 1M,5M)")
    p.add_argument("--shapes", default=None, help="document keys, default win_info (realistic ids)")
    p.add_argument(
        "--data",
        choices=("realistic", "sample"),
        default="realistic",
        help="realistic: a random id per record (bench.realdata; win_info); sample: exportlake.emulator.sampledata",
    )
    p.add_argument("--repeat", type=int, default=None, help="runs of exportlake sync and the floor per file (3)")
    p.add_argument("--dlt-repeat", type=int, default=None, help="runs of dlt per file, at most --repeat (--full: 1)")
    p.add_argument("--skip-dlt-above", type=parse_limit, default=None, help="no dlt run for files above N records")
    p.add_argument(
        "--full",
        action="store_true",
        help="the whole issue-10 run: 1M and 5M, dlt, the Lambda package, the backfill scale (~15 min)",
    )
    p.add_argument("--quick", action="store_true", help="1M, one run of each (~1 min); no profile")
    p.add_argument("--skip-package", action="store_true", help="do not build the Lambda package to size it")
    p.add_argument("--no-profile", action="store_true", help="skip the profile summary of one copy")
    p.add_argument(
        "--scale", default=None, help="backfill sizes in results (exports x 50 results each; --full: 1000,10000)"
    )
    p.add_argument(
        "--scale-sync-max",
        type=parse_limit,
        default=1000,
        help="run the whole sync of a backfill only up to this many results (the planner runs at every size)",
    )
    p.add_argument(
        "--against",
        default="auto",
        help="also run `exportlake sync` with the runtime package of this git ref, interleaved (default auto: the"
        " merge-base with main when its functions/ differ from the worktree's; none: no baseline)",
    )
    p.add_argument("--taskset", default=None, help="pin every measured child to these CPUs (e.g. 0: one vCPU)")
    p.add_argument("--report", default=None, help="print the tables and targets again from a results JSON file")
    p.add_argument(
        "--year-two",
        choices=("all", "no-op", "backfill"),
        nargs="?",
        const="all",
        default=None,
        help="only the year-two run (bench.yeartwo): a no-op sync over 10 x 8,760 results and a 1,000-result"
        " backfill, each beside the baseline (~10 min)",
    )
    args = p.parse_args(argv)
    # The default run is short (1M, 3 runs, the baseline beside it, the profile); --full is the issue's whole run.
    args.sizes = args.sizes or ("1M,5M" if args.full else "1M")
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.dlt_repeat is None:
        args.dlt_repeat = 1 if args.full else 0
    args.skip_package = args.skip_package or not args.full
    args.scale = args.scale or ("1000,10000" if args.full else "0")
    args.no_profile = args.no_profile or args.quick
    args.against = resolve_baseline(args.against)
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    args.shapes = [s.strip() for s in (args.shapes or "win_info").split(",") if s.strip()]
    args.scale = [int(parse_limit(s)) for s in str(args.scale).split(",") if s.strip() and s.strip() != "0"]
    for shape in args.shapes:
        if shape not in SHAPES:
            p.error(f"unknown shape {shape!r} (choose from {', '.join(SHAPES)})")
        if args.data == "realistic" and shape != "win_info":
            p.error(f"--data realistic generates win_info only; use --data sample for {shape}")
    if args.repeat < 1 or args.dlt_repeat < 0:
        p.error("--repeat must be >= 1 and --dlt-repeat >= 0")
    return args


# -- data -------------------------------------------------------------------------------------------------------
def export_file(shape: str, n: int, data: str = "realistic") -> Path:
    """The cached export document of ``n`` records of ``shape``, generated (streamed) on first use."""
    BENCH_DIR.mkdir(exist_ok=True)
    if data == "realistic":
        from bench.realdata import write_document

        path = BENCH_DIR / f"{shape}-{label(n)}-real{SEED}.json"
        if not path.exists():
            started = time.perf_counter()
            write_document(path, shape, n, SEED)
            took = time.perf_counter() - started
            print(f"  generated {path.name}: {path.stat().st_size / MB:.0f} MB in {took:.0f} s", flush=True)
        return path
    from exportlake.emulator.sampledata import iter_document_bytes

    path = BENCH_DIR / f"{shape}-{label(n)}-s{SEED}.json"
    if path.exists():
        return path
    tmp = path.with_suffix(".json.part")
    with tmp.open("wb") as f:
        for chunk in iter_document_bytes(shape, n, SEED, chunk_size=4 << 20):
            f.write(chunk)
    tmp.rename(path)
    return path


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (to check the raw archive's recorded digest against the served bytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def new_result_id() -> str:
    """A fresh 25-character result id, like the gateway's."""
    return "".join(secrets.choice(_ALNUM) for _ in range(25))


# -- the local gateway + object store ---------------------------------------------------------------------------
class BenchServer:
    """A minimal NeoDay gateway and object store on 127.0.0.1: token, export list, results (paged), fetch, files.

    ``listing`` (export name -> result items) is what the planner sees; each measured sync sets it to the new
    results only, so one sync copies exactly them. Requests are counted (``requests``) for the scale figures.
    """

    def __init__(self) -> None:
        self.token = {"token_type": "Bearer", "expires_in": 3600, "access_token": "bench"}
        self.files: dict[str, Path] = {}  # name -> file
        self.results: dict[str, str] = {}  # result id -> file name
        self.listing: dict[str, list[dict[str, Any]]] = {}
        self.requests = 0
        self._lock = threading.Lock()
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
                outer.count()
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/api/1/oauth2/access_token":
                    self._json(200, outer.token)
                else:
                    self._json(404, {"error": "not found"})

            def do_GET(self) -> None:
                outer.count()
                parts = urlsplit(self.path)
                path = parts.path
                base = "/api/1/data-exporter/automated"
                fetch = f"{base}/fetch/"
                if path == base:
                    body = [
                        {"id": str(i), "system_name": name, "last_run": items[-1] if items else None}
                        for i, (name, items) in enumerate(sorted(outer.listing.items()))
                    ]
                    self._json(200, body)
                elif path.startswith(fetch):
                    rid = path[len(fetch) :]
                    name = outer.results.get(rid)
                    if name is None:
                        self._json(404, {"error": "no such result"})
                        return
                    self._json(200, {"result": {"id": rid, "download_url": f"{outer.base_url}/files/{name}"}})
                elif path.startswith(base + "/") and path.endswith("/results"):
                    export = unquote(path[len(base) + 1 : -len("/results")])
                    query = parse_qs(parts.query)
                    page = int(query.get("page", ["1"])[0])
                    per = int(query.get("perPage", ["10"])[0])
                    items = outer.listing.get(export, [])
                    self._json(200, {"results": items[(page - 1) * per : page * per], "total": len(items)})
                elif path.startswith("/files/") and path[len("/files/") :] in outer.files:
                    file = outer.files[path[len("/files/") :]]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(file.stat().st_size))
                    self.end_headers()
                    self.wfile.flush()
                    with file.open("rb") as f, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.request.sendfile(f)  # zero-copy: the server costs next to no CPU
                else:
                    self._json(404, {"error": "not found"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def count(self) -> None:
        """One more request served."""
        with self._lock:
            self.requests += 1

    def add_file(self, path: Path) -> str:
        """Serve ``path``; return its download URL."""
        self.files[path.name] = path
        return f"{self.base_url}/files/{path.name}"

    def add_result(self, result_id: str, path: Path) -> None:
        """Make ``fetch/<result_id>`` point at ``path``."""
        self.add_file(path)
        self.results[result_id] = path.name

    def list_only(self, export_name: str, result_ids: Sequence[str]) -> None:
        """Make the export list and results pages show only ``result_ids`` of ``export_name``."""
        self.listing = {export_name: [result_item(rid) for rid in result_ids]}

    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def result_item(result_id: str) -> dict[str, Any]:
    """A results-list item created now, expiring in a week."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    return {
        "id": result_id,
        "created_at": stamp,
        "expires_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 7 * 86400)),
    }


class MotoProcess:
    """``moto_server`` in its own process on a free loopback port."""

    def __init__(self) -> None:
        from exportlake.emulator.provision import free_port

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
    from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, demo_env

    return demo_env(moto.endpoint, server.base_url, LOCAL_REGION, LOCAL_ACCOUNT)


def provision_aws(env: dict[str, str]) -> Callable[[str], Any]:
    """Create every resource the copier needs plus the API secret; return a ``service -> client`` factory."""
    import boto3

    from exportlake.emulator.provision import provision
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
    cpu_s: float
    peak_rss_mb: float
    verified_rows: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the output holds exactly the file's records (always for the floor)."""
        return self.tool == "gzip -1" or (self.verified_rows == self.records and self.extra.get("sha_ok", True))


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
        """Run ``cmd`` to completion; its wall and CPU seconds, ``maxrss_kib`` and return code."""
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


@dataclass
class Measured:
    """What the spawner reports of one child."""

    wall_s: float
    cpu_s: float
    rss_mb: float
    stdout: str


def measure(cmd: list[str], env: dict[str, str] | None = None, stdout_to_null: bool = False) -> Measured:
    """Run ``cmd`` as a child (of the spawner); its wall and CPU seconds, its own peak RSS in MiB, its stdout."""
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
        raise RuntimeError(f"{cmd[:4]} exited with {reply['returncode']}:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    # Linux: ru_maxrss is in KiB
    return Measured(reply["wall_s"], reply["cpu_s"], reply["maxrss_kib"] / 1024, stdout)


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


def exportlake_exe() -> str:
    """The ``exportlake`` console script of this interpreter's environment."""
    exe = Path(sys.executable).with_name("exportlake")
    if not exe.exists():
        raise RuntimeError(f"{exe} not found: run `make setup` first")
    return str(exe)


def _child_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env, "POWERTOOLS_METRICS_NAMESPACE": "bench", "NO_PROXY": "127.0.0.1,localhost"}


def _verify_and_drop(
    shape: str, export_name: str, result_id: str, env: dict[str, str], clients: Callable[[str], Any]
) -> dict[str, Any]:
    """Read the result's manifest (rows, sizes, raw digest), then delete its objects so moto's memory stays flat."""
    from exportlake.domain.naming import manifest_key

    s3, bucket = clients("s3"), env["EXPORTLAKE_BUCKET"]
    mkey = manifest_key(export_name, result_id)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=mkey)["Body"].read())
    keys = [manifest["raw"]["key"], mkey, *(p["key"] for p in manifest["parts"])]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    return {
        "rows": int(manifest["rows"]),
        "parts": len(manifest["parts"]),
        "parquet_bytes": sum(p["bytes"] for p in manifest["parts"]),
        "raw_gzip_bytes": manifest["raw"]["gzip_bytes"],
        "sha256": manifest["raw"]["sha256"],
    }


def run_sync(
    path: Path,
    shape: str,
    n: int,
    server: BenchServer,
    env: dict[str, str],
    clients: Callable[[str], Any],
    digest: str,
    code: tuple[str, Path] | None = None,
) -> Run:
    """``exportlake sync`` as a user runs it (planner + copier handlers, moto), on one new result of ``path``.

    ``code`` = (ref, dir): run the runtime package of another commit (``--against``) instead of the worktree's.
    """
    rid = new_result_id()
    export_name = SHAPES[shape]
    server.add_result(rid, path)
    server.list_only(export_name, [rid])
    child = _child_env(env)
    tool = "exportlake sync"
    if code is not None:
        child["PYTHONPATH"] = str(code[1])
        tool = f"exportlake sync @{code[0]}"
    m = measure([exportlake_exe(), "sync"], child)
    info = _verify_and_drop(shape, export_name, rid, env, clients)
    run = Run(tool, shape, n, path.stat().st_size, m.wall_s, m.cpu_s, m.rss_mb, info["rows"])
    run.extra = {**info, "sha_ok": info["sha256"] == digest}
    return run


def _git(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def resolve_baseline(against: str | None) -> str | None:
    """The git ref to measure beside the worktree: ``auto`` = the merge-base with ``main`` when its ``functions/``
    differ from the worktree's (a branch's "before"), else none; ``none`` = none; anything else as given."""
    if against is None or against.lower() in ("none", ""):
        return None
    if against != "auto":
        return against
    base = _git("merge-base", "HEAD", "main")
    if base.returncode != 0 or not base.stdout.strip():
        return None
    sha = base.stdout.strip()
    same = _git("diff", "--quiet", sha, "--", "functions").returncode == 0
    return None if same else sha[:12]


def compile_code(*dirs: Path) -> None:
    """Byte-compile the runtime packages measured, as an installed package (pip compiles on install) and the
    Lambda asset are: this machine sets PYTHONDONTWRITEBYTECODE, so an editable checkout would compile every
    module on every run (~0.1 CPU-s of a sync), for the worktree and the baseline alike."""
    import compileall

    for d in dirs:
        compileall.compile_dir(str(d), quiet=1)


def checkout_functions(ref: str) -> Path:
    """``functions/`` of commit ``ref`` in ``.bench/code-<sha>/`` (``git archive``), for ``--against``."""
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}").stdout.strip()[:12] or ref.replace("/", "_")
    out = BENCH_DIR / f"code-{sha}"
    if not (out / "exportlake").exists():
        out.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", ref, "functions"], cwd=REPO_ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(out), "--strip-components=1"], input=archive.stdout, check=True)
    return out


def run_copy_call(
    path: Path, shape: str, n: int, server: BenchServer, env: dict[str, str], clients: Callable[[str], Any]
) -> Run:
    """The copy call alone (``bench.jobs exportlake``): its own wall time, as the older figures were taken."""
    rid = new_result_id()
    server.add_result(rid, path)
    m = measure([sys.executable, "-m", "bench.jobs", "exportlake", SHAPES[shape], rid], _child_env(env))
    result = last_json_line(m.stdout)
    info = _verify_and_drop(shape, SHAPES[shape], rid, env, clients)
    run = Run("copy call", shape, n, path.stat().st_size, m.wall_s, m.cpu_s, m.rss_mb, info["rows"])
    run.extra = {"copy_s": result["work_s"], "start_s": result["start_s"]}
    return run


def run_profile(path: Path, shape: str, server: BenchServer, env: dict[str, str], clients: Callable[[str], Any]) -> Any:
    """One copy under cProfile (``bench.jobs profile``): the stage summary it prints."""
    rid = new_result_id()
    server.add_result(rid, path)
    m = measure([sys.executable, "-m", "bench.jobs", "profile", SHAPES[shape], rid], _child_env(env))
    _verify_and_drop(shape, SHAPES[shape], rid, env, clients)
    return last_json_line(m.stdout)


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
        m = measure([sys.executable, "-m", "bench.jobs", "dlt", url, shape, str(work)], env)
        files = sorted((work / "lake" / "bench" / shape).rglob("*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        run = Run("dlt", shape, n, path.stat().st_size, m.wall_s, m.cpu_s, m.rss_mb, rows)
        run.extra = {"parquet_files": len(files), "parquet_bytes": sum(f.stat().st_size for f in files)}
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_floor(path: Path, shape: str, n: int) -> Run:
    """``gzip -1`` over the same bytes: one plain compression pass of the input."""
    m = measure(["gzip", "-1", "-c", str(path)], stdout_to_null=True)
    return Run("gzip -1", shape, n, path.stat().st_size, m.wall_s, m.cpu_s, m.rss_mb)


# -- scale: a backfill of many small results --------------------------------------------------------------------
def run_scale(
    total: int,
    server: BenchServer,
    env: dict[str, str],
    clients: Callable[[str], Any],
    per_export: int = 50,
    sync: bool = True,
) -> dict[str, Any]:
    """A backfill of ``total`` small results (``total / per_export`` exports x ``per_export``).

    The planner alone first (``bench.jobs plan``: its run time and the gateway requests it made), then, with
    ``sync``, the whole ``exportlake sync`` that copies them (results per second of the process); without it the
    queued jobs are purged. Objects are left in moto (small) and the ledger grows: each run uses fresh export names.
    """
    small = BENCH_DIR / "win_info-100-scale.json"
    if not small.exists():
        from bench.realdata import write_document

        write_document(small, "win_info", 100, SEED)
    exports = max(1, total // per_export)
    tag = secrets.token_hex(3)
    listing: dict[str, list[dict[str, Any]]] = {}
    for e in range(exports):
        rids = [new_result_id() for _ in range(per_export)]
        for rid in rids:
            server.add_result(rid, small)
        listing[f"scale-{tag}-{e:04d}"] = [result_item(rid) for rid in rids]
    server.listing = listing
    before = server.requests
    plan = measure([sys.executable, "-m", "bench.jobs", "plan"], _child_env(env))
    planned = last_json_line(plan.stdout)
    plan_requests = server.requests - before
    copied = sum(len(v) for v in listing.values())
    out: dict[str, Any] = {
        "results": copied,
        "exports": exports,
        "planner_s": planned["planner_s"],
        "planner_requests": plan_requests,
        "planner_requests_per_s": plan_requests / planned["planner_s"],
        "planned": planned["planned"],
    }
    if not sync:
        clients("sqs").purge_queue(QueueUrl=env["EXPORTLAKE_QUEUE_URL"])
        return out
    before = server.requests
    m = measure([exportlake_exe(), "sync"], _child_env(env))
    requests_made = server.requests - before
    out.update(
        {
            "sync_wall_s": m.wall_s,
            "sync_cpu_s": m.cpu_s,
            "results_per_s": copied / m.wall_s,
            "gateway_requests": requests_made,
            "gateway_requests_per_s": requests_made / m.wall_s,
            "peak_rss_mb": m.rss_mb,
            "stdout": m.stdout.strip()[-300:],
        }
    )
    return out


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
    """Median wall seconds of a bare interpreter, and of the copier / its handler imports over it (children)."""

    def median_of(code: str) -> float:
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=os.environ.copy())
            walls.append(time.perf_counter() - started)
        return statistics.median(walls)

    bare = median_of("pass")
    copier = median_of("import exportlake.handlers.copier, exportlake.convert.stream")
    handler = median_of("import exportlake.handlers.copier")
    return {"python_pass_s": bare, "import_copier_s": copier - bare, "import_handler_s": handler - bare}


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
_TOOL_ORDER = ["exportlake sync", "copy call", "dlt", "gzip -1"]


def _tool_rank(tool: str) -> int:
    return _TOOL_ORDER.index(tool) if tool in _TOOL_ORDER else 1  # "exportlake sync @<ref>" after the sync


@dataclass
class Row:
    """Medians of one tool on one file."""

    tool: str
    shape: str
    records: int
    json_mb: float
    runs: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    verified: bool
    median_rss_mb: float = 0.0
    min_rss_mb: float = 0.0
    copy_s: float | None = None  # the copy call's own wall time (copy call rows)
    parquet_mb: float | None = None
    raw_gzip_mb: float | None = None

    @property
    def cpu_rate(self) -> float:
        """Records per CPU-second of the whole child process (user + system, all threads)."""
        return self.records / self.cpu_s if self.cpu_s else 0.0

    @property
    def wall_rate(self) -> float:
        """Records per wall second of the whole child process."""
        return self.records / self.wall_s

    @property
    def copy_rate(self) -> float | None:
        """Records per wall second of the copy call alone."""
        return self.records / self.copy_s if self.copy_s else None


def summarize(runs: list[Run]) -> list[Row]:
    """One row per (shape, size, tool) with medians over the repeats (peak RSS: the highest run)."""
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.shape, r.records, r.tool), []).append(r)
    rows = []
    for (shape, n, tool), rs in groups.items():
        copies = [r.extra["copy_s"] for r in rs if "copy_s" in r.extra]
        pq_bytes = [r.extra["parquet_bytes"] for r in rs if "parquet_bytes" in r.extra]
        raw_bytes = [r.extra["raw_gzip_bytes"] for r in rs if "raw_gzip_bytes" in r.extra]
        rows.append(
            Row(
                tool=tool,
                shape=shape,
                records=n,
                json_mb=rs[0].json_bytes / MB,
                runs=len(rs),
                wall_s=statistics.median(r.wall_s for r in rs),
                cpu_s=statistics.median(r.cpu_s for r in rs),
                peak_rss_mb=max(r.peak_rss_mb for r in rs),
                median_rss_mb=statistics.median(r.peak_rss_mb for r in rs),
                min_rss_mb=min(r.peak_rss_mb for r in rs),
                verified=all(r.ok for r in rs),
                copy_s=statistics.median(copies) if copies else None,
                parquet_mb=statistics.median(pq_bytes) / MB if pq_bytes else None,
                raw_gzip_mb=statistics.median(raw_bytes) / MB if raw_bytes else None,
            )
        )
    return rows


def find(rows: list[Row], shape: str, n: int, tool: str) -> Row | None:
    """The row of one tool on one file, if it ran."""
    return next((r for r in rows if (r.shape, r.records, r.tool) == (shape, n, tool)), None)


def targets(rows: list[Row], package: dict[str, Any] | None, imports: dict[str, float] | None) -> list[dict[str, Any]]:
    """The targets of issue 10, each with what was measured."""
    out: list[dict[str, Any]] = []
    syncs = [r for r in rows if r.tool == "exportlake sync"]
    for r in syncs:
        goal = TARGET_CPU_RATE.get(r.records)
        if goal:
            out.append(
                {
                    "target": f"{r.shape} {label(r.records)}: >= {goal:,} records per CPU-second (whole sync)",
                    "measured": f"{r.cpu_rate:,.0f} ({r.cpu_s:.2f} CPU-s)",
                    "met": r.cpu_rate >= goal,
                }
            )
        if r.records >= 1_000_000:
            out.append(
                {
                    "target": f"{r.shape} {label(r.records)}: peak RSS <= {TARGET_RSS_MB} MB",
                    "measured": f"{r.peak_rss_mb:.0f} MB (runs {r.min_rss_mb:.0f}-{r.peak_rss_mb:.0f})",
                    "met": r.peak_rss_mb <= TARGET_RSS_MB,
                }
            )
    for shape in sorted({r.shape for r in syncs}):
        small, big = find(rows, shape, 1_000_000, "exportlake sync"), find(rows, shape, 5_000_000, "exportlake sync")
        if small and big:
            out.append(
                {
                    "target": f"{shape}: flat, 5M peak within {TARGET_FLAT:.0%} of 1M (medians of the runs)",
                    "measured": f"5M {big.median_rss_mb:.0f} MB vs 1M {small.median_rss_mb:.0f} MB",
                    "met": big.median_rss_mb <= small.median_rss_mb * (1 + TARGET_FLAT),
                }
            )
        floor = find(rows, shape, 5_000_000, "gzip -1") or find(rows, shape, 1_000_000, "gzip -1")
        sync = big or small
        if floor and sync:
            out.append(
                {
                    "target": f"{shape} {label(sync.records)}: sync beats gzip -1 per CPU-second",
                    "measured": f"{sync.cpu_rate:,.0f} vs {floor.cpu_rate:,.0f}",
                    "met": sync.cpu_rate >= floor.cpu_rate,
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
    if imports:
        out.append(
            {
                "target": f"copier cold import <= {TARGET_IMPORT_S} s",
                "measured": f"{imports['import_copier_s']:.2f} s",
                "met": imports["import_copier_s"] <= TARGET_IMPORT_S,
            }
        )
    if any(not r.verified for r in rows):
        out.append({"target": "every output holds every record", "measured": "row or digest mismatch", "met": False})
    return out


def _gateway_rate() -> float:
    from exportlake.domain.limits import GATEWAY_MAX_REQUESTS_PER_SECOND

    return GATEWAY_MAX_REQUESTS_PER_SECOND


def _planner_timeout() -> int:
    from exportlake.domain.limits import PLANNER_TIMEOUT_SECONDS

    return PLANNER_TIMEOUT_SECONDS


def fmt(value: float | None, spec: str) -> str:
    """Format or dash."""
    return "–" if value is None else format(value, spec)


def markdown(rows: list[Row]) -> str:
    """The results as a markdown table (for README / docs)."""
    lines = [
        "| records | JSON MB | tool | CPU s | records / CPU-s | wall s | copy call s | peak RSS MB | Parquet MB |"
        " vs gzip -1 (CPU) | vs dlt (CPU) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r.shape, r.records, _tool_rank(r.tool))):
        floor, dlt = find(rows, r.shape, r.records, "gzip -1"), find(rows, r.shape, r.records, "dlt")
        vs_floor = r.cpu_rate / floor.cpu_rate if floor and r.tool != "gzip -1" else None
        vs_dlt = r.cpu_rate / dlt.cpu_rate if dlt and r.tool.startswith(("exportlake", "copy")) else None
        lines.append(
            f"| {label(r.records)} | {r.json_mb:.0f} | {r.tool} | {r.cpu_s:.2f} | {r.cpu_rate:,.0f} | {r.wall_s:.2f} "
            f"| {fmt(r.copy_s, '.2f')} | {r.peak_rss_mb:.0f} | {fmt(r.parquet_mb, '.0f')} "
            f"| {fmt(vs_floor, '.2f')}{'x' if vs_floor else ''} | {fmt(vs_dlt, '.1f')}{'x' if vs_dlt else ''} |"
        )
    return "\n".join(lines)


def print_report(
    rows: list[Row],
    package: dict[str, Any] | None,
    imports: dict[str, float] | None,
    checks: list[dict[str, Any]],
    profile: dict[str, Any] | None = None,
    scale: list[dict[str, Any]] | None = None,
) -> None:
    """The table, the profile summary, the scale figures, package, import time and the targets."""
    print("\n" + markdown(rows))
    print(
        "\nCPU s = user + system seconds of the whole child process, all threads (os.wait4), start to exit;"
        " records / CPU-s uses it. copy call s = the copy call alone, timed inside a bench.jobs child."
    )
    baseline = [r for r in rows if r.tool.startswith("exportlake sync @")]
    for b in sorted(baseline, key=lambda r: (r.shape, r.records)):
        mine = find(rows, b.shape, b.records, "exportlake sync")
        if mine is not None:
            ref = b.tool[len("exportlake sync ") :]
            print(
                f"\n{b.shape} {label(b.records)}: this worktree {mine.cpu_s:.2f} CPU-s ({mine.cpu_rate:,.0f} records"
                f"/CPU-s, peak {mine.peak_rss_mb:.0f} MB) vs {ref} {b.cpu_s:.2f} CPU-s ({b.cpu_rate:,.0f}, peak"
                f" {b.peak_rss_mb:.0f} MB): {mine.cpu_s / b.cpu_s - 1:+.0%} CPU, medians of {mine.runs} interleaved"
            )
    if profile:
        print(
            f"\nProfile of one copy ({profile['records']:,} records): process CPU {profile['process_cpu_s']:.2f} s,"
            f" main thread {profile['main_thread_cpu_s']:.2f} s, other threads"
            f" (gzip, uploads) {profile['process_cpu_s'] - profile['main_thread_cpu_s']:.2f} s;"
            f" main thread wall by stage (cProfile; profiling inflates Python-level shares):"
        )
        for stage, secs in profile["stages"]:
            print(f"  {stage:<42} {secs:7.2f} s")
        print("  top functions (tottime):")
        for name, secs in profile["top"][:10]:
            print(f"    {secs:7.2f} s  {name}")
    if scale:
        print("\nBackfill (exportlake sync over many small results, 50 per export):")
        print(
            "| results | exports | planner s | planner s per 1k results | planner gateway requests | req/s "
            "| sync s | sync results/s | sync gateway req/s |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in scale:
            print(
                f"| {s['results']:,} | {s['exports']} | {s['planner_s']:.1f} "
                f"| {s['planner_s'] / s['results'] * 1000:.1f} | {s['planner_requests']:,} "
                f"| {s['planner_requests_per_s']:.1f} | {fmt(s.get('sync_wall_s'), '.1f')} "
                f"| {fmt(s.get('results_per_s'), '.1f')} | {fmt(s.get('gateway_requests_per_s'), '.1f')} |"
            )
        print(
            f"(gateway request rate bounded per client by GATEWAY_MAX_REQUESTS_PER_SECOND = "
            f"{_gateway_rate():.0f}/s; the planner's Lambda timeout is {_planner_timeout()} s)"
        )
    if package is not None:
        top = ", ".join(f"{p['name']} {p['mb']:.1f}" for p in package["top"])
        print(f"\nLambda package (unzipped): {package['total_mb']:.1f} MB; largest (MB): {top}")
    if imports:
        print(
            f"Cold import (median of 5 children, python start subtracted): the copier handler and stream adapter"
            f" {imports['import_copier_s'] * 1000:.0f} ms, exportlake.handlers.copier"
            f" {imports['import_handler_s'] * 1000:.0f} ms"
        )
    print("\nTargets (issue 10):")
    for c in checks:
        print(f"  [{'met' if c['met'] else 'MISSED'}] {c['target']}: {c['measured']}")


# -- main -------------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Generate, serve, measure, print, write ``.bench/results.json``."""
    global _spawner  # noqa: PLW0603 - one spawner per harness run
    args = parse_args(argv)
    if args.report:
        return report_again(Path(args.report))
    if args.year_two:
        return year_two(args)
    BENCH_DIR.mkdir(exist_ok=True)
    _spawner = Spawner()  # first, while this process is still small
    if args.taskset:
        _cpu_prefix[:] = ["taskset", "-c", args.taskset]
    print(f"exportlake bench: sizes {', '.join(map(label, args.sizes))}; shapes {', '.join(args.shapes)}"
          f" ({args.data} data); repeat {args.repeat} (dlt {min(args.dlt_repeat, args.repeat)})"
          + (f"; children pinned to CPUs {args.taskset}" if args.taskset else ""), flush=True)  # fmt: skip
    package_dir = Path(tempfile.mkdtemp(prefix="bench-package-"))
    build = None if args.skip_package else start_package_build(package_dir)
    files = {(shape, n): export_file(shape, n, args.data) for shape in args.shapes for n in args.sizes}
    digests = {key: sha256_of(path) for key, path in files.items()}
    package: dict[str, Any] | None = None
    if build is not None:
        if build.wait() == 0:
            package = package_report(package_dir)
        else:
            print(f"  package build failed; see {BENCH_DIR / 'package-build.log'}")
    shutil.rmtree(package_dir, ignore_errors=True)

    against = (args.against, checkout_functions(args.against)) if args.against else None
    compile_code(REPO_ROOT / "functions", *([against[1]] if against else []))
    if against:
        print(f"  baseline: exportlake sync @{against[0]} (runtime package from git), interleaved", flush=True)
    runs: list[Run] = []
    profile: dict[str, Any] | None = None
    scale: list[dict[str, Any]] = []
    with BenchServer() as server, MotoProcess() as moto:
        env = aws_env(moto, server)
        clients = provision_aws(env)
        for n in args.sizes:
            for shape in args.shapes:
                path = files[(shape, n)]
                for i in range(args.repeat):
                    tag = f"  {shape} {label(n)} #{i + 1}:"
                    warm(path)
                    r = run_sync(path, shape, n, server, env, clients, digests[(shape, n)])
                    runs.append(r)
                    sha = "ok" if r.extra["sha_ok"] else "MISMATCH"
                    print(f"{tag} exportlake sync {r.cpu_s:.2f} CPU-s {r.wall_s:.2f}s {r.peak_rss_mb:.0f}MB"
                          f" rows={r.verified_rows} sha={sha}", flush=True)  # fmt: skip
                    if against is not None:
                        warm(path)
                        r = run_sync(path, shape, n, server, env, clients, digests[(shape, n)], against)
                        runs.append(r)
                        print(f"{tag} {r.tool} {r.cpu_s:.2f} CPU-s {r.wall_s:.2f}s {r.peak_rss_mb:.0f}MB"
                              f" rows={r.verified_rows}", flush=True)  # fmt: skip
                    if i == 0:
                        warm(path)
                        r = run_copy_call(path, shape, n, server, env, clients)
                        runs.append(r)
                        print(f"{tag} copy call {r.extra['copy_s']:.2f}s (process {r.cpu_s:.2f} CPU-s)", flush=True)
                    if i < args.dlt_repeat and (args.skip_dlt_above is None or n <= args.skip_dlt_above):
                        warm(path)
                        r = run_dlt(path, shape, n, server)
                        runs.append(r)
                        print(f"{tag} dlt {r.cpu_s:.2f} CPU-s {r.wall_s:.2f}s rows={r.verified_rows}", flush=True)
                    warm(path)
                    r = run_floor(path, shape, n)
                    runs.append(r)
                    print(f"{tag} gzip -1 {r.cpu_s:.2f} CPU-s {r.wall_s:.2f}s", flush=True)
        if not args.no_profile:
            shape, n = args.shapes[0], args.sizes[-1]
            profile = run_profile(files[(shape, n)], shape, server, env, clients)
        for total in args.scale:
            print(f"  scale: {total:,} results ...", flush=True)
            one = run_scale(total, server, env, clients, sync=total <= args.scale_sync_max)
            scale.append(one)
            sync_part = f", sync {one['sync_wall_s']:.1f}s" if "sync_wall_s" in one else ""
            print(f"  scale {total:,}: planner {one['planner_s']:.1f}s{sync_part}", flush=True)

    _spawner.close()
    imports = import_time()
    rows = summarize(runs)
    checks = targets(rows, package, imports)
    print_report(rows, package, imports, checks, profile, scale)
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "options": {
            "sizes": args.sizes,
            "shapes": args.shapes,
            "data": args.data,
            "repeat": args.repeat,
            "dlt_repeat": args.dlt_repeat,
            "seed": SEED,
            "taskset": args.taskset,
            "against": args.against,
        },
        "runs": [asdict(r) for r in runs],
        "summary": [{**asdict(r), "records_per_cpu_s": r.cpu_rate, "records_per_s": r.wall_rate} for r in rows],
        "package": package,
        "import_time": imports,
        "profile": profile,
        "scale": scale,
        "targets": checks,
        "markdown": markdown(rows),
    }
    out = BENCH_DIR / (f"results-taskset-{args.taskset}.json" if args.taskset else "results.json")
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out.relative_to(REPO_ROOT)}")
    return 0


def year_two(args: argparse.Namespace) -> int:
    """``--year-two``: bench.yeartwo for the worktree and the baseline; prints and writes its results."""
    global _spawner  # noqa: PLW0603 - one spawner per harness run
    from bench import yeartwo

    BENCH_DIR.mkdir(exist_ok=True)
    _spawner = Spawner()
    against = (args.against, checkout_functions(args.against)) if args.against else None
    compile_code(REPO_ROOT / "functions", *([against[1]] if against else []))
    print(f"exportlake bench, year two: worktree{f' and @{against[0]}' if against else ''}", flush=True)
    result = yeartwo.run(against, no_op_run=args.year_two in ("all", "no-op"),
                         backfill_run=args.year_two in ("all", "backfill"))  # fmt: skip
    _spawner.close()
    yeartwo.report(result)
    out = BENCH_DIR / "results-yeartwo.json"
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
                               "against": args.against, **result}, indent=1))  # fmt: skip
    print(f"\nwrote {out.relative_to(REPO_ROOT)}")
    return 0


def report_again(path: Path) -> int:
    """Print the tables and targets of an earlier run from its results JSON."""
    data = json.loads(path.read_text())
    runs = [Run(**r) for r in data["runs"]]
    rows = summarize(runs)
    checks = targets(rows, data.get("package"), data.get("import_time"))
    print_report(rows, data.get("package"), data.get("import_time"), checks, data.get("profile"), data.get("scale"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
