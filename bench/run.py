"""Digit Lens benchmarks: in-process stages, then a real TorchServe over HTTP. Prints a table.

    make bench          # or: python -m bench.run [--requests 200]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import requests
import torch

from digitlens.config import ModelSpec
from digitlens.engine import InferenceEngine
from digitlens.preprocess import prepare
from digitlens.render import ProbabilityChart, render_activation_grid, render_input
from ops.serve import REPO_ROOT, TorchServe, free_port
from training.evaluate import MODEL_DIR, load_model

SAMPLES = REPO_ROOT / "samples"


def timed(function, repeat: int) -> list[float]:
    function()                                            # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def row(name: str, times_ms: list[float]) -> tuple[str, str, str, str]:
    return name, f"{statistics.median(times_ms):.3f}", f"{np.percentile(times_ms, 95):.3f}", str(len(times_ms))


def in_process(spec: ModelSpec, repeat: int) -> list[tuple]:
    model = load_model(MODEL_DIR / "mnist.pt", spec)
    canvas, photo, scan = ((SAMPLES / name).read_bytes() for name in ("seven-canvas.png", "seven-photo.jpg", "seven-scan.png"))
    one = prepare(canvas, spec)
    bare = torch.from_numpy(one.tensor[None])
    with torch.inference_mode():
        rows = [row(f"forward, 1 image, bare model ({torch.get_num_threads()} threads)", timed(lambda: model(bare), repeat))]
        torch.set_num_threads(1)
        rows.append(row("forward, 1 image, bare model (1 thread)", timed(lambda: model(bare), repeat)))
    engine = InferenceEngine(model, spec.visualise_layers, torch.device("cpu"))
    single, batch8 = one.tensor[None], np.repeat(one.tensor[None], 8, axis=0)
    result = engine.predict(single)
    chart = ProbabilityChart(spec.labels)
    rows += [  # from here on, one thread
        row("engine.predict, 1 image, with hooks", timed(lambda: engine.predict(single), repeat)),
        row("engine.predict, batch of 8", timed(lambda: engine.predict(batch8), repeat)),
        row("prepare canvas PNG 280x280", timed(lambda: prepare(canvas, spec), repeat)),
        row("prepare phone-style JPEG 1600x1200", timed(lambda: prepare(photo, spec), repeat // 4)),
        row("prepare scan PNG 850x1100", timed(lambda: prepare(scan, spec), repeat // 4)),
        row("render probability chart", timed(lambda: chart.render(result.probabilities[0]), repeat)),
        row("render activation grids (3 layers)", timed(
            lambda: [render_activation_grid(result.activations[n][0]) for n in spec.visualise_layers], repeat)),
        row("render 28x28 input", timed(lambda: render_input(one.pixels), repeat)),
    ]
    return rows


def over_http(requests_per_case: int) -> tuple[list[tuple], list[tuple]]:
    canvas = (SAMPLES / "seven-canvas.png").read_bytes()
    with tempfile.TemporaryDirectory() as work:
        server = TorchServe(REPO_ROOT / "model_store", {"mnist": "mnist-1.0.mar"}, Path(work),
                            free_port(), free_port(), free_port(), grpc_ports=(free_port(), free_port()),
                            quiet=True).start()
        try:
            url = f"{server.inference_url}/predictions/mnist"

            def send(charts: bool, client=requests) -> float:
                headers = {"Content-Type": "image/png", **({"X-Charts": "1"} if charts else {})}
                started = time.perf_counter()
                client.post(url, data=canvas, timeout=60, headers=headers).raise_for_status()
                return (time.perf_counter() - started) * 1000

            session = requests.Session()
            latency = [row("HTTP predict, concurrency 1", [send(False, session) for _ in range(requests_per_case)]),
                       row("HTTP predict + charts, concurrency 1", [send(True, session) for _ in range(requests_per_case)])]
            throughput = []
            for concurrency, charts in ((4, False), (4, True)):
                started = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    times = list(pool.map(send, [charts] * requests_per_case))
                elapsed = time.perf_counter() - started
                throughput.append((f"concurrency {concurrency}{', charts' if charts else ''}",
                                   f"{requests_per_case / elapsed:.0f}", f"{statistics.median(times):.1f}",
                                   f"{np.percentile(times, 95):.1f}"))
            worker = psutil.Process(server.worker_pids("mnist")[0])
            throughput.append(("worker RSS after the runs (MiB)", f"{worker.memory_info().rss / 2**20:.0f}", "", ""))
        finally:
            server.stop()
    return latency, throughput


def print_table(title: str, header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200, help="repetitions of each in-process stage")
    parser.add_argument("--requests", type=int, default=200, help="HTTP requests per case")
    args = parser.parse_args(argv)
    spec = ModelSpec.from_yaml(MODEL_DIR / "mnist.yaml")
    print_table("In process (ms)", ("stage", "median", "p95", "runs"), in_process(spec, args.repeat))
    latency, throughput = over_http(args.requests)
    print_table("TorchServe over HTTP, 1 worker, CPU (ms)", ("case", "median", "p95", "requests"), latency)
    print_table("Throughput", ("case", "req/s", "median ms", "p95 ms"), throughput)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
