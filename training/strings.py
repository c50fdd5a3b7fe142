"""Train the string reader (``digitlens.strings``) that splits runs of touching digits.

    python -m training.strings                    # model/mnist-strings.pt (about 40 minutes on 2 CPU cores)
    python -m training.strings --strips 2000 --epochs 1 --out /tmp/smoke   # a quick smoke run

Its strips are made of MNIST training digits, never the validation split (which the number
reader's settings are measured on) nor test digits (which `make evaluate` reads): 1-8 digits,
written apart, close, touching or overlapping a little (``training.numbers.compose_number``),
many of them ones and sevens, the strokes made thinner or bolder or drawn again with a round
brush, and slanted, then scaled as
serving scales a run (``strip_input``). Seeded: the same flags make the same weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from digitlens.prepare.normalise import STRIP_HEIGHT, STRIP_STEP, strip_input
from digitlens.prepare.primitives import crop_to_ink
from digitlens.strings import StringNet, read_columns
from training.common import MODEL_DIR, validation_split_index
from training.data import fetch_dataset, load_split
from training.augment import brush_along
from training.numbers import DIGIT_HEIGHT, NARROW, SPACINGS, compose_number

SEED = 2031
LENGTHS = (1, 8)
SPACING_SHARES = (0.2, 0.2, 0.6)    # apart, close, touching (SPACINGS)
NARROW_SHARE = 0.2                  # strips whose digits are half ones and sevens
RESTROKED_SHARE = 0.3               # strips drawn again with a round brush (as training.numbers.number_brush)


def training_digits(validation: int = 5000, split_seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_split(fetch_dataset("mnist"), "train")
    _, training = validation_split_index(len(images), validation, split_seed)
    return images[training].numpy(), labels[training].numpy()


def slanted(coverage: np.ndarray, shear: float) -> np.ndarray:
    height, width = coverage.shape
    pad = int(abs(shear) * height) + 1
    image = Image.fromarray(np.pad(coverage, ((0, 0), (pad, pad))))
    return np.asarray(image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * height / 2, 0, 1, 0),
                                      Image.Resampling.BILINEAR), np.float32)


def make_strip(images: np.ndarray, labels: np.ndarray, narrow: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One training strip and the digits it holds."""
    count = int(rng.integers(LENGTHS[0], LENGTHS[1] + 1))
    chosen = rng.choice(len(images), count)
    if rng.random() < NARROW_SHARE:
        chosen[rng.permutation(count)[:max(1, count // 2)]] = rng.choice(narrow, max(1, count // 2))
    spacing = SPACINGS[int(rng.choice(len(SPACINGS), p=SPACING_SHARES))]
    coverage, _ = compose_number(list(images[chosen]), rng, spacing)
    if rng.random() < RESTROKED_SHARE:      # a brush tool: the centre lines drawn again with a round brush
        coverage = brush_along(skeletonize(coverage > 0.5), rng.uniform(0.015, 0.07) * DIGIT_HEIGHT)
    else:                                   # the strokes thinner (an erosion) or bolder (a dilation)
        pen = int(rng.integers(-3, 6))
        if pen > 1:
            coverage = ndimage.grey_dilation(coverage, size=(pen, pen))
        elif pen < -1:
            coverage = ndimage.grey_erosion(coverage, size=(-pen, -pen))
    if rng.random() < 0.5:
        coverage = slanted(coverage, rng.uniform(-0.25, 0.25))
    if coverage.max() <= 0.1:
        return make_strip(images, labels, narrow, rng)
    return strip_input(crop_to_ink(np.where(coverage > 0.1, coverage, 0))), "".join(str(label) for label in labels[chosen])


def batches(strips: list[np.ndarray], texts: list[str], size: int, generator: torch.Generator):
    """Batches of strips of like width (padded to the widest), with CTC targets and lengths."""
    order = np.argsort([strip.shape[1] for strip in strips], kind="stable")
    groups = [order[start:start + size] for start in range(0, len(order), size)]
    for group in torch.randperm(len(groups), generator=generator).tolist():
        chosen = groups[group]
        width = max(strips[i].shape[1] for i in chosen)
        batch = np.zeros((len(chosen), 1, STRIP_HEIGHT, width), np.float32)
        for row, i in enumerate(chosen):
            batch[row, 0, :, :strips[i].shape[1]] = strips[i]
        targets = torch.tensor([int(c) + 1 for i in chosen for c in texts[i]])
        yield (torch.from_numpy(batch), targets, torch.tensor([strips[i].shape[1] // STRIP_STEP for i in chosen]),
               torch.tensor([len(texts[i]) for i in chosen]))


def exact_share(network: StringNet, strips: list[np.ndarray], texts: list[str]) -> float:
    network.eval()
    right = 0
    with torch.inference_mode():
        for strip, text in zip(strips, texts):
            log_probabilities = network(torch.from_numpy(strip)[None, None]).log_softmax(1)[0].numpy()
            right += "".join(map(str, read_columns(log_probabilities).digits)) == text
    network.train()
    return right / len(strips)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strips", type=int, default=100000, help="training strips, made once")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    started = time.time()
    images, labels = training_digits()
    narrow = np.flatnonzero(np.isin(labels, NARROW))
    rng = np.random.default_rng(SEED)
    made = [make_strip(images, labels, narrow, rng) for _ in range(args.strips + 500)]
    strips, texts = [strip for strip, _ in made], [text for _, text in made]
    checked = (strips[args.strips:], texts[args.strips:])       # 500 strips never trained on
    strips, texts = strips[:args.strips], texts[:args.strips]
    print(f"made {len(strips)} strips in {time.time() - started:.0f} s", flush=True)
    network = StringNet()
    steps = args.epochs * -(-len(strips) // 64)
    optimiser = torch.optim.AdamW(network.parameters(), args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=steps)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for batch, targets, widths, lengths in batches(strips, texts, 64, generator):
            log_probabilities = network(batch).log_softmax(1).permute(2, 0, 1)     # (columns, N, classes)
            loss = F.ctc_loss(log_probabilities, targets, widths, lengths, zero_infinity=True)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total, count = total + loss.item(), count + 1
        print(f"epoch {epoch + 1}: loss {total / count:.4f}, exact {exact_share(network, *checked):.2%} of 500 "
              f"unseen strips, {time.time() - started:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), args.out / "mnist-strings.pt")
    report = {"strips": len(strips), "epochs": args.epochs, "seed": SEED, "seconds": round(time.time() - started),
              "exact_unseen": exact_share(network, *checked)}
    (args.out / "mnist-strings-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
