"""Digit Lens benchmarks: in-process stages, then Digit Lens against a bare TorchServe floor.

    make bench                         # or: python -m bench.run; writes bench/RESULTS.md
    python -m bench.run --batch-size 8 --max-batch-delay 5 --workers 1 --threads 2 --out /tmp/r.md

The floor (`bench/floor_handler.py`: decode, greyscale, resize, forward, softmax) and Digit
Lens are archived with the same weights and serving settings and run side by side on their
own loopback ports. One closed-loop client (a keep-alive session per concurrent caller)
measures both, interleaved: every round visits each concurrency for the floor, Digit Lens,
Digit Lens with charts and Digit Lens explaining with its chart (every other round in
reverse order); the tables give the median of the rounds, and each ratio to the floor is
the median of the rounds' own ratios, with their range (the two measured seconds apart, so
the noise of a shared machine mostly cancels). Last, the same client measures Digit Lens
through the nginx front (ops.front) with one TorchServe replica against two, the cores
shared between the replicas (`--no-front` skips this where nginx is not installed).
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests
import torch
import yaml

from digitlens.config import ModelSpec
from digitlens.prepare import prepare
from digitlens.prepare.decode import open_image
from digitlens.render import ProbabilityChart, render_activation_grid, render_input
from ops.archive import build_archive, model_files
from ops.front import UNLIMITED, NginxFront
from ops.serve import REPO_ROOT, TorchServe, config_properties, free_port
from training.common import MODEL_DIR, load_model, reading_service
from training.numbers import number_on_canvas, number_set
from training.paper import paper_set
from training.presentations import encode, load_test_set, presentation_set, scanned_page

SAMPLES = REPO_ROOT / "samples"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CONCURRENCY = (1, 4, 8, 32)
PLAIN = {"Content-Type": "image/png"}
CHARTED = {**PLAIN, "X-Charts": "1"}
FRONT_CONCURRENCY = (4, 8, 32)
REPLICAS = (1, 2)
FRONT_CASES = {"prediction": PLAIN, "prediction + charts": CHARTED}


def timed(function, repeat: int) -> list[float]:
    function()                                            # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return times


def stage_row(name: str, times_ms: list[float]) -> tuple:
    return name, f"{statistics.median(times_ms):.3f}", f"{np.percentile(times_ms, 95):.3f}", str(len(times_ms))


def in_process(spec: ModelSpec, repeat: int, threads: int) -> list[tuple]:
    """Each stage with the torch threads of one worker, as a worker runs it."""
    torch.set_num_threads(threads)
    service = reading_service(load_model(MODEL_DIR / "mnist.pt", spec), spec, "mnist")
    engine, explainer = service.engine, service.explainer
    canvas, photo, scan = ((SAMPLES / name).read_bytes() for name in ("seven-canvas.png", "seven-photo.jpg", "seven-scan.png"))
    marker, blur = presentation_set("bold-marker-tight")[0][0], presentation_set("heavy-blur")[0][0]
    page, _ = scanned_page(load_test_set("mnist")[0][0], np.random.default_rng(0), ink_px=40, dpi=300)
    page_png, page_jpeg = encode(page, "PNG"), encode(page, "JPEG", quality=90)
    in_a_box, on_squares = paper_set("form-box", 100)[0][0], paper_set("squared-paper", 100)[0][0]
    one = prepare(canvas, spec)
    single, batch8 = one.tensor[None], np.repeat(one.tensor[None], 8, axis=0)
    result = engine.predict(single)
    chart = ProbabilityChart(spec.labels)
    probabilities, activations = result.probabilities[0], {n: a[0] for n, a in result.activations.items()}

    def all_charts():
        chart.render(probabilities)
        for name in spec.visualise_layers:
            render_activation_grid(activations[name])
        render_input(one.pixels)

    number = number_on_canvas(list(load_test_set("mnist")[0][1:5]), np.random.default_rng(0))
    touching = touching_number()

    def read_one_digit():
        service.answer([(canvas, None)])

    def read_four_digits():
        service.answer([(number, {"X-Read": "number"})])

    def read_four_touching_digits():
        service.answer([(touching, {"X-Read": "number"})])

    target = [int(result.probabilities[0].argmax())]
    few = max(10, repeat // 4)
    rows = [
        stage_row("decode canvas PNG 280x280 (open + load)", timed(lambda: open_image(canvas, spec.max_pixels), repeat)),
        stage_row("prepare canvas PNG 280x280", timed(lambda: prepare(canvas, spec), repeat)),
        stage_row("prepare phone photo JPEG 1600x1200", timed(lambda: prepare(photo, spec), repeat)),
        stage_row("prepare scan PNG 850x1100", timed(lambda: prepare(scan, spec), few)),
        stage_row("prepare A4 scan 300 dpi PNG 2480x3508, ink 40 px", timed(lambda: prepare(page_png, spec), few)),
        stage_row("prepare A4 scan 300 dpi JPEG 2480x3508, ink 40 px", timed(lambda: prepare(page_jpeg, spec), few)),
        stage_row("prepare bold marker, tight crop", timed(lambda: prepare(marker, spec), repeat)),
        stage_row("prepare heavy blur JPEG", timed(lambda: prepare(blur, spec), repeat)),
        stage_row("prepare a digit in a form's box (training.paper)", timed(lambda: prepare(in_a_box, spec), repeat)),
        stage_row("prepare a digit on squared paper (training.paper)", timed(lambda: prepare(on_squares, spec), repeat)),
        stage_row("read a digit, canvas PNG 280x280 (the service's answer)", one_digit := timed(read_one_digit, repeat)),
        stage_row("read a 4-digit number, canvas PNG 280x280 (the service's answer)",
                  four_digits := timed(read_four_digits, repeat)),
        ("4-digit number / one digit (medians)", f"{statistics.median(four_digits) / statistics.median(one_digit):.2f}x",
         "", ""),
        stage_row("read a 4-digit number whose digits touch, canvas PNG (the service's answer)",
                  four_touching := timed(read_four_touching_digits, repeat)),
        ("4 touching digits / one digit (medians)",
         f"{statistics.median(four_touching) / statistics.median(one_digit):.2f}x", "", ""),
        stage_row("forward + hooks + outlier score, 1 image", timed(lambda: engine.predict(single), repeat)),
        stage_row("forward + hooks + outlier score, batch of 8", timed(lambda: engine.predict(batch8), repeat)),
        stage_row("render probability chart", timed(lambda: chart.render(probabilities), repeat)),
        *(stage_row(f"render activation grid {name} {tuple(activations[name].shape)}",
                    timed(lambda name=name: render_activation_grid(activations[name]), repeat))
          for name in spec.visualise_layers),
        stage_row("render 28x28 input", timed(lambda: render_input(one.pixels), repeat)),
        stage_row("all charts for one image", timed(all_charts, repeat)),
        stage_row(f"explain, Integrated Gradients {spec.explain_steps} steps, 1 image",
                  timed(lambda: explainer.explain(single, target), few)),
        stage_row(f"explain, Integrated Gradients {spec.explain_steps} steps, batch of 8, per image",
                  [t / 8 for t in timed(lambda: explainer.explain(batch8, target * 8), few)]),
    ]
    return rows


def load(url: str, body: bytes, headers: dict, concurrency: int, seconds: float) -> dict:
    """Closed loop: ``concurrency`` callers, each posting again as soon as its answer is in."""
    latencies: list[float] = []
    failures = [0]
    start = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def caller():
        session = requests.Session()
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                ok = session.post(url, data=body, headers=headers, timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - began) * 1000)
            else:
                failures[0] += 1

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join(120)
    elapsed = time.perf_counter() - began
    return {"rps": len(latencies) / elapsed, "p50": np.percentile(latencies, 50), "p95": np.percentile(latencies, 95),
            "p99": np.percentile(latencies, 99), "failures": failures[0]}


def serving_yaml(settings: dict, work: Path) -> Path:
    """The model YAML with the benchmark's serving settings applied (for both archives)."""
    config = yaml.safe_load((MODEL_DIR / "mnist.yaml").read_text())
    config["minWorkers"] = config["maxWorkers"] = settings["workers"]
    for key in ("batchSize", "maxBatchDelay"):
        config[key] = settings[key]
    if settings.get("threads") is not None:
        config["handler"]["threads"] = settings["threads"]
    path = work / "mnist.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def default_workers() -> int:
    """Workers per model where the archive names none: config.properties' default_workers_per_model."""
    return int(config_properties().get("default_workers_per_model", 1))


