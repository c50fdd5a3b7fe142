"""The `photo` preprocessing (Fashion-MNIST) on real product images, and the choice by YAML."""
import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from digitlens.config import PREPROCESS_KINDS, ModelSpec
from digitlens.prepare import PREPARERS, InputError, prepare, prepare_digit, prepare_photo
from digitlens.prepare.normalise import ground_to_black, pad_to_square, trim_to_content
from training.presentations import encode, load_test_set, product_cutout, product_photo


@pytest.fixture(scope="module")
def garments():
    images, labels = load_test_set("fashion-mnist")
    return images[:200], labels[:200]


def test_every_kind_a_yaml_can_name_has_a_preparer_and_unknown_kinds_are_refused(fashion_spec):
    assert set(PREPARERS) == set(PREPROCESS_KINDS)
    assert PREPARERS[fashion_spec.preprocess] is prepare_photo
    with pytest.raises(ValueError, match="preprocess must be one of"):
        dataclasses.replace(fashion_spec, preprocess="audio")


def test_a_fashion_mnist_image_is_taken_exactly_as_it_is(garments, fashion_spec):
    images, _ = garments
    for image in images:
        prepared = prepare(encode(Image.fromarray(image), "PNG"), fashion_spec)
        assert np.array_equal(prepared.pixels, image)
        assert np.allclose(prepared.tensor[0], fashion_spec.normalise(image / 255.0), atol=1e-6)


def test_a_product_on_white_is_trimmed_fitted_padded_and_negated(garments, fashion_spec):
    image = garments[0][1]                                     # a pullover: wide, fills the frame
    on_white = np.full((300, 500), 255, np.uint8)
    big = np.asarray(Image.fromarray(255 - image).resize((140, 140), Image.Resampling.BICUBIC))
    on_white[100:240, 250:390] = big                           # off-centre, lots of white around it
    pixels = prepare(encode(Image.fromarray(on_white).convert("RGB"), "JPEG", quality=92), fashion_spec).pixels
    assert pixels.shape == (28, 28)
    assert max(pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]) <= 12   # the white ground became black
    assert np.corrcoef(pixels.ravel(), image.ravel())[0, 1] > 0.85   # the product as Fashion-MNIST has it


def test_a_transparent_cutout_is_put_on_white_like_a_catalogue_photo(garments, fashion_spec):
    rng = np.random.default_rng(0)
    cutout = product_cutout(garments[0][2], rng)
    assert Image.open(io.BytesIO(cutout)).mode == "RGBA"
    pixels = prepare(cutout, fashion_spec).pixels
    assert np.corrcoef(pixels.ravel(), garments[0][2].ravel())[0, 1] > 0.85


def test_steps_do_one_thing_each():
    grey = np.zeros((10, 40), np.float32)
    grey[3:6, 10:14] = 0.8
    assert trim_to_content(grey, 0.0).shape == (3, 4)
    full = np.ones((28, 28), np.float32) * 0.5
    full[1:27, 0] = 0                                        # spans the frame: nothing trimmed
    assert trim_to_content(full, 0.5).shape == (28, 28)
    square = pad_to_square(np.ones((2, 4), np.float32), 4, 0.25)
    assert square.shape == (4, 4) and square[0, 0] == 0.25 and square[1:3].min() == 1
    assert np.allclose(ground_to_black(np.array([0.9, 0.45, 0.0]), 0.9), [0, 0.5, 1])
    assert np.allclose(ground_to_black(np.array([0.1, 0.55, 1.0]), 0.1), [0, 0.5, 1])


def test_a_flat_image_is_refused_as_blank(fashion_spec):
    with pytest.raises(InputError) as error:
        prepare(encode(Image.new("RGB", (300, 200), (245, 245, 240)), "JPEG"), fashion_spec)
    assert error.value.reason == "blank"


def test_photo_and_digit_preparation_differ_where_they_should(garments, spec, fashion_spec):
    """A photo keeps the object's shading and fills the frame; a digit is binarised-ish and 20 px."""
    body = product_photo(garments[0][0], np.random.default_rng(1))
    assert longer_extent(prepare(body, fashion_spec).pixels > 30) >= 26
    assert longer_extent(prepare_digit(body, spec).pixels > 0) <= 21


def longer_extent(mask: np.ndarray) -> int:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
