"""Image preparation: whatever a person uploads, turned into the small square image a network
expects. A stage a module, each importing only the stages beneath it:

    errors      InputError and the names of its reasons
    primitives  shrinking, borders, extremes, openings, running medians, boxes
    decode      request bodies, formats, pixel limits, EXIF, greyscale
    artefacts   blocky enlargements, scanner edges
    light       which side the ink is on, shadows and uneven light, the ink stretched
    segments    straight thin segments of the ink and of faint print
    lines       printed lines, grids, frames and underlines taken out of the ink
    marks       marks on the ink: candidates for a digit, groups into a number's digits
    cuts        a run of touching digits cut apart where the string reader says
    normalise   crop, scale, centre by mass (or trim and pad), the network's input; a run's strip
    locate      the digit's ink on a working copy, and a closer look on the upload's pixels
    number      a number's groups of ink, left to right, with their boxes; runs split into digits

A model's YAML names one of two ways (`preprocess:`), each following how its training set
was made; `prepare` picks it:

- ``digit`` (MNIST): the ink is size-normalised to fit a 20x20 box keeping its aspect
  ratio, then placed in the 28x28 frame so that its centre of mass sits at the centre.
  Before that, real images need work MNIST never needed: EXIF rotation, transparency,
  a low-resolution source blown up into blocks, dark ink on light paper, an uneven or
  grey background.
- ``photo`` (Fashion-MNIST, made from catalogue photos): the product is trimmed from its
  ground, its longer side scaled to the input size, the shorter padded to a square with
  the ground, and the levels set so the ground is black (a light ground is negated). No
  ink, no centre of mass.
"""
from __future__ import annotations

import dataclasses

from digitlens.config import ModelSpec
from digitlens.prepare.decode import body_bytes, open_image, to_greyscale
from digitlens.prepare.errors import REASONS, InputError
from digitlens.prepare.locate import digit_ink
from digitlens.prepare.normalise import (PreparedImage, as_network_input, digit_input, fit_longer_side,
                                         ground_to_black, pad_to_square, strip_input, trim_to_content)
from digitlens.prepare.number import MAX_DIGITS, NumberDigit, NumberPart, Run, number_parts, split_run
from digitlens.prepare.primitives import border_median

WIDE_INK = 1.0              # one mark this many times wider than tall may be touching digits (see prepare_digit)

__all__ = ["MAX_DIGITS", "REASONS", "InputError", "NumberDigit", "NumberPart", "PreparedImage", "Run", "prepare", "prepare_number",
           "split_run"]


def prepare_digit(data: bytes, spec: ModelSpec) -> PreparedImage:
    """A drawn, photographed or scanned digit as MNIST presents one; ink as wide as WIDE_INK times
    its height or more also as a strip, for the string reader to say whether it is touching digits."""
    ink, several = digit_ink(open_image(data, spec.max_pixels), data, spec.max_pixels)
    prepared = digit_input(ink, spec)
    if several:
        return dataclasses.replace(prepared, looks_like_number=True)
    height, width = ink.shape               # digit_ink crops to the ink
    if width >= WIDE_INK * height:
        return dataclasses.replace(prepared, strip=strip_input(ink))
    return prepared


def prepare_photo(data: bytes, spec: ModelSpec) -> PreparedImage:
    """A photo of one object as Fashion-MNIST presents one. A transparent ground (a cut-out)
    is white, as in a catalogue."""
    grey = to_greyscale(open_image(data, spec.max_pixels), ground=255)
    ground = border_median(grey)
    square = pad_to_square(fit_longer_side(trim_to_content(grey, ground), spec.input_size), spec.input_size, ground)
    return as_network_input(ground_to_black(square, ground), spec)


PREPARERS = {"digit": prepare_digit, "photo": prepare_photo}    # the names of config.PREPROCESS_KINDS


def prepare(body: bytes | str, spec: ModelSpec) -> PreparedImage:
    """A request body (image bytes, or a data URL) in, the network's input out, the way the
    model's YAML names (`preprocess:`); raises InputError for anything unusable."""
    return PREPARERS[spec.preprocess](body_bytes(body), spec)


def prepare_number(body: bytes | str, spec: ModelSpec) -> list[NumberPart]:
    """A request body holding a written number in, its groups of ink out, left to right: each a
    digit's network input and box, and where it may be touching digits, a run to split
    (split_run, where the string reader says); raises InputError for anything unusable."""
    return number_parts(body_bytes(body), spec)
