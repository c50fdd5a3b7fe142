"""Train a model described by a YAML in model/ (its network, data set and augmentation).

    python -m training.train --config model/mnist.yaml      # the base run behind model/mnist.pt
    python -m training.train --config model/fashion.yaml    # model/fashion.pt
    python -m training.train --epochs 1 --limit 2000 --out /tmp/smoke   # a quick smoke run

The YAML's `training` section sets the data set, augmentation, epochs, learning rate and
label smoothing; flags override them. Weights and report go to <out>/<name>.pt and
<out>/<name>-report.json, <name> being the YAML's file name.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from digitlens.config import ModelSpec
from digitlens.engine import load_network
from training.augment import LOW_RESOLUTION_SHARE, augmenter
from training.data import DATASET_SHA256, fetch_dataset, load_split
from training.common import MODEL_DIR, validation_split_index
from training.evaluate import evaluate_on_test_set, predict_all
from training.exposure import exposure_pool
from training.typefaces import typeface_digits

DEFAULTS = {"epochs": 28, "lr": 0.08, "label_smoothing": 0.05}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=MODEL_DIR / "mnist.yaml")
    parser.add_argument("--epochs", type=int, help=f"default: the YAML's, else {DEFAULTS['epochs']}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--degraded-share", type=float, default=0.0,
                        help="share of each batch made bold, blurred or low-resolution (handwriting only; "
                             "see training.augment.degrade)")
    parser.add_argument("--low-resolution-share", type=float, default=LOW_RESOLUTION_SHARE,
                        help="of the degraded images, the share given a low-resolution source (the rest: marker, blur, fine pen)")
    parser.add_argument("--as-served", action="store_true",
                        help="normalise every training image as serving normalises uploads (cropped, scaled, centred by mass)")
    parser.add_argument("--widened-share", type=float, default=0.0,
                        help="share of each batch whose narrow digits are widened to a box (handwriting only; "
                             "see training.augment.widen_to_box)")
    parser.add_argument("--restroked-share", type=float, default=0.0,
                        help="share of each batch drawn again with a brush of one width (handwriting only; "
                             "see training.augment.restroke)")
    parser.add_argument("--typeface-share", type=float, default=0.0,
                        help="share of the training images that are digits set in typefaces (handwriting only; "
                             "see training.typefaces)")
    parser.add_argument("--outlier-exposure", type=float, default=0.0,
                        help="non-examples added to each batch, as a share of its digits (training.exposure); their "
                             "loss pulls the network's output toward uniform")
    parser.add_argument("--exposure-weight", type=float, default=0.5,
                        help="weight of the non-examples' loss against the digits' (Hendrycks et al.: 0.5)")
    parser.add_argument("--init", type=Path, help="start from these weights (fine-tuning) instead of from scratch")
    parser.add_argument("--keep-init-share", type=float, default=0.0,
                        help="with --init: save this share of the starting weights plus the rest of the trained "
                             "ones (weight-space ensembling, WiSE-FT), keeping more of what the start read well")
    parser.add_argument("--validation", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--limit", type=int, default=0, help="train on only this many images (smoke runs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, help="folder of the data set's IDX files (default: where training.data keeps it)")
    parser.add_argument("--device", default="cpu",
                        help="where the network trains (cpu, cuda); augmentation stays on the CPU, seeded")
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="folder for <name>.pt and <name>-report.json")
    args = parser.parse_args(argv)
    with open(args.config) as f:
        args.training = yaml.safe_load(f).get("training", {})
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, args.training.get(key, default))
    return args


def with_typefaces(images: torch.Tensor, labels: torch.Tensor, share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images, with typeface digits (face after face, over again) making up ``share`` of them."""
    if not share:
        return images, labels
    if not 0 < share < 1:
        raise ValueError(f"--typeface-share must be between 0 and 1, not {share}")
    faces, face_labels = typeface_digits()
    chosen = torch.arange(round(share * len(images) / (1 - share))) % len(faces)
    return torch.cat([images, faces[chosen]]), torch.cat([labels, face_labels[chosen]])


def keep_some_of(model: torch.nn.Module, start: Path, share: float) -> None:
    """Move the model's weights ``share`` of the way back to the weights in ``start``, in place
    (batch-norm statistics too; counters stay the trained model's)."""
    start_state = torch.load(start, map_location="cpu", weights_only=True)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.lerp_(start_state[name].to(tensor.device), share)


def accuracy_of(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: ModelSpec) -> float:
    """Share of ``images`` the model reads as ``labels``; NaN when there are none (no validation split)."""
    return (predict_all(model, images, spec) == labels).double().mean().item() if len(images) else float("nan")


