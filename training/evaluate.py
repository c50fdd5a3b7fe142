"""Evaluate trained weights the way the endpoint serves them, fit the calibration temperature,
and write or check the report.

    python -m training.evaluate --model mnist     # report for model/mnist.pt, temperature into model/mnist.yaml
    python -m training.evaluate --model fashion
    python -m training.evaluate --model mnist --draw 7 --kinds heavy-blur,low-resolution   # another draw, 2,000 each
    python -m training.evaluate --model mnist --numbers   # only the whole numbers' part of the report
    python -m training.evaluate --model mnist --paper     # only the digits on paper (training.paper)

Accuracy is measured twice on the 10,000 test images: on the raw arrays (the model alone)
and posted as PNG files through the reading service (`digitlens.service`), second look included
(what the endpoint answers).
The presentation sets of the model's data set (`training.presentations`) go through
the service too. The temperature is fitted on the validation split, never on test images. A digit model is also
read on generated whole numbers (`training.numbers`: MNIST test digits written apart, close, or
touching), answered by the service as the endpoint answers `X-Read: number`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from digitlens.config import ModelSpec
from digitlens.service import ReadingService
from training.common import MODEL_DIR, dataset_of, load_model, prepared_batch, reading_service, validation_split
from training.data import fetch_dataset, load_split
from training.exposure import MEASURED_KINDS_TRAINED_ON
from training.non_examples import EVALUATION_SEED, EVALUATION_SIZE, outlier_kinds, outlier_set
from training.numbers import HELD_OUT_SETS, NUMBER_SETS, number_set
from training.paper import EMPTY_KINDS, HELD_OUT, PAPER_KINDS, paper_set
from training.presentations import PAGE_KINDS, SET_SEED, SETS_OF_DATASET, as_mnist_png, ink_sizes, presentation_set

CALIBRATION_BINS = 15
FLAGGED_SHARE = 0.005       # outlier_above flags this share of the validation images
INK_BINS = (25, 40, 60, 90, 120, 160, 201)   # page kinds are reported by the ink's longer side, px (the bands)


def normalise(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 (N, H, W) images to the float (N, 1, H, W) tensor the network takes."""
    return spec.normalise(images.float() / 255.0).unsqueeze(1)


@torch.inference_mode()
def logits_of(model: torch.nn.Module, batch: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(batch[i:i + batch_size].to(device)).cpu() for i in range(0, len(batch), batch_size)])


