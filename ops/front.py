"""The project's nginx configurations, run on this machine: the compose front's site template
(docker/nginx/digit-lens.conf.template) in front of any number of TorchServe replicas, or any
other server block, each in a main config of its own on a loopback port. The tests and
`make bench` use it.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from string import Template

import requests

from ops.serve import REPO_ROOT

NGINX_TEMPLATE = REPO_ROOT / "docker" / "nginx" / "digit-lens.conf.template"
NGINX_BINARIES = ("/usr/sbin/nginx", "/usr/bin/nginx")
COMPOSE_RATE_LIMIT = "30r/s"         # docker-compose.yml's PREDICT_RATE_LIMIT
UNLIMITED = "100000r/s"


def upstream_lines(replicas: list[str]) -> str:
    """docker/nginx/upstreams.conf's format: one `server` line per TorchServe replica (host:port)."""
    return "".join(f"server {replica} max_fails=1 fail_timeout=10s;\n" for replica in replicas)


def render_site(work_dir: Path, listen_port: int, replicas: list[str], catalogue: Path, rate_limit: str) -> str:
    """The site template filled as the nginx image's entrypoint fills it (envsubst), with the
    upstream list written to ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "upstreams.conf").write_text(upstream_lines(replicas))
    values = {"LISTEN_PORT": f"127.0.0.1:{listen_port}", "WEB_ROOT": REPO_ROOT / "web", "MODEL_CATALOGUE": catalogue,
              "TORCHSERVE_UPSTREAMS": work_dir / "upstreams.conf", "PREDICT_RATE_LIMIT": rate_limit,
              "OPENAPI_DOCUMENT": REPO_ROOT / "docs" / "openapi.yaml"}
    site = Template(NGINX_TEMPLATE.read_text()).safe_substitute(values)     # nginx's own $variables stay
    unfilled = sorted(set(re.findall(r"\$\{(\w+)\}", site)))
    if unfilled:
        raise KeyError(f"{NGINX_TEMPLATE.name} expects {', '.join(unfilled)}, which the front does not fill")
    return site


def write_main_config(work_dir: Path, site: str) -> Path:
    """``site`` (a server block) in a main config whose pid, logs and temp files stay in ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "site.conf").write_text(site)
    main = work_dir / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "") +
        f"daemon off;\nworker_processes 1;\npid {work_dir}/nginx.pid;\nerror_log {work_dir}/error.log;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n include /etc/nginx/mime.types;\n access_log {work_dir}/access.log;\n"
        f" client_body_temp_path {work_dir}/body;\n proxy_temp_path {work_dir}/proxy;\n"
        f" include {work_dir}/site.conf;\n}}\n")
    return main


def nginx_binary() -> str:
    found = next((path for path in NGINX_BINARIES if Path(path).exists()), None)
    if found is None:
        raise FileNotFoundError("nginx is not installed: run `make system-deps`")
    return found


class Nginx:
    """nginx in the foreground with one server block (``site``) answering on 127.0.0.1:``port``."""

    def __init__(self, work_dir: Path, port: int, site: str):
        self.work_dir = Path(work_dir)
        self.config = write_main_config(self.work_dir, site)
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def check(self) -> subprocess.CompletedProcess:
        """`nginx -t` on the rendered config."""
        return subprocess.run([nginx_binary(), "-t", "-c", str(self.config), "-p", str(self.work_dir)],
                              capture_output=True, text=True, timeout=30)

    def start(self, timeout: float = 30) -> "Nginx":
        self.process = subprocess.Popen([nginx_binary(), "-c", str(self.config), "-p", str(self.work_dir)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}; see {self.work_dir}/error.log")
            try:
                requests.get(f"{self.url}/", timeout=2)
                return self
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"nginx did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class NginxFront(Nginx):
    """The compose front on 127.0.0.1:``port``, proxying to the TorchServe ``replicas`` (host:port).
    Every test client comes from 127.0.0.1, one address, so load tests and benchmarks lift the
    per-client ``rate_limit`` (COMPOSE_RATE_LIMIT is what compose sets)."""

    def __init__(self, work_dir: Path, port: int, replicas: list[str], catalogue: Path,
                 rate_limit: str = COMPOSE_RATE_LIMIT):
        super().__init__(work_dir, port, render_site(Path(work_dir), port, replicas, catalogue, rate_limit))
