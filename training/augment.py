"""Batch augmentations that make MNIST look like what other writers and devices produce.

Everything works on a float batch (N, 1, H, W) in [0, 1], light ink on black, in one
pass over the batch: pens from hairline to marker, slanted, rotated and elastically
distorted handwriting, low-resolution round trips, soft photos and faded ink. The last
step normalises every image the way serving does (`digitlens.preprocess`): contrast
stretched, faint levels zeroed, the ink's longer side scaled to the content size and its
centre of mass put at the centre, so the network trains on what the endpoint feeds it.
"""
import math

import torch
import torch.nn.functional as F

from digitlens.preprocess import BLANK_CONTRAST, INK_PERCENTILE, NOISE_FLOOR

ELASTIC_SIGMA_PX = 4.0      # smoothness of the displacement field (Simard et al., 2003)
ELASTIC_ALPHA_PX = 34.0     # strength of the field before smoothing


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


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


def vary_stroke_width(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pens from hairline to marker: each image moves continuously along
    eroded - original - dilated 3x3 - dilated 5x5."""
    n = images.shape[0]
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    levels = torch.stack([-F.max_pool2d(-images, 3, stride=1, padding=1), images, dilated,
                          F.max_pool2d(dilated, 3, stride=1, padding=1)])
    width = _uniform(n, -0.6, 1.7, generator) + 1            # position along the 4 levels
    lower = width.floor().long().clamp(0, 2)
    fraction = (width - lower).view(n, 1, 1, 1)
    index = torch.arange(n)
    return levels[lower, index] * (1 - fraction) + levels[lower + 1, index] * fraction


def distort(images: torch.Tensor, generator: torch.Generator, max_rotation_deg: float = 15.0,
            scale: tuple[float, float] = (0.75, 0.95), max_shear_deg: float = 15.0,
            elastic_share: float = 0.5) -> torch.Tensor:
    """Rotation, slant (shear) and an elastic field on a share of the batch, resampled once.
    The digit is shrunk rather than shifted or enlarged, so no stroke leaves the frame: the
    final normalisation decides its size and place."""
    n, _, h, w = images.shape
    angle = torch.deg2rad(_uniform(n, -max_rotation_deg, max_rotation_deg, generator))
    shear = math.tan(math.radians(max_shear_deg)) * _uniform(n, -1, 1, generator)
    zoom = _uniform(n, *scale, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, so this is the inverse transform.
    theta = torch.stack([
        torch.stack([cos, -sin + shear * cos, torch.zeros(n)], dim=1),
        torch.stack([sin, cos + shear * sin, torch.zeros(n)], dim=1),
    ], dim=1) / zoom.view(n, 1, 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    field = torch.rand(n, 2, h, w, generator=generator) * 2 - 1
    field = blur_each(field, torch.full((n,), ELASTIC_SIGMA_PX)) * ELASTIC_ALPHA_PX
    field *= (torch.rand(n, generator=generator) < elastic_share).view(n, 1, 1, 1)
    grid = grid + field.permute(0, 2, 3, 1) * 2 / torch.tensor([w, h])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def low_resolution(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A round trip through an 8x8 to 16x16 image, enlarged again smoothly or blockily."""
    _, _, h, w = images.shape
    side = int(torch.randint(8, 17, (1,), generator=generator))
    small = F.interpolate(images, size=(side, side), mode="area")
    mode = "nearest" if torch.rand(1, generator=generator) < 0.3 else "bilinear"
    return F.interpolate(small, size=(h, w), mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


def vary_contrast(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gamma and a little sensor noise, then back to [0, 1]."""
    n = images.shape[0]
    gamma = torch.exp(_uniform(n, -0.4, 0.4, generator)).view(n, 1, 1, 1)
    noise_level = _uniform(n, 0.0, 0.04, generator).view(n, 1, 1, 1)
    noise = torch.randn(images.shape, generator=generator) * noise_level
    return (images.clamp(0, 1) ** gamma + noise).clamp(0, 1)


def _first_and_last(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first and last True along the last axis of (N, L)."""
    length = mask.shape[1]
    first = mask.float().argmax(1)
    last = length - 1 - mask.flip(1).float().argmax(1)
    return first, last


def normalise_like_serving(images: torch.Tensor, content_size: int) -> torch.Tensor:
    """What `digitlens.preprocess.prepare` does to an image with a black ground, for a batch."""
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


def augment_batch(images: torch.Tensor, generator: torch.Generator, content_size: int = 20,
                  photometric_share: float = 0.4, low_resolution_share: float = 0.15) -> torch.Tensor:
    """Every image gets another pen and is moved, turned, slanted and maybe warped; a share is
    also seen at low resolution, another share blurred or faded (never both: together they
    leave too little of a digit to learn from); all are then normalised as serving does."""
    n = images.shape[0]
    images = distort(vary_stroke_width(images, generator), generator)
    degradation = torch.rand(n, generator=generator)
    coarse = degradation < low_resolution_share
    if coarse.any():
        images[coarse] = low_resolution(images[coarse], generator)
    chosen = (degradation >= low_resolution_share) & (degradation < low_resolution_share + photometric_share)
    if chosen.any():
        sigma = _uniform(int(chosen.sum()), 0.3, 1.3, generator)
        images[chosen] = vary_contrast(blur_each(images[chosen], sigma), generator)
    return normalise_like_serving(images, content_size)
