"""`digitlens`: read images through a Digit Lens server from the shell.

    digitlens predict photo.jpg scans/            # files and folders (recursively, images only): a table
    digitlens predict scans/ --json               # one JSON object a line, for scripts
    digitlens predict meter.jpg --number          # a whole number, digit by digit
    digitlens predict scans/ --csv out.csv --charts charts/ --explain
    digitlens models                              # served models and versions
    digitlens health

The server is --url, else $DIGITLENS_URL, else http://127.0.0.1:8080 (`make serve`). Exit
status: 0 when every image was read, 1 when any was not (each gets its own line with the
error; the others are still read), 2 for a wrong command line, 3 when the server cannot be
reached, 130 when interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import base64
import csv
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from digitlens.client import (DEFAULT_URL, URL_VARIABLE, Client, DigitLensError, NumberReading, Prediction,
                              ServerUnreachable)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}   # what folders are searched for
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 1, 2, 3, 130
CSV_COLUMNS = ("path", "digit", "label", "confidence", "outlier", "outlier_score", "looks_like_number", "number",
               "error")


def image_paths(arguments: list[str]) -> list[Path]:
    """Files as named, and the images under folders (recursively, sorted); a missing path is an error."""
    paths = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            paths += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            paths.append(path)
        else:
            raise FileNotFoundError(f"{argument}: no such file or folder")
    return paths


def read_one(client: Client, path: Path, args) -> dict:
    """One image's line: what the server read, or the error it gave."""
    try:
        reading = client.predict(path, model=args.model, charts=bool(args.charts), number=args.number)
        explanation = client.explain(path, model=args.model, charts=True) if args.explain else None
    except ServerUnreachable:
        raise
    except DigitLensError as error:
        return {"path": str(path), "error": {"status": error.status, "type": error.type, "message": error.message,
                                             "request_id": error.request_id}}
    except OSError as error:
        return {"path": str(path), "error": {"status": None, "type": "unreadable", "message": str(error)}}
    line = {"path": str(path), **as_record(reading)}
    if args.charts:
        save_charts(Path(args.charts), path, reading, explanation)
    return line


def as_record(reading: Prediction | NumberReading) -> dict:
    if isinstance(reading, NumberReading):
        return {"number": reading.number, "confidence": reading.confidence,
                "digits": [{"digit": d.digit, "label": d.label, "confidence": d.confidence, "box": list(d.box),
                            "outlier_score": d.outlier_score, "outlier": d.outlier} for d in reading.digits],
                "model": reading.model}
    return {"digit": reading.digit, "label": reading.label, "confidence": reading.confidence,
            "outlier_score": reading.outlier_score, "outlier": reading.outlier,
            "looks_like_number": reading.looks_like_number, "model": reading.model}