def start_server(store: Path, name: str, work: Path) -> TorchServe:
    return TorchServe(store, {name: f"{name}-1.0.mar"}, work, free_port(), free_port(), free_port(),
                      grpc_ports=(free_port(), free_port()), quiet=True).start()


def medians(runs: dict[tuple, list[dict]]) -> dict[tuple, dict]:
    return {key: {metric: statistics.median(run[metric] for run in values) for metric in values[0]}
            for key, values in runs.items()}


def paired_ratios(runs: list[dict], floor_runs: list[dict], metric: str) -> list[float]:
    """Round by round, ``metric`` over the floor's in the same round: the two were measured
    seconds apart, so a slow spell of this shared machine weighs on both."""
    return [run[metric] / floor[metric] for run, floor in zip(runs, floor_runs)]


def spread(ratios: list[float]) -> str:
    """The median of per-round ratios, and their range."""
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def touching_number() -> bytes:
    """The first 4-digit number of the touching canvases (training.numbers), as the page sends it."""
    return next(body for body, text, _ in number_set("touching-number-canvas", 20) if len(text) == 4)


def over_http(settings: dict, rounds: int, seconds: float) -> tuple[list[tuple], list[tuple], list[tuple]]:
    canvas = (SAMPLES / "seven-canvas.png").read_bytes()
    touching = touching_number()
    _, _, network_file = model_files("mnist")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        config = serving_yaml(settings, work)
        store = work / "store"
        for name, handler in (("mnist", REPO_ROOT / "handler" / "digit_handler.py"),
                              ("floor", REPO_ROOT / "bench" / "floor_handler.py")):
            build_archive(name, "1.0", MODEL_DIR / "mnist.pt", config, network_file, store, handler)
        servers = {name: start_server(store, name, work / name) for name in ("floor", "mnist")}
        try:
            targets = {"floor": (f"{servers['floor'].inference_url}/predictions/floor", PLAIN),
                       "Digit Lens": (f"{servers['mnist'].inference_url}/predictions/mnist", PLAIN),
                       "Digit Lens, charts": (f"{servers['mnist'].inference_url}/predictions/mnist", CHARTED),
                       "Digit Lens, explanation + chart": (f"{servers['mnist'].inference_url}/explanations/mnist", CHARTED)}
            for url, headers in targets.values():
                load(url, canvas, headers, 4, 1.0)        # warm-up
            runs: dict[tuple, list[dict]] = {}
            for round_number in range(rounds):
                # Every other round in reverse, so that neither server is always measured first.
                order = list(targets.items())[::-1 if round_number % 2 else 1]
                for concurrency in CONCURRENCY:
                    for target, (url, headers) in order:
                        runs.setdefault((target, concurrency), []).append(load(url, canvas, headers, concurrency, seconds))
            url = targets["Digit Lens"][0]
            latency = {"one digit (canvas)": [], "4-digit number whose digits touch (X-Read: number)": []}
            for _ in range(rounds):     # one caller at a time: the latency a person sees
                latency["one digit (canvas)"].append(load(url, canvas, PLAIN, 1, seconds)["p50"])
                latency["4-digit number whose digits touch (X-Read: number)"].append(
                    load(url, touching, {**PLAIN, "X-Read": "number"}, 1, seconds)["p50"])
            rss = {name: sum(psutil.Process(pid).memory_info().rss for pid in server.worker_pids(name)) / 2**20
                   for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    median = medians(runs)
    rows = [(target, str(c), f"{m['rps']:.0f}", f"{m['p50']:.1f}", f"{m['p95']:.1f}", f"{m['p99']:.1f}",
             spread(paired_ratios(runs[(target, c)], runs[("floor", c)], "rps")),
             f"{statistics.median(paired_ratios(runs[(target, c)], runs[('floor', c)], 'p50')):.2f}",
             str(sum(run["failures"] for run in runs[(target, c)])))
            for c in CONCURRENCY for target in targets for m in [median[(target, c)]]]
    memory = [("floor", f"{rss['floor']:.0f}"), ("Digit Lens", f"{rss['mnist']:.0f}")]
    one = statistics.median(latency["one digit (canvas)"])
    latencies = [(name, f"{statistics.median(values):.1f}", f"{statistics.median(values) / one:.2f}x")
                 for name, values in latency.items()]
    return rows, memory, latencies


def through_front(settings: dict, rounds: int, seconds: float) -> list[tuple]:
    """Digit Lens behind the nginx front (ops.front) with one replica, then two, interleaved, each
    with the serving settings' torch threads."""
    canvas = (SAMPLES / "seven-canvas.png").read_bytes()
    _, _, network_file = model_files("mnist")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        replicas, fronts = [], {}
        try:
            for count in REPLICAS:
                store, config_dir = work / f"store-{count}", work / f"config-{count}"
                config_dir.mkdir()
                build_archive("mnist", "1.0", MODEL_DIR / "mnist.pt", serving_yaml(settings, config_dir), network_file, store)
                started = [start_server(store, "mnist", work / f"replica-{count}-{i}") for i in range(count)]
                replicas += started
                fronts[count] = NginxFront(work / f"front-{count}", free_port(),
                                           [replica.inference_url.removeprefix("http://") for replica in started],
                                           store / "models.json", UNLIMITED).start()
            runs: dict[tuple, list[dict]] = {}
            for front in fronts.values():
                load(f"{front.url}/predictions/mnist", canvas, PLAIN, 4, 1.0)       # warm-up
            for _ in range(rounds):
                for concurrency in FRONT_CONCURRENCY:
                    for (count, front), (case, headers) in itertools.product(fronts.items(), FRONT_CASES.items()):
                        runs.setdefault((case, concurrency, count), []).append(
                            load(f"{front.url}/predictions/mnist", canvas, headers, concurrency, seconds))
        finally:
            for front in fronts.values():
                front.stop()
            for replica in replicas:
                replica.stop()
    median = medians(runs)
    return [(case, str(c), f"{n} x {settings['threads']} thread(s)", f"{m['rps']:.0f}", f"{m['p50']:.1f}",
             f"{m['p95']:.1f}", f"{m['rps'] / median[(case, c, 1)]['rps']:.2f}",
             str(sum(run["failures"] for run in runs[(case, c, n)])))
            for c in FRONT_CONCURRENCY for case in FRONT_CASES for n in REPLICAS for m in [median[(case, c, n)]]]


def table(header: tuple, rows: list[tuple]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    gpu = f"GPU {torch.cuda.get_device_name(0)} (TorchServe gives it to every worker)" if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, {gpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300, help="repetitions of each in-process stage")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over HTTP")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measurement")
    parser.add_argument("--workers", type=int, help="workers per model (default: config.properties' default_workers_per_model)")
    parser.add_argument("--batch-size", type=int, help="override batchSize")
    parser.add_argument("--max-batch-delay", type=int, help="override maxBatchDelay (ms)")
    parser.add_argument("--threads", type=int, help="override the handler's torch threads per worker")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (Markdown)")
    parser.add_argument("--http-only", action="store_true", help="skip the in-process stages (to compare settings)")
    parser.add_argument("--no-front", action="store_true", help="skip the nginx front (a machine without nginx)")
    args = parser.parse_args(argv)
    spec = ModelSpec.from_yaml(MODEL_DIR / "mnist.yaml")
    base = yaml.safe_load((MODEL_DIR / "mnist.yaml").read_text())
    settings = {"workers": args.workers or default_workers(),
                "batchSize": args.batch_size or base["batchSize"],
                "maxBatchDelay": base["maxBatchDelay"] if args.max_batch_delay is None else args.max_batch_delay,
                "threads": args.threads or spec.threads}

    threads = settings["threads"] or torch.get_num_threads()
    stages = "" if args.http_only else table((f"stage (ms, {threads} torch thread(s))", "median", "p95", "runs"),
                                             in_process(spec, args.repeat, threads))
    print(stages, flush=True)
    http_rows, memory, latencies = over_http(settings, args.rounds, args.seconds)
    http = table(("server", "concurrency", "req/s", "p50 ms", "p95 ms", "p99 ms", "req/s vs floor (range)", "p50 vs floor",
                  "failed"), http_rows)
    rss = table(("worker RSS after the runs", "MiB"), memory)
    latency = table(("one caller at a time", "p50 ms (median of rounds)", "vs one digit"), latencies)
    print(http, rss, latency, sep="\n\n", flush=True)
    front = "" if args.no_front else table(
        ("request", "concurrency", "replicas x torch threads", "req/s", "p50 ms", "p95 ms", "req/s vs 1 replica", "failed"),
        through_front(settings, args.rounds, args.seconds))
    print(front)
    report = "\n\n".join([
        "# Digit Lens benchmark results",
        f"Written by `python -m bench.run` (`make bench`) on {datetime.date.today().isoformat()}.\n"
        f"Machine: {machine()}; torch {torch.__version__}.\n"
        f"Serving settings (both servers): {settings['workers']} worker(s), batch size {settings['batchSize']}, "
        f"max batch delay {settings['maxBatchDelay']} ms, {settings['threads']} torch thread(s) per worker. "
        f"HTTP: canvas PNG 280x280, {args.rounds} interleaved rounds of {args.seconds:g} s per case, medians.",
        "## In process", stages, "## Over HTTP: Digit Lens against the bare floor", http, rss,
        "## Over HTTP: a number whose digits touch against one digit", latency,
    ] + ([] if args.no_front else ["## Through the nginx front: one TorchServe replica against two on the same cores", front])
    ) + "\n"
    args.out.write_text(report)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
