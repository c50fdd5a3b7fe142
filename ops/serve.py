"""Run TorchServe (and the web page) locally, in the foreground, until Ctrl-C or SIGTERM.

    python -m ops.serve --model mnist=mnist-1.0.mar --model fashion=fashion-1.0.mar
                                         # inference :8080, management :8081, metrics :8082, page :8000
    python -m ops.serve --stop           # stop the one started above

`TorchServe` is also what the tests use to start real servers on their own ports.
"""
from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "config.properties"
RUN_DIR = REPO_ROOT / "run"
PID_FILE = RUN_DIR / "serve.pid"


def config_properties(path: Path = CONFIG) -> dict[str, str]:
    """The settings of a TorchServe config.properties file (key=value lines; # starts a comment)."""
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in lines}


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TorchServe:
    """A TorchServe process group on loopback ports, with its own temp, log and pid folder."""

    def __init__(self, model_store: Path, models: dict[str, str], work_dir: Path,
                 inference_port: int = 8080, management_port: int = 8081, metrics_port: int = 8082,
                 grpc_ports: tuple[int, int] = (7070, 7071), page_origin: str = "http://127.0.0.1:8000",
                 quiet: bool = False, python: str = sys.executable):
        self.model_store = Path(model_store)
        self.models = models
        self.work_dir = Path(work_dir)
        self.inference_url = f"http://127.0.0.1:{inference_port}"
        self.management_url = f"http://127.0.0.1:{management_port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}"
        self.grpc_ports = grpc_ports
        self.page_origin = page_origin
        self.quiet = quiet
        self.python = python
        self.process: subprocess.Popen | None = None

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def start(self, timeout: float = 180) -> "TorchServe":
        tmp = self.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ,
                   # TorchServe keeps its pid file in TMPDIR and its worker sockets in the JVM's
                   # temp dir: private ones let several servers (make serve, tests) run side by side.
                   TMPDIR=str(tmp), JAVA_TOOL_OPTIONS=f"-Djava.io.tmpdir={tmp}",
                   LOG_LOCATION=str(self.log_dir), METRICS_LOCATION=str(self.log_dir),
                   TS_INFERENCE_ADDRESS=self.inference_url, TS_MANAGEMENT_ADDRESS=self.management_url,
                   TS_METRICS_ADDRESS=self.metrics_url, TS_CORS_ALLOWED_ORIGIN=self.page_origin,
                   TS_GRPC_INFERENCE_PORT=str(self.grpc_ports[0]), TS_GRPC_MANAGEMENT_PORT=str(self.grpc_ports[1]))
        command = [str(Path(self.python).with_name("torchserve")), "--start", "--foreground", "--ncs",
                   "--ts-config", str(CONFIG), "--model-store", str(self.model_store)]
        if self.models:
            command += ["--models", *(f"{name}={archive}" for name, archive in self.models.items())]
        output = subprocess.DEVNULL if self.quiet else None   # the logs are in log_dir either way
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, start_new_session=True,
                                        stdout=output, stderr=output)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"TorchServe exited with {self.process.returncode}; see {self.log_dir}")
            if all(self.workers_ready(name) for name in self.models) and self._pings():
                return
            time.sleep(0.5)
        raise TimeoutError(f"TorchServe was not ready within {timeout:.0f} s; see {self.log_dir}")

    def _pings(self) -> bool:
        try:
            return requests.get(f"{self.inference_url}/ping", timeout=2).json().get("status") == "Healthy"
        except (requests.RequestException, ValueError):
            return False

    def workers_ready(self, name: str) -> bool:
        try:
            response = requests.get(f"{self.management_url}/models/{name}", timeout=2)
            workers = response.json()[0]["workers"] if response.ok else []
        except (requests.RequestException, ValueError, LookupError):
            return False
        return bool(workers) and all(worker["status"] == "READY" for worker in workers)

    def worker_pids(self, name: str) -> list[int]:
        response = requests.get(f"{self.management_url}/models/{name}", timeout=5)
        response.raise_for_status()
        return sorted(int(worker["pid"]) for worker in response.json()[0]["workers"])

    def stop(self, timeout: float = 30) -> None:
        """Stop the whole process group (wrapper, Java frontend, Python workers) and wait until it is gone."""
        if self.process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.process.poll()                  # reap the wrapper; the others are not our children
                try:
                    os.killpg(self.process.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.2)


def serve_page(port: int, api_base: str, catalogue: Path) -> ThreadingHTTPServer:
    """Serve web/ on 127.0.0.1:port, telling the page where the inference API is and which
    models are served (``catalogue``, the model store's models.json, at /models.json)."""
    class PageHandler(SimpleHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/config.js":
                self._answer(f'window.DIGIT_LENS_API = "{api_base}";\n'.encode(), "text/javascript")
            elif path == "/openapi.yaml":
                self._answer((REPO_ROOT / "docs" / "openapi.yaml").read_bytes(), "application/yaml")
            elif path == "/models.json":
                try:
                    self._answer(catalogue.read_bytes(), "application/json")
                except FileNotFoundError:
                    self.send_error(404, f"{catalogue} does not exist: build the archives (make mar)")
            else:
                super().do_GET()

        def _answer(self, body: bytes, content_type: str):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(PageHandler, directory=str(REPO_ROOT / "web")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_running() -> int:
    if not PID_FILE.exists():
        print("Digit Lens is not running (no run/serve.pid)")
        return 0
    pid = int(PID_FILE.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"removing stale {PID_FILE}")
        PID_FILE.unlink()
        return 0
    for _ in range(100):
        if not PID_FILE.exists():
            print(f"stopped Digit Lens (pid {pid})")
            return 0
        time.sleep(0.3)
    print(f"pid {pid} did not stop within 30 s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop", action="store_true", help="stop a running `make serve`")
    parser.add_argument("--model", action="append", metavar="NAME=ARCHIVE",
                        help="serve the store's ARCHIVE at /predictions/NAME (repeatable; default mnist=mnist-1.0.mar)")
    parser.add_argument("--page-port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.stop:
        return stop_running()
    models = dict(entry.split("=", 1) for entry in args.model or ["mnist=mnist-1.0.mar"])

    RUN_DIR.mkdir(exist_ok=True)
    if PID_FILE.exists():
        pid = int(PID_FILE.read_text())
        if psutil.pid_exists(pid):
            print(f"Digit Lens is running already (pid {pid}); `make stop` first", file=sys.stderr)
            return 1
        PID_FILE.unlink()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    PID_FILE.write_text(str(os.getpid()))
    store = REPO_ROOT / "model_store"
    server = TorchServe(store, models, RUN_DIR)
    page = None
    try:
        try:
            server.start()
            page = serve_page(args.page_port, server.inference_url, store / "models.json")
        except (RuntimeError, TimeoutError, OSError) as error:    # e.g. a port already in use
            print(f"error: Digit Lens did not start: {error}", file=sys.stderr)
            return 1
        print(f"Digit Lens is up: page http://127.0.0.1:{args.page_port}  "
              f"predictions {', '.join(f'{server.inference_url}/predictions/{name}' for name in models)}  "
              f"management {server.management_url}  metrics {server.metrics_url}/metrics\n"
              f"Ctrl-C stops it.", flush=True)
        while not stopping.wait(1):
            if server.process.poll() is not None:
                print("TorchServe exited; stopping", file=sys.stderr)
                return 1
        return 0
    finally:
        if page is not None:
            page.shutdown()
        server.stop()
        PID_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