def train_epoch(model, ema, optimizer, scheduler, images, labels, spec, args, augment, generator,
                non_examples: torch.Tensor | None = None) -> tuple[float, float]:
    """One pass over ``images``; with ``non_examples`` (outlier exposure) each batch also carries
    --outlier-exposure of them, augmented as the digits are, whose cross-entropy against the
    uniform distribution is added with --exposure-weight."""
    model.train()
    device = next(model.parameters()).device
    order = torch.randperm(len(images), generator=generator)
    total_loss = correct = 0.0
    for start in range(0, len(order), args.batch_size):
        index = order[start:start + args.batch_size]
        batch = images[index]
        exposed = 0
        if non_examples is not None:
            exposed = round(args.outlier_exposure * len(index))
            batch = torch.cat([batch, non_examples[torch.randint(len(non_examples), (exposed,), generator=generator)]])
        batch = augment(batch.float().unsqueeze(1) / 255.0, generator).to(device, non_blocking=True)
        target = labels[index].to(device, non_blocking=True)
        logits = model(spec.normalise(batch))
        if exposed:
            logits, outlier_logits = logits[:len(index)], logits[len(index):]
        loss = F.cross_entropy(logits, target, label_smoothing=args.label_smoothing)
        if exposed:
            loss = loss - args.exposure_weight * F.log_softmax(outlier_logits, 1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        total_loss += loss.item() * len(index)
        correct += (logits.argmax(1) == target).sum().item()
    return total_loss / len(order), correct / len(order)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    spec = ModelSpec.from_yaml(args.config)
    name = args.config.stem
    dataset = args.training.get("data", "mnist")
    augment = augmenter(args.training.get("augment", "handwriting"), args.degraded_share, spec.content_size,
                        args.low_resolution_share, args.as_served, args.widened_share, args.restroked_share)

    if args.keep_init_share and not (args.init and 0 < args.keep_init_share < 1):
        raise SystemExit("--keep-init-share needs --init and a share between 0 and 1")
    if args.typeface_share and dataset != "mnist":
        raise SystemExit(f"--typeface-share adds digits: it does not apply to {dataset}")
    data_dir = fetch_dataset(dataset, args.data)
    images, labels = load_split(data_dir, "train")
    val_index, train_index = validation_split_index(len(images), args.validation, args.seed)
    if args.limit:
        train_index = train_index[:args.limit]
    train_images, train_labels = with_typefaces(images[train_index], labels[train_index], args.typeface_share)
    val_images, val_labels = images[val_index], labels[val_index]
    non_examples = None
    if args.outlier_exposure:
        if dataset != "mnist":
            raise SystemExit(f"--outlier-exposure has non-examples for digits: it does not apply to {dataset}")
        non_examples = torch.from_numpy(exposure_pool(spec))
        print(f"outlier exposure: {args.outlier_exposure:.0%} of each batch from {len(non_examples)} non-examples",
              flush=True)

    device = torch.device(args.device)
    model = load_network(args.config.parent / spec.network_file, spec.network, len(spec.labels), args.init).to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(train_images) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.2)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{spec.network} on {dataset}: {parameters} parameters; {len(train_images)} training, "
          f"{len(val_index)} validation images; {torch.get_num_threads()} threads", flush=True)

    started = time.perf_counter()
    history = []
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        loss, train_acc = train_epoch(model, ema, optimizer, scheduler, train_images, train_labels, spec, args,
                                      augment, generator, non_examples)
        val_acc = accuracy_of(ema.module, val_images, val_labels, spec)
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "loss": round(loss, 5), "train_accuracy": round(train_acc, 5),
                        "validation_accuracy": round(val_acc, 5), "seconds": round(seconds, 1)})
        print(f"epoch {epoch:2d}/{args.epochs}  loss {loss:.4f}  train acc {train_acc:.4f}  "
              f"val acc (EMA) {val_acc:.4f}  {seconds:.0f}s", flush=True)
    training_seconds = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    ema.module.cpu()
    if args.keep_init_share:
        keep_some_of(ema.module, args.init, args.keep_init_share)
        val_acc = accuracy_of(ema.module, val_images, val_labels, spec)
    torch.save(ema.module.state_dict(), args.out / f"{name}.pt")
    report = {
        "model": spec.network, "data": dataset, "parameters": parameters, "epochs": args.epochs,
        "batch_size": args.batch_size, "peak_lr": args.lr, "label_smoothing": args.label_smoothing,
        "augment": args.training.get("augment", "handwriting"), "degraded_share": args.degraded_share,
        "low_resolution_share": args.low_resolution_share,
        "widened_share": args.widened_share, "restroked_share": args.restroked_share,
        "typeface_share": args.typeface_share, "as_served": args.as_served, "seed": args.seed,
        "outlier_exposure": args.outlier_exposure, "exposure_weight": args.exposure_weight,
        "training_images": len(train_images), "validation_images": len(val_index),
        "validation_accuracy": round(val_acc, 5), "keep_init_share": args.keep_init_share,
        "training_seconds": round(training_seconds, 1), "history": history,
        "torch_version": torch.__version__, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"
                   + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""),
        "data_sha256": DATASET_SHA256[dataset],
        **evaluate_on_test_set(ema.module, spec, data_dir),
    }
    (args.out / f"{name}-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"test accuracy {report['test_accuracy']:.4f} ({report['test_errors']} errors) "
          f"after {training_seconds / 60:.1f} min; wrote {args.out}/{name}.pt", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