def predict_all(model: torch.nn.Module, images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    return logits_of(model, normalise(images, spec)).argmax(1)


def logits_for(model: torch.nn.Module, batch: np.ndarray, refused: list[int]) -> torch.Tensor:
    """The network's logits (no temperature, no second look); NaN for a refused upload."""
    logits = logits_of(model, torch.from_numpy(batch)).clone()   # an inference tensor is read-only
    logits[refused] = float("nan")
    return logits


def served_readings(service: ReadingService, batch: np.ndarray, refused: list[int],
                    chunk: int = 1000) -> tuple[torch.Tensor, np.ndarray | None]:
    """What the endpoint answers: the service's calibrated probabilities, second look included,
    NaN for a refused upload (it counts as an error); and the outlier scores, NaN where refused
    (None where the model has no scorer)."""
    results = [service.engine.predict(batch[i:i + chunk], with_activations=False) for i in range(0, len(batch), chunk)]
    probabilities = torch.from_numpy(np.concatenate([result.probabilities for result in results]))
    probabilities[refused] = float("nan")
    if service.engine.scorer is None:
        return probabilities, None
    scores = np.concatenate([result.outlier_scores for result in results])
    scores[refused] = np.nan
    return probabilities, scores


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = CALIBRATION_BINS) -> float:
    """|accuracy - confidence| averaged over equal-width confidence bins, weighted by their size."""
    confidence, predicted = probabilities.nan_to_num(0).max(1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.double().mean().item() * abs(correct[inside].mean().item() - confidence[inside].double().mean().item())
    return error


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return round(log_t.detach().exp().item(), 4)


def scores(logits: torch.Tensor, probabilities: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy and calibration of the served ``probabilities``; the calibration error before
    calibration is the network's own softmax of ``logits``."""
    predicted = probabilities.nan_to_num(-1).argmax(1)
    return {
        "images": len(labels),
        "accuracy": round((predicted == labels).double().mean().item(), 6),
        "errors": int((predicted != labels).sum()),
        "calibration_error_uncalibrated": round(expected_calibration_error(torch.softmax(logits, 1), labels), 5),
        "calibration_error": round(expected_calibration_error(probabilities, labels), 5),
    }


def calibrate(model: torch.nn.Module, spec: ModelSpec, cache_dir: Path, validation: int, seed: int) -> float:
    images, labels = validation_split(cache_dir, validation, seed)
    bodies = [as_mnist_png(image) for image in images.numpy()]
    return fit_temperature(logits_for(model, *prepared_batch(reading_service(model, spec, "calibration"), bodies)), labels)


def evaluate_on_test_set(model: torch.nn.Module, spec: ModelSpec, data_dir: Path) -> dict:
    """The model alone on the raw test arrays: accuracy, per class, confusion matrix."""
    images, labels = load_split(data_dir, "t10k")
    predicted = predict_all(model, images, spec)
    classes = len(spec.labels)
    confusion = torch.zeros(classes, classes, dtype=torch.int64)
    confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
    per_class = confusion.diag().double() / confusion.sum(1).double()
    return {
        "test_images": len(labels),
        "test_accuracy": round((predicted == labels).double().mean().item(), 6),
        "test_errors": int((predicted != labels).sum()),
        "per_class_accuracy": {spec.labels[c]: round(per_class[c].item(), 6) for c in range(classes)},
        "confusion_matrix": confusion.tolist(),
    }


def evaluate_served(model: torch.nn.Module, spec: ModelSpec, kinds: tuple[str, ...], size: int | None = None,
                    seed: int = SET_SEED) -> tuple[dict, dict]:
    """Accuracy and calibration error through the reading service for each presentation kind,
    and the outlier scores of each kind's digits."""
    service = reading_service(model, spec, "evaluation")
    results, digit_scores = {}, {}
    for kind in kinds:
        bodies, labels = presentation_set(kind, size, seed=seed)
        batch, refused = prepared_batch(service, bodies)
        probabilities, outlier_scores = served_readings(service, batch, refused)
        results[kind] = scores(logits_for(model, batch, refused), probabilities, torch.from_numpy(labels).long())
        results[kind]["refused"] = len(refused)
        if outlier_scores is not None:
            results[kind]["flagged_as_outliers"] = round(float(np.mean(outlier_scores > spec.outlier_above)), 6)
            digit_scores[kind] = outlier_scores[~np.isnan(outlier_scores)]
        if kind in PAGE_KINDS:
            results[kind]["by_ink_px"] = by_ink_size(probabilities.nan_to_num(-1).argmax(1).numpy() == labels,
                                                     refused, ink_sizes(kind, size, seed=seed))
    return results, digit_scores


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The chance that a positive scores above a negative (ties count half): the Mann-Whitney U."""
    ranks = rankdata(np.concatenate([negatives, positives]))
    return float((ranks[len(negatives):].sum() - len(positives) * (len(positives) + 1) / 2)
                 / (len(positives) * len(negatives)))


def fit_outlier_threshold(model: torch.nn.Module, spec: ModelSpec, cache_dir: Path, validation: int, seed: int) -> float:
    """The score above which FLAGGED_SHARE of the validation images (posted as PNGs) lie."""
    images, _ = validation_split(cache_dir, validation, seed)
    service = reading_service(model, spec, "threshold")
    _, outlier_scores = served_readings(service, *prepared_batch(service, [as_mnist_png(image) for image in images.numpy()]))
    return round(float(np.nanquantile(outlier_scores, 1 - FLAGGED_SHARE)), 4)


def evaluate_outliers(model: torch.nn.Module, spec: ModelSpec, dataset: str, digit_scores: dict,
                      trained_on: tuple[str, ...] = ()) -> dict:
    """Per kind of non-example (fitted kinds drawn anew, and held-out kinds): AUROC of the
    score against every served set's real images, and the share caught (flagged or refused). A
    kind is held out where neither the scorer's fit nor the network's training (``trained_on``,
    outlier exposure) saw its kind."""
    service = reading_service(model, spec, "outliers")
    real = np.concatenate(list(digit_scores.values()))
    report = {}
    for held_out in (False, True):
        for kind in outlier_kinds(dataset, held_out):
            batch, refused = prepared_batch(service, outlier_set(dataset, kind, EVALUATION_SIZE, EVALUATION_SEED))
            _, outlier_scores = served_readings(service, batch, refused)
            scored = outlier_scores[~np.isnan(outlier_scores)]
            report[kind] = {"held_out": held_out and kind not in trained_on, "images": len(batch), "refused": len(refused),
                            "auroc": round(auroc(scored, real), 4) if len(scored) else None,
                            "caught": round((len(refused) + int((scored > spec.outlier_above).sum())) / len(batch), 4)}
    return report


def by_ink_size(right: np.ndarray, refused: list[int], ink_px: np.ndarray) -> dict:
    """Accuracy and refusals of a page kind's uploads by the ink's longer side (INK_BINS)."""
    refusals = np.zeros(len(right), bool)
    refusals[refused] = True
    bins = {}
    for low, high in zip(INK_BINS, INK_BINS[1:]):
        chosen = (ink_px >= low) & (ink_px < high)
        if chosen.any():
            bins[f"{low}-{high}"] = {"images": int(chosen.sum()), "accuracy": round(float(right[chosen].mean()), 6),
                                     "refused": int(refusals[chosen].sum())}
    return bins


def write_handler_value(config: Path, key: str, value: float) -> None:
    """Set ``key:`` (a number) in the model YAML's handler section, keeping its comments."""
    text = config.read_text()
    line = re.compile(rf"^(\s+{key}:\s*)[0-9.]+", re.MULTILINE)
    if not line.search(text):
        raise ValueError(f"{config} has no `{key}:` line in its handler section")
    config.write_text(line.sub(lambda m: f"{m.group(1)}{value}", text, count=1))


def evaluate_numbers(model: torch.nn.Module, spec: ModelSpec) -> dict:
    """Per number kind: the share read exactly (all, and 2-5 digits: the issue's band), the share
    with as many digits found as written, and the share read exactly by length."""
    service = reading_service(model, spec, "numbers")
    results = {}
    for kind in NUMBER_SETS:
        exact, counted, lengths = [], [], []
        for body, truth, _ in number_set(kind):
            status, answer = service.answer([(body, {"X-Read": "number"})])[0]
            digits = answer["digits"] if status == 200 else []
            read = answer["number"] if digits else ""
            exact.append(read == truth)
            counted.append(len(digits) == len(truth))
            lengths.append(len(truth))
        exact, lengths = np.asarray(exact), np.asarray(lengths)
        results[kind] = {
            "numbers": len(exact), "exact": round(float(exact.mean()), 6),
            "exact_2_to_5_digits": round(float(exact[(lengths >= 2) & (lengths <= 5)].mean()), 6),
            "digits_counted_right": round(float(np.mean(counted)), 6),
            "exact_by_length": {str(n): round(float(exact[lengths == n].mean()), 6) for n in sorted(set(lengths))},
            "held_out": kind in HELD_OUT_SETS,
        }
    return results


def evaluate_paper(model: torch.nn.Module, spec: ModelSpec) -> dict:
    """Per kind of paper (training.paper), tuned on and held out: the share read right, and the
    share flagged as not a digit or refused; for the empty kinds, the share caught (all should be)."""
    service = reading_service(model, spec, "paper")
    results = {}
    for kind in (*PAPER_KINDS, *(kind + HELD_OUT for kind in PAPER_KINDS), *EMPTY_KINDS):
        bodies, labels = paper_set(kind)
        batch, refused = prepared_batch(service, bodies)
        probabilities, outlier_scores = served_readings(service, batch, refused)
        caught = np.isnan(outlier_scores) | (outlier_scores > spec.outlier_above) if outlier_scores is not None \
            else np.isin(np.arange(len(bodies)), refused)
        results[kind] = {"images": len(bodies), "held_out": kind.endswith(HELD_OUT), "refused": len(refused),
                         "flagged_or_refused": round(float(caught.mean()), 6)}
        if kind not in EMPTY_KINDS:
            results[kind]["accuracy"] = round(float(np.mean(probabilities.nan_to_num(-1).argmax(1).numpy() == labels)), 6)
    return results


def print_paper_table(paper: dict) -> None:
    if paper:
        print(f"{'paper':24} {'images':>6} {'accuracy':>9} {'flagged or refused':>19}")
    for kind, result in paper.items():
        accuracy = f"{result['accuracy']:9.2%}" if "accuracy" in result else f"{'-':>9}"
        print(f"{kind:24} {result['images']:6d} {accuracy} {result['flagged_or_refused']:19.2%}")


def print_number_table(numbers: dict) -> None:
    if numbers:
        print(f"{'numbers':32} {'count':>6} {'exact':>7} {'2-5 dig.':>8} {'counted':>8}")
    for kind, result in numbers.items():
        name = kind + (" (held out)" if result.get("held_out") else "")
        print(f"{name:32} {result['numbers']:6d} {result['exact']:7.2%} {result['exact_2_to_5_digits']:8.2%} "
              f"{result['digits_counted_right']:8.2%}")


def print_table(served: dict) -> None:
    print(f"{'set':24} {'accuracy':>9} {'errors':>6} {'refused':>7} {'ECE before':>10} {'ECE after':>9}")
    for kind, result in served.items():
        print(f"{kind:24} {result['accuracy']:9.4%} {result['errors']:6d} {result['refused']:7d} "
              f"{result['calibration_error_uncalibrated']:10.4f} {result['calibration_error']:9.4f}")
    for kind, result in served.items():
        for ink, part in result.get("by_ink_px", {}).items():
            print(f"{kind + ', ink ' + ink + ' px':24} {part['accuracy']:9.4%} {part['images']:6d} images "
                  f"{part['refused']:3d} refused")


def print_outlier_table(outliers: dict) -> None:
    if outliers:
        print(f"{'non-examples':24} {'held out':>8} {'AUROC':>7} {'caught':>7} {'refused':>7}")
    for kind, result in outliers.items():
        print(f"{kind:24} {'yes' if result['held_out'] else 'no':>8} {result['auroc'] or float('nan'):7.4f} "
              f"{result['caught']:7.1%} {result['refused']:7d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mnist", help="model/<model>.yaml, .pt and -report.json")
    parser.add_argument("--weights", type=Path, help="instead of model/<model>.pt")
    parser.add_argument("--data", type=Path, help="folder of the data set's IDX files")
    parser.add_argument("--draw", type=int, metavar="SEED",
                        help="read another seeded draw of the presentation sets instead (--size uploads of each "
                             "of --kinds): prints the table, writes nothing")
    parser.add_argument("--size", type=int, default=2000, help="uploads of each kind in a --draw")
    parser.add_argument("--kinds", help="comma-separated kinds for a --draw (default: all of the data set's)")
    parser.add_argument("--numbers", action="store_true", help="read the whole numbers only, into the report")
    parser.add_argument("--paper", action="store_true",
                        help="read the digits on paper (boxes, grids, ruled lines, underlines) only, into the report")
    args = parser.parse_args(argv)
    config, report_path = MODEL_DIR / f"{args.model}.yaml", MODEL_DIR / f"{args.model}-report.json"
    spec = ModelSpec.from_yaml(config)
    dataset = dataset_of(config)
    kinds = tuple(args.kinds.split(",") if args.kinds else SETS_OF_DATASET[dataset])
    unknown = sorted(set(kinds) - set(SETS_OF_DATASET[dataset]))
    if unknown:
        parser.error(f"unknown kinds {unknown}; {dataset} has {', '.join(SETS_OF_DATASET[dataset])}")
    if args.kinds and args.draw is None:
        parser.error("--kinds goes with --draw: the report always has every kind")
    data_dir = fetch_dataset(dataset, args.data)
    model = load_model(args.weights or MODEL_DIR / f"{args.model}.pt", spec)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if args.numbers or args.paper:
        if spec.preprocess != "digit":
            parser.error(f"model {args.model} reads no digits on paper nor numbers")
        if args.numbers:
            report["numbers"] = evaluate_numbers(model, spec)
        if args.paper:
            report["paper"] = evaluate_paper(model, spec)
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        print_paper_table(report.get("paper", {}) if args.paper else {})
        print_number_table(report.get("numbers", {}) if args.numbers else {})
        return 0
    temperature = calibrate(model, spec, data_dir, report.get("validation_images", 5000), report.get("seed", 1))
    if args.draw is not None:
        print(f"temperature {temperature}; draw {args.draw}, {args.size} uploads of each kind")
        print_table(evaluate_served(model, dataclasses.replace(spec, temperature=temperature), kinds, args.size, args.draw)[0])
        return 0
    write_handler_value(config, "temperature", temperature)
    spec = ModelSpec.from_yaml(config)                       # served with the new temperature
    if spec.outlier_scorer:
        write_handler_value(config, "outlier_above", fit_outlier_threshold(
            model, spec, data_dir, report.get("validation_images", 5000), report.get("seed", 1)))
        spec = ModelSpec.from_yaml(config)
    report.update(evaluate_on_test_set(model, spec, data_dir))
    report["temperature"] = temperature
    report["second_look_below"] = spec.second_look_below
    report["served"], digit_scores = evaluate_served(model, spec, kinds)
    if spec.outlier_scorer:
        report["outlier_above"] = spec.outlier_above
        trained_on = MEASURED_KINDS_TRAINED_ON if report.get("outlier_exposure") else ()
        report["outliers"] = evaluate_outliers(model, spec, dataset, digit_scores, trained_on)
    if spec.preprocess == "digit":
        report["paper"] = evaluate_paper(model, spec)
        report["numbers"] = evaluate_numbers(model, spec)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"temperature {temperature}, outlier_above {spec.outlier_above} (written to {config})")
    print_table(report["served"])
    print_outlier_table(report.get("outliers", {}))
    print_paper_table(report.get("paper", {}))
    print_number_table(report.get("numbers", {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