def save_charts(folder: Path, path: Path, reading, explanation) -> None:
    """Each chart as a PNG named after the image: ``<stem>.probabilities.png``, ``<stem>.conv1.png``, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    charts = {}
    if isinstance(reading, NumberReading):
        for position, digit in enumerate(reading.digits, start=1):
            charts |= {f"digit{position}.{name}": url for name, url in flat_charts(digit.charts or {}).items()}
    else:
        charts = flat_charts(reading.charts or {})
    if explanation is not None:
        charts["attributions"] = explanation.charts["attributions"]
    for name, url in charts.items():
        (folder / f"{path.stem}.{name}.png").write_bytes(base64.b64decode(url.split(",", 1)[1]))


def flat_charts(charts: dict) -> dict[str, str]:
    flat = {name: url for name, url in charts.items() if isinstance(url, str)}
    flat |= charts.get("activations", {})
    return flat


def table_line(line: dict) -> str:
    if "error" in line:
        error = line["error"]
        request = f" (request {error['request_id']})" if error.get("request_id") else ""
        return f"{line['path']}\terror {error['status'] or ''} {error['type']}: {error['message']}{request}"
    if "number" in line:
        return f"{line['path']}\t{line['number'] or '-'}\t{line['confidence']:.1%}\t{len(line['digits'])} digits"
    notes = [note for note, on in (("not a digit", line["outlier"]),
                                   ("looks like a number: try --number", line["looks_like_number"])) if on]
    return f"{line['path']}\t{line['label']}\t{line['confidence']:.1%}\t{', '.join(notes)}".rstrip()


def csv_row(line: dict) -> dict:
    row = {column: line.get(column, "") for column in CSV_COLUMNS}
    if "error" in line:
        row["error"] = f"{line['error']['type']}: {line['error']['message']}"
    return row


def predict(args) -> int:
    if args.explain and not args.charts:
        print("digitlens: --explain saves the attribution overlay among the charts: give --charts DIR", file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = image_paths(args.paths)
    except FileNotFoundError as error:
        print(f"digitlens: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not paths:
        print("digitlens: no images found (searched for " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")", file=sys.stderr)
        return EXIT_USAGE
    client = Client(args.url, timeout=args.timeout)
    csv_file = open(args.csv, "w", newline="") if args.csv else None
    writer = csv.DictWriter(csv_file, CSV_COLUMNS) if csv_file else None
    if writer:
        writer.writeheader()
    failed = False
    pool = ThreadPoolExecutor(max_workers=args.concurrency)
    progress = tqdm(total=len(paths), unit="image", disable=None if len(paths) > 1 else True, file=sys.stderr)
    try:
        for line in pool.map(lambda path: read_one(client, path, args), paths):
            failed |= "error" in line
            progress.write(json.dumps(line) if args.json else table_line(line), file=sys.stdout)
            if writer:
                writer.writerow(csv_row(line))
            progress.update()
    except ServerUnreachable as error:
        print(f"digitlens: {error.message}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        print("digitlens: interrupted; the images not yet read were not sent", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        progress.close()
        if csv_file:
            csv_file.close()
        client.close()
    return EXIT_FAILED if failed else 0


def models(args) -> int:
    client = Client(args.url, timeout=args.timeout, management_url=args.management)
    try:
        versions = client.models()
    except DigitLensError as error:
        print(f"digitlens: {error.message}", file=sys.stderr)
        return EXIT_UNREACHABLE if isinstance(error, ServerUnreachable) else EXIT_FAILED
    for version in versions:
        print(json.dumps(version) if args.json else
              f"{version['name']}\t{version['version']}{'  (default)' if version['default'] else ''}")
    return 0


def health(args) -> int:
    client = Client(args.url, timeout=args.timeout)
    try:
        answer = client.health()
    except DigitLensError as error:
        print(json.dumps({"healthy": False, "error": error.message}) if args.json else f"unhealthy: {error.message}")
        return EXIT_UNREACHABLE if isinstance(error, ServerUnreachable) else EXIT_FAILED
    healthy = answer.get("status") == "Healthy"
    print(json.dumps({"healthy": healthy, **answer}) if args.json else f"{answer.get('status', answer)} ({client.url})")
    return 0 if healthy else EXIT_FAILED


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help=f"the inference API (default: ${URL_VARIABLE} or {DEFAULT_URL})")
    common.add_argument("--json", action="store_true", help="one JSON object a line")
    common.add_argument("--timeout", type=float, default=60, help="seconds to wait for each answer")
    top = argparse.ArgumentParser(prog="digitlens", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = top.add_subparsers(dest="verb", required=True, metavar="{predict,models,health}")
    read = verbs.add_parser("predict", parents=[common], help="read images: files or folders")
    read.add_argument("paths", nargs="+", metavar="PATH", help="image files, or folders searched recursively for images")
    read.add_argument("--model", default="mnist", help="the served model (default: mnist)")
    read.add_argument("--number", action="store_true", help="read each image as a whole number, digit by digit")
    read.add_argument("--csv", metavar="FILE", help="also write the results as CSV")
    read.add_argument("--charts", metavar="DIR", help="save each image's charts as PNGs in DIR")
    read.add_argument("--explain", action="store_true", help="also save the attribution overlay (with --charts)")
    read.add_argument("--concurrency", type=int, default=4, help="images read at once (default: 4)")
    read.set_defaults(run=predict)
    listing = verbs.add_parser("models", parents=[common], help="served models and their versions")
    listing.add_argument("--management", default=None, help="the management API (default: $DIGITLENS_MANAGEMENT_URL "
                                                            "or http://127.0.0.1:8081; else the front's models.json)")
    listing.set_defaults(run=models)
    verbs.add_parser("health", parents=[common], help="is the server up").set_defaults(run=health)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "concurrency", 1) < 1:
        parser().error("--concurrency must be at least 1")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
