"""Batch augmentations, chosen by name in a model's YAML (`training: augment:`).

Everything works on a float batch (N, 1, H, W) in [0, 1], light on black, in one pass
over the batch. ``handwriting`` makes MNIST look like what people upload: pens of other
widths, slanted and rotated handwriting, digits that are not quite centred or sized,
soft photos and faded ink. ``garments`` is the standard recipe for product photos:
mirror images, small shifts and zooms, and a patch hidden here and there.
"""
import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.morphology import skeletonize

from digitlens.prepare.light import BLANK_CONTRAST, INK_PERCENTILE, NOISE_FLOOR

LOW_RESOLUTION_SHARE = 0.25     # of the degraded images, by default: one kind of four


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def vary_stroke_width(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Blend each image towards its dilation (bolder pen) or erosion (thinner pen)."""
    n = images.shape[0]
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    amount = _uniform(n, -0.6, 0.8, generator).view(n, 1, 1, 1)
    target = torch.where(amount > 0, dilated, eroded)
    return images + amount.abs() * (target - images)


def random_affine(images: torch.Tensor, generator: torch.Generator, max_rotation_deg: float = 12.0,
                  scale: tuple[float, float] = (0.85, 1.1), max_shear_deg: float = 10.0,
                  max_shift_px: float = 2.5) -> torch.Tensor:
    n, _, h, w = images.shape
    angle = torch.deg2rad(_uniform(n, -max_rotation_deg, max_rotation_deg, generator))
    shear = math.tan(math.radians(max_shear_deg)) * _uniform(n, -1, 1, generator)
    zoom = _uniform(n, *scale, generator)
    shift = _uniform(2 * n, -max_shift_px, max_shift_px, generator).view(n, 2) * 2 / torch.tensor([w, h])
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, so this is the inverse transform.
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, shift[:, 0]], dim=1),
        torch.stack([sin, cos + shear * sin, shift[:, 1]], dim=1),
    ], dim=1) / zoom.view(n, 1, 1)
    theta[:, :, 2] *= zoom.view(n, 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def soften(images: torch.Tensor, generator: torch.Generator, probability: float = 0.25) -> torch.Tensor:
    """Blur a random part of the batch with a small Gaussian, as a photo or scan would."""
    chosen = torch.rand(images.shape[0], generator=generator) < probability
    if not chosen.any():
        return images
    sigma = float(_uniform(1, 0.5, 1.0, generator))
    coords = torch.arange(3, dtype=images.dtype) - 1
    kernel_1d = torch.exp(-coords**2 / (2 * sigma**2))
    kernel = torch.outer(kernel_1d, kernel_1d)
    kernel = (kernel / kernel.sum()).view(1, 1, 3, 3)
    out = images.clone()
    out[chosen] = F.conv2d(images[chosen], kernel, padding=1)
    return out


def vary_contrast(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gamma and a little sensor noise, then back to [0, 1]."""
    n = images.shape[0]
    gamma = torch.exp(_uniform(n, -0.4, 0.4, generator)).view(n, 1, 1, 1)
    noise_level = _uniform(n, 0.0, 0.04, generator).view(n, 1, 1, 1)
    noise = torch.randn(images.shape, generator=generator) * noise_level
    return (images.clamp(0, 1) ** gamma + noise).clamp(0, 1)


def _gaussian_kernel(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """One normalised 1-D Gaussian per sigma: (len(sigma), 2 * radius + 1)."""
    coords = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-coords**2 / (2 * sigma.view(-1, 1) ** 2))
    return kernel / kernel.sum(1, keepdim=True)


def blur_each(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with its own sigma for each image (a grouped convolution)."""
    n, c, h, w = images.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    kernel = _gaussian_kernel(sigma.repeat_interleave(c), radius)
    flat = images.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)


def low_resolution(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A round trip through an 8x8 to 16x16 image, enlarged again smoothly or blockily."""
    _, _, h, w = images.shape
    side = int(torch.randint(8, 17, (1,), generator=generator))
    small = F.interpolate(images, size=(side, side), mode="area")
    mode = "nearest" if torch.rand(1, generator=generator) < 0.3 else "bilinear"
    return F.interpolate(small, size=(h, w), mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


def _first_and_last(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first and last True along the last axis of (N, L)."""
    length = mask.shape[1]
    first = mask.float().argmax(1)
    last = length - 1 - mask.flip(1).float().argmax(1)
    return first, last


def normalise_like_serving(images: torch.Tensor, content_size: int) -> torch.Tensor:
    """What `digitlens.prepare.prepare` does to an image with a black ground, for a batch."""
    n, _, h, w = images.shape
    flat = images.reshape(n, -1)
    candidates = torch.where(flat > BLANK_CONTRAST, flat, torch.full_like(flat, float("nan")))
    ink = torch.nanquantile(candidates, INK_PERCENTILE / 100, dim=1).nan_to_num(1.0).clamp(min=BLANK_CONTRAST)
    stretched = (images / ink.view(n, 1, 1, 1)).clamp(0, 1)
    stretched = torch.where(stretched < NOISE_FLOOR, torch.zeros_like(stretched), stretched)
    has_ink = stretched.flatten(1).amax(1) > 0
    top, bottom = _first_and_last(stretched.amax(3).view(n, h) > 0)
    left, right = _first_and_last(stretched.amax(2).view(n, w) > 0)
    scale = content_size / torch.maximum(bottom - top + 1, right - left + 1).float()
    total = stretched.sum((1, 2, 3)).clamp(min=1e-6)
    rows = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    com_row = (stretched.view(n, h, w) * rows).sum((1, 2)) / total + 0.5     # in edge coordinates
    com_col = (stretched.view(n, h, w) * cols).sum((1, 2)) / total + 0.5
    # Where the scaled box's top-left edge goes in the output, kept inside the frame as prepare does.
    out_top = (h / 2 - (com_row - top) * scale).clamp(min=0).minimum(h - (bottom - top + 1) * scale)
    out_left = (w / 2 - (com_col - left) * scale).clamp(min=0).minimum(w - (right - left + 1) * scale)
    # Output edge coordinate y maps to input top + (y - out_top) / scale; in affine_grid's [-1, 1] units:
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, 0, 2] = 1 / scale + 2 * (left - out_left / scale) / w - 1
    theta[:, 1, 2] = 1 / scale + 2 * (top - out_top / scale) / h - 1
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    placed = F.grid_sample(stretched, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(has_ink.view(n, 1, 1, 1), placed, images)


def degrade(images: torch.Tensor, generator: torch.Generator, content_size: int,
            low_resolution_share: float = LOW_RESOLUTION_SHARE) -> torch.Tensor:
    """What other writers and devices do to a digit, one thing per image: a low-resolution source
    (for ``low_resolution_share`` of the images), else, equally often, a felt marker (a 5x5
    dilation), an out-of-focus photo (blur of 1 to 1.8 px) or a fine pen (a 3x3 erosion); then
    normalised as serving normalises every upload."""
    n = images.shape[0]
    other = (1 - low_resolution_share) / 3
    kind = torch.multinomial(torch.tensor([other, other, low_resolution_share, other]), n, replacement=True,
                             generator=generator)
    makers = (lambda chosen: F.max_pool2d(chosen, 5, stride=1, padding=2),
              lambda chosen: blur_each(chosen, _uniform(chosen.shape[0], 1.0, 1.8, generator)),
              lambda chosen: low_resolution(chosen, generator),
              lambda chosen: -F.max_pool2d(-chosen, 3, stride=1, padding=1))
    out = images.clone()
    for index, make in enumerate(makers):
        chosen = kind == index
        if chosen.any():            # a small batch may have none of a kind
            out[chosen] = make(images[chosen])
    return normalise_like_serving(out, content_size)


def widen_to_box(images: torch.Tensor, generator: torch.Generator, share: float,
                 aspect: tuple[float, float] = (0.55, 0.85), threshold: float = 0.2) -> torch.Tensor:
    """Stretch narrow digits across, about their middle, until their ink is ``aspect`` times as wide
    as it is tall (never narrower than before): what scanners that normalise each digit to fill a
    box do (NIST's forms behind optdigits, USPS), where a one comes out nearly as wide as a zero."""
    n, _, h, w = images.shape
    chosen = torch.rand(n, generator=generator) < share
    target = _uniform(n, *aspect, generator)
    if not chosen.any():
        return images
    ink = images[:, 0] > threshold
    columns, rows = ink.any(1), ink.any(2)
    left, right = _first_and_last(columns)
    top, bottom = _first_and_last(rows)
    width, height = (right - left + 1).float(), (bottom - top + 1).float()
    stretch = (target * height / width).clamp(max=4.0)
    narrow = chosen & columns.any(1) & (stretch > 1)
    if not narrow.any():
        return images
    stretch = stretch[narrow]
    middle = (left + right + 1)[narrow].float() / w - 1      # the ink's middle in affine_grid's [-1, 1] units
    theta = torch.zeros(len(stretch), 2, 3)
    theta[:, 0, 0] = 1 / stretch
    theta[:, 0, 2] = middle * (1 - 1 / stretch)
    theta[:, 1, 1] = 1
    grid = F.affine_grid(theta, [len(stretch), 1, h, w], align_corners=False)
    out = images.clone()
    out[narrow] = F.grid_sample(images[narrow], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


def brush_along(centre_lines: np.ndarray, radius: float) -> np.ndarray:
    """What a round brush of ``radius`` pixels leaves drawn along the True pixels of ``centre_lines``:
    coverage in [0, 1], its edge anti-aliased over a pixel."""
    return np.clip(radius + 0.5 - ndimage.distance_transform_edt(~centre_lines), 0, 1)


def restroke(images: torch.Tensor, generator: torch.Generator, share: float,
             width: tuple[float, float] = (0.6, 3.4), threshold: float = 0.5) -> torch.Tensor:
    """Draw ``share`` of the digits again with a round brush of one width (``width`` pixels, hairline
    to marker), along their strokes' centre lines: a brush tool's even line, where MNIST's pen swells
    and thins. Worked at twice the size, so the centre lines and the brush's edge fall between pixels."""
    chosen = torch.nonzero(torch.rand(images.shape[0], generator=generator) < share).flatten()
    if not len(chosen):
        return images
    radii = _uniform(len(chosen), *width, generator)     # half the width, in pixels of the doubled image
    doubled = F.interpolate(images[chosen], scale_factor=2, mode="bilinear", align_corners=False)[:, 0].numpy()
    drawn = []
    for digit, radius in zip(doubled, radii.tolist()):
        centre_lines = skeletonize(digit > threshold)
        drawn.append(brush_along(centre_lines, radius) if centre_lines.any() else digit)
    out = images.clone()
    out[chosen] = F.avg_pool2d(torch.from_numpy(np.stack(drawn)).float().unsqueeze(1), 2)
    return out


def augment_batch(images: torch.Tensor, generator: torch.Generator, photometric_share: float = 0.5,
                  degraded_share: float = 0.0, content_size: int = 20,
                  low_resolution_share: float = LOW_RESOLUTION_SHARE, as_served: bool = False,
                  widened_share: float = 0.0, restroked_share: float = 0.0) -> torch.Tensor:
    """Every image is moved, turned and resized; ``widened_share`` of them are widened to a box
    (`widen_to_box`) and ``restroked_share`` drawn again with a brush (`restroke`); a share of them
    also gets another pen, blur and contrast, and another share
    (for fine-tuning on other hands) is degraded as `degrade` says.
    With ``as_served`` the others too are normalised as serving normalises uploads, so the
    network trains on exactly what the endpoint gives it."""
    images = random_affine(images, generator)
    if widened_share:
        images = widen_to_box(images, generator, widened_share)
    if restroked_share:
        images = restroke(images, generator, restroked_share)
    chosen = torch.rand(images.shape[0], generator=generator) < photometric_share
    if chosen.any():
        images = images.clone()
        images[chosen] = vary_contrast(soften(vary_stroke_width(images[chosen], generator), generator), generator)
    degraded = torch.rand(images.shape[0], generator=generator) < degraded_share
    if degraded.any():
        images = images.clone()
        images[degraded] = degrade(images[degraded], generator, content_size, low_resolution_share)
    if as_served and not degraded.all():
        images = images.clone()
        images[~degraded] = normalise_like_serving(images[~degraded], content_size)
    return images


def flip_horizontally(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half of the batch: a left shoe is still a shoe."""
    chosen = torch.rand(images.shape[0], generator=generator) < 0.5
    return torch.where(chosen.view(-1, 1, 1, 1), images.flip(3), images)


def erase_patches(images: torch.Tensor, generator: torch.Generator, probability: float = 0.5,
                  area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """Random erasing: blank a rectangle of 2-20 % of the image in some of the batch, so
    the network cannot lean on one detail (a collar, a heel) alone."""
    n, _, h, w = images.shape
    chosen = torch.rand(n, generator=generator) < probability
    share = _uniform(n, *area, generator)
    aspect = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), generator))
    height = (share * h * w * aspect).sqrt().clamp(1, h)
    width = (share * h * w / aspect).sqrt().clamp(1, w)
    top = torch.rand(n, generator=generator) * (h - height)
    left = torch.rand(n, generator=generator) * (w - width)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + height).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + width).view(n, 1, 1)))
    return images.masked_fill((inside & chosen.view(n, 1, 1)).unsqueeze(1), 0.0)


def augment_garments(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    images = random_affine(images, generator, max_rotation_deg=4.0, scale=(0.92, 1.08), max_shear_deg=0.0,
                           max_shift_px=2.0)
    return erase_patches(flip_horizontally(images, generator), generator)


def augmenter(name: str, degraded_share: float = 0.0, content_size: int = 20,
              low_resolution_share: float = LOW_RESOLUTION_SHARE, as_served: bool = False,
              widened_share: float = 0.0, restroked_share: float = 0.0):
    """The augmentation a model's YAML names, as a function of (images, generator)."""
    if name == "handwriting":
        return partial(augment_batch, degraded_share=degraded_share, content_size=content_size,
                       low_resolution_share=low_resolution_share, as_served=as_served, widened_share=widened_share,
                       restroked_share=restroked_share)
    if name == "garments":
        if degraded_share or as_served or widened_share or restroked_share:
            raise ValueError("--degraded-share, --widened-share, --restroked-share and --as-served "
                             "apply to handwriting only")
        return augment_garments
    raise ValueError(f"unknown augmentation {name!r}; known: handwriting, garments")
