"""Train DigitNet on MNIST with augmentation aimed at real uploads.

    python -m training.train                      # the full run behind model/mnist.pt
    python -m training.train --epochs 1 --limit 2000 --out /tmp/smoke   # a quick smoke run
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
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from digitlens.config import ModelSpec
from model.network import DigitNet
from training.augment import augment_batch
from training.data import DEFAULT_CACHE, MNIST_SHA256, fetch_mnist, load_split
from training.evaluate import MODEL_DIR, predict_all, evaluate_on_test_set


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.08, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--label-smoothing", type=float, default=0.05)
    parser.add_argument("--degraded-share", type=float, default=0.0,
                        help="share of each batch made bold, blurred or low-resolution (see training.augment.degrade)")
    parser.add_argument("--init", type=Path, help="start from these weights (fine-tuning) instead of from scratch")
    parser.add_argument("--validation", type=int, default=5000, help="training images held out for validation")
    parser.add_argument("--limit", type=int, default=0, help="train on only this many images (smoke runs)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", type=Path, default=MODEL_DIR / "mnist.yaml")
    parser.add_argument("--data", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="folder for mnist.pt and mnist-report.json")
    return parser.parse_args(argv)


def train_epoch(model, ema, optimizer, scheduler, images, labels, spec, args, generator) -> tuple[float, float]:
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total_loss = correct = 0.0
    for start in range(0, len(order), args.batch_size):
        index = order[start:start + args.batch_size]
        batch = augment_batch(images[index].float().unsqueeze(1) / 255.0, generator,
                              degraded_share=args.degraded_share, content_size=spec.content_size)
        logits = model(spec.normalise(batch))
        loss = F.cross_entropy(logits, labels[index], label_smoothing=args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        total_loss += loss.item() * len(index)
        correct += (logits.argmax(1) == labels[index]).sum().item()
    return total_loss / len(order), correct / len(order)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    spec = ModelSpec.from_yaml(args.config)

    images, labels = load_split(fetch_mnist(args.data), "train")
    split = torch.randperm(len(images), generator=generator)
    val_index, train_index = split[:args.validation], split[args.validation:]
    if args.limit:
        train_index = train_index[:args.limit]
    train_images, train_labels = images[train_index], labels[train_index]
    val_images, val_labels = images[val_index], labels[val_index]

    model = DigitNet(num_classes=len(spec.labels))
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu", weights_only=True))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(train_index) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.2)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"DigitNet: {parameters} parameters; {len(train_index)} training, {len(val_index)} validation images; "
          f"{torch.get_num_threads()} threads", flush=True)

    started = time.perf_counter()
    history = []
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        loss, train_acc = train_epoch(model, ema, optimizer, scheduler, train_images, train_labels, spec, args, generator)
        val_acc = (predict_all(ema.module, val_images, spec) == val_labels).double().mean().item() if len(val_index) else float("nan")
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "loss": round(loss, 5), "train_accuracy": round(train_acc, 5),
                        "validation_accuracy": round(val_acc, 5), "seconds": round(seconds, 1)})
        print(f"epoch {epoch:2d}/{args.epochs}  loss {loss:.4f}  train acc {train_acc:.4f}  "
              f"val acc (EMA) {val_acc:.4f}  {seconds:.0f}s", flush=True)
    training_seconds = time.perf_counter() - started

    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(ema.module.state_dict(), args.out / "mnist.pt")
    report = {
        "model": "DigitNet", "parameters": parameters, "epochs": args.epochs, "batch_size": args.batch_size,
        "peak_lr": args.lr, "seed": args.seed, "training_images": len(train_index),
        "validation_images": len(val_index), "validation_accuracy": history[-1]["validation_accuracy"],
        "training_seconds": round(training_seconds, 1), "history": history,
        "torch_version": torch.__version__, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "data_sha256": MNIST_SHA256,
        **evaluate_on_test_set(ema.module, spec, args.data),
    }
    (args.out / "mnist-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"test accuracy {report['test_accuracy']:.4f} ({report['test_errors']} errors) "
          f"after {training_seconds / 60:.1f} min; wrote {args.out}/mnist.pt", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
