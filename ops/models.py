"""Model versions through TorchServe's management API.

    python -m ops.models list
    python -m ops.models release 2.0 [--weights W]   # archive, register beside the default, warm up, promote
    python -m ops.models register 2.0                # only archive and register (no traffic yet)
    python -m ops.models smoke 2.0                   # warm-up: every sample on /predictions/mnist/2.0
    python -m ops.models promote 2.0                 # make 2.0 the default version
    python -m ops.models rollback [--to 1.0]         # back to the previous (or given) version
    python -m ops.models retire 1.0 [1.1 ...]        # drain, then unregister versions that are not the default
    python -m ops.models --model fashion release 2.0 # the same for another model (default: mnist)

Archives are written to the model store and registered by file name, so TorchServe only
ever loads models from its own store. Set --management for a server that is not on :8081.

No request is lost in a release. A new version answers every sample the model's YAML lists
(`samples:`, each with the label it must get; with and without charts) before it becomes the default, so its worker's slow first
batches are not paid by users. TorchServe's unregister kills a worker together with
whatever it is inferring, so `retire` first drains the version: it waits until its job
queue is empty and then sends a probe through that queue; the probe is answered only after
everything queued before it was taken by a worker. With one worker (config.properties) that
worker has then answered it all. With several (the GPU stack runs four) another worker may
still be inferring a batch it took earlier, and TorchServe shows no busy workers, so `retire`
then also waits MULTI_WORKER_SETTLE_S, far longer than a batch takes (milliseconds on a GPU,
tens of milliseconds on a CPU, 0.2 s for a fresh worker's first).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests
import yaml

from ops.archive import DEFAULT_STORE, MODEL_DIR, REPO_ROOT, archive_name, build_archive, model_files

WARM_UP_ROUNDS = 2          # each sample, plain and charted, this many times
MULTI_WORKER_SETTLE_S = 2.0  # after the drain's probe, for a version with several workers (see above)


def smoke_samples(name: str, model_dir: Path = MODEL_DIR) -> dict[str, tuple[bytes, str]]:
    """The `samples:` of model/<name>.yaml: file name -> (bytes, the label it must get)."""
    config, _, _ = model_files(name, model_dir)
    with open(config) as f:
        listed = yaml.safe_load(f).get("samples") or {}
    if not listed:
        raise VersionError(f"{config} lists no `samples:`; a version cannot be checked before it takes traffic")
    return {Path(path).name: ((REPO_ROOT / path).read_bytes(), str(label)) for path, label in listed.items()}


class VersionError(RuntimeError):
    pass


def version_key(version: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in version.replace("-", ".").split("."))


class ModelVersions:
    def __init__(self, management_url: str, inference_url: str, name: str = "mnist", timeout: float = 120):
        self.management = management_url.rstrip("/")
        self.inference = inference_url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self.samples = smoke_samples(name)

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, f"{self.management}{path}", timeout=self.timeout, **kwargs)
        if not response.ok:
            raise VersionError(f"{method} {path} failed with {response.status_code}: {response.text.strip()}")
        return response

    def versions(self) -> list[str]:
        details = self._call("GET", f"/models/{self.name}/all").json()
        return sorted((d["modelVersion"] for d in details), key=version_key)

    def default(self) -> str:
        return self._call("GET", f"/models/{self.name}").json()[0]["modelVersion"]

    def register(self, version: str) -> None:
        """Register ``version`` with the server's workers per model (default_workers_per_model:
        1 on CPU, 4 in the GPU stack), waiting until they are up."""
        if version in self._versions_or_none():
            raise VersionError(f"{self.name} {version} is already registered")
        self._call("POST", "/models", params={"url": archive_name(self.name, version), "synchronous": "true"})

    def _versions_or_none(self) -> list[str]:
        try:
            return self.versions()
        except VersionError:
            return []

    def _predict_sample(self, version: str, name: str, charts: bool) -> dict:
        headers = {"Content-Type": "application/octet-stream", **({"X-Charts": "1"} if charts else {})}
        body, label = self.samples[name]
        response = requests.post(f"{self.inference}/predictions/{self.name}/{version}", data=body,
                                 headers=headers, timeout=self.timeout)
        if not response.ok:
            raise VersionError(f"{self.name} {version} answered {name} with {response.status_code}: {response.text}")
        result = response.json()
        if result.get("label") != label or result.get("model", {}).get("version") != version \
                or charts != ("charts" in result):
            raise VersionError(f"{self.name} {version} failed the smoke test on {name}: "
                               f"{ {k: v for k, v in result.items() if k != 'charts'} }")
        return result

    def smoke(self, version: str, rounds: int = WARM_UP_ROUNDS) -> dict:
        """Warm the version up on every sample, plain and charted; each must get its label."""
        for _ in range(rounds):
            for name in self.samples:
                for charts in (False, True):
                    result = self._predict_sample(version, name, charts)
        return {k: v for k, v in result.items() if k != "charts"}

    def _describe(self, version: str) -> dict:
        return self._call("GET", f"/models/{self.name}/{version}").json()[0]

    def pending(self, version: str) -> int:
        return self._describe(version)["jobQueueStatus"]["pendingRequests"]

    def workers(self, version: str) -> int:
        return len(self._describe(version)["workers"])

    def drain(self, version: str, timeout: float = 60) -> None:
        """Return once nothing sent to ``version`` before this call is queued or being inferred."""
        deadline = time.monotonic() + timeout
        settle = MULTI_WORKER_SETTLE_S if self.workers(version) > 1 else 0.0
        while time.monotonic() < deadline:
            if self.pending(version) == 0:
                self._predict_sample(version, next(iter(self.samples)), charts=False)
                time.sleep(settle)
                if self.pending(version) == 0:
                    return
            time.sleep(0.05)
        raise VersionError(f"{self.name} {version} still had queued requests after {timeout:.0f} s; not retired")

    def promote(self, version: str) -> None:
        self._call("PUT", f"/models/{self.name}/{version}/set-default")

    def rollback(self, to: str | None = None) -> str:
        current = self.default()
        if to is None:
            older = [v for v in self.versions() if version_key(v) < version_key(current)]
            if not older:
                raise VersionError(f"no registered version of {self.name} is older than the default {current}")
            to = older[-1]
        self.promote(to)
        return to

    def retire(self, version: str) -> None:
        if version == self.default():
            raise VersionError(f"{self.name} {version} is the default version; promote another one first")
        self.drain(version)
        self._call("DELETE", f"/models/{self.name}/{version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--management", default="http://127.0.0.1:8081")
    parser.add_argument("--inference", default="http://127.0.0.1:8080")
    parser.add_argument("--model", default="mnist", help="model name: /predictions/<model>, model/<model>.yaml")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    for command in ("release", "register"):
        sub = commands.add_parser(command)
        sub.add_argument("version")
        sub.add_argument("--weights", type=Path, help="instead of model/<model>.pt (the YAML and network file stay)")
    for command in ("smoke", "promote"):
        commands.add_parser(command).add_argument("version")
    commands.add_parser("rollback").add_argument("--to")
    commands.add_parser("retire").add_argument("versions", nargs="+")
    args = parser.parse_args(argv)

    try:
        models = ModelVersions(args.management, args.inference, args.model)
        if args.command == "list":
            default = models.default()
            for version in models.versions():
                print(f"{version}{'  (default)' if version == default else ''}")
        elif args.command in ("release", "register"):
            config, weights, model_file = model_files(args.model)
            build_archive(args.model, args.version, args.weights or weights, config, model_file, args.store)
            models.register(args.version)
            print(f"registered {args.model} {args.version}")
            if args.command == "release":
                models.smoke(args.version)
                models.promote(args.version)
                print(f"{args.model} {args.version} answered every sample and is now the default")
        elif args.command == "smoke":
            print(models.smoke(args.version))
        elif args.command == "promote":
            models.promote(args.version)
            print(f"{args.model} {args.version} is now the default")
        elif args.command == "rollback":
            print(f"{args.model} {models.rollback(args.to)} is now the default")
        elif args.command == "retire":
            for version in args.versions:
                models.retire(version)
                print(f"retired {args.model} {version}")
    except (VersionError, requests.RequestException, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
