"""Reading a run of touching digits whole: a small network reads the run's ink left to right,
a column at a time, and says where each digit lies (a CTC reader: a digit or "none" for every
STRIP_STEP columns of the strip). The number reader (``prepare.number``, ``service``) uses it to split a
run into its digits; each digit is then read by the digit network as any digit is.

Pure functions and the network: no decoding, no server.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitlens.config import ModelSpec
from digitlens.prepare import MAX_DIGITS, NumberDigit, NumberPart, split_run
from digitlens.prepare.normalise import STRIP_HEIGHT, STRIP_STEP

SPLIT_ODDS = 4.0            # a run is several digits where the reading is e^4 (55) times likelier than any one digit
BLANK = 0                   # the reader's "no digit here"; class k + 1 is digit k


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class StringNet(nn.Module):
    """(N, 1, STRIP_HEIGHT, W) strips (normalise.strip_input) -> (N, 11, W / STRIP_STEP) logits:
    blank, then the digits."""

    def __init__(self, classes: int = 11, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            conv_block(1, width), nn.MaxPool2d(2),                          # 16 x W/2
            conv_block(width, 2 * width), nn.MaxPool2d((2, 1)),             # 8 x W/2
            conv_block(2 * width, 3 * width), conv_block(3 * width, 3 * width), nn.MaxPool2d((2, 1)),   # 4 x W/2
            conv_block(3 * width, 4 * width), nn.MaxPool2d((4, 1)),         # 1 x W/2
        )
        self.columns = nn.Sequential(
            nn.Conv1d(4 * width, 4 * width, 5, padding=2), nn.ReLU(inplace=True),
            nn.Conv1d(4 * width, 4 * width, 5, padding=2), nn.ReLU(inplace=True),
            nn.Conv1d(4 * width, classes, 1),
        )

    def forward(self, strips: torch.Tensor) -> torch.Tensor:
        return self.columns(self.features(strips).squeeze(2))


@dataclass(frozen=True)
class StringReading:
    """What the reader made of a strip: the digits in order, and the strip columns each spans."""
    digits: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]      # (first column, last column + 1) of each digit on the strip
    probabilities: np.ndarray               # (digits, 10): each digit's probabilities, summed over its columns
    odds: float                             # log of how much likelier the reading is than the likeliest one digit
                                            # (reading_odds; 0.0 for one digit or none: nothing to split)


def read_columns(log_probabilities: np.ndarray) -> StringReading:
    """The best path's digits (CTC's greedy decoding: the likeliest class in each column,
    repeats merged, blanks dropped) from (11, columns) log-probabilities, with each digit's
    columns on the strip, its probabilities over its columns, and, where it is several digits,
    the reading's odds against one digit (reading_odds)."""
    best = log_probabilities.argmax(0)
    digits, spans, probabilities = [], [], []
    start = None
    for column in range(len(best) + 1):
        label = best[column] if column < len(best) else BLANK
        if start is not None and label != best[start]:
            digits.append(int(best[start]) - 1)
            spans.append((start * STRIP_STEP, column * STRIP_STEP))
            share = np.exp(log_probabilities[1:, start:column]).sum(1)
            probabilities.append(share / share.sum())
            start = None
        if start is None and label != BLANK:
            start = column
    return StringReading(tuple(digits), tuple(spans), np.asarray(probabilities, np.float32).reshape(-1, 10),
                         reading_odds(log_probabilities, digits) if len(digits) > 1 else 0.0)


def reading_odds(log_probabilities: np.ndarray, digits: list[int]) -> float:
    """log P(digits) - max over d of log P(d): each the sum over every path of columns that
    reads it (CTC's likelihood), not the best path's alone. A wide single digit that the best
    path reads as two ("00" for a broad 0) is about as likely read as one."""
    readings = [digits, *([digit] for digit in range(10))]
    columns = torch.from_numpy(log_probabilities).T[:, None, :].expand(-1, len(readings), -1)
    losses = F.ctc_loss(columns, torch.tensor([digit + 1 for reading in readings for digit in reading], dtype=torch.long),
                        torch.full((len(readings),), columns.shape[0], dtype=torch.long),
                        torch.tensor([len(reading) for reading in readings], dtype=torch.long),
                        blank=BLANK, reduction="none", zero_infinity=False)
    return float(losses[1:].min() - losses[0])


class StringReader:
    """The string reader's network, loaded once, reading strips in batches."""

    def __init__(self, network: StringNet, device: torch.device):
        self.network = network.eval().to(device)
        self.device = device

    @classmethod
    def load(cls, weights: Path, device: torch.device) -> "StringReader":
        network = StringNet()
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return cls(network, device)

    def read(self, strips: list[np.ndarray]) -> list[StringReading]:
        """Each strip's reading, in one forward pass (the strips padded to the widest with empty columns)."""
        if not strips:
            return []
        batch = np.zeros((len(strips), 1, STRIP_HEIGHT, max(strip.shape[1] for strip in strips)), np.float32)
        for row, strip in enumerate(strips):
            batch[row, 0, :, :strip.shape[1]] = strip
        with torch.inference_mode():
            log_probabilities = self.network(torch.from_numpy(batch).to(self.device)).log_softmax(1).float().cpu().numpy()
        return [read_columns(log_probabilities[row, :, :strip.shape[1] // STRIP_STEP]) for row, strip in enumerate(strips)]


def split_numbers(numbers: list[tuple[NumberPart, ...]], reader: StringReader | None,
                  spec: ModelSpec) -> list[list[tuple[NumberDigit, np.ndarray | None]]]:
    """Each number's digits, left to right, with the string reader's probabilities for those it
    read: a run (prepare.Run) is split where the reader surely reads several digits in it
    (is_several; one pass for every run of the batch), while the number stays within
    MAX_DIGITS. Without a reader every group is one digit."""
    runs = [part for parts in numbers for part in parts if part.run is not None] if reader else []
    strings = dict(zip(map(id, runs), reader.read([part.run.strip for part in runs]) if runs else []))
    to_split = {id(part) for part in runs if is_several(strings[id(part)])}
    split = []
    for parts in numbers:
        digits = []
        for position, part in enumerate(parts):
            string = strings.get(id(part))
            if id(part) in to_split and len(string.digits) <= MAX_DIGITS - len(digits) - (len(parts) - position - 1):
                between = [(before[1], after[0]) for before, after in zip(string.spans, string.spans[1:])]
                pieces = split_run(part.run, between, spec)
                if len(pieces) == len(string.digits):
                    digits.extend(zip(pieces, string.probabilities))
                    continue
            digits.append((part.whole, None))
        split.append(digits)
    return split


def is_several(string: StringReading) -> bool:
    """Whether the reader surely reads several digits: more than one, SPLIT_ODDS likelier than
    any one digit (the width of the ink, or the digit network's certainty, tells less: two
    overlapping digits can be narrower than tall, and the network reads some such runs surely
    as one digit)."""
    return len(string.digits) > 1 and string.odds > SPLIT_ODDS


def several_digits(reader: StringReader | None, strips: list[np.ndarray | None]) -> list[bool]:
    """For each strip (None: ink too narrow to be several digits), whether the reader surely
    reads several digits in it (is_several); one pass for them all."""
    wide = [strip for strip in strips if strip is not None]
    read = iter(reader.read(wide) if reader and wide else [])
    return [strip is not None and reader is not None and is_several(next(read)) for strip in strips]
