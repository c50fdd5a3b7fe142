"""Batch augmentations that make MNIST look like what people upload.

Everything works on a float batch (N, 1, H, W) in [0, 1], light ink on black, in one
pass over the batch: pens of other widths, slanted and rotated handwriting, digits
that are not quite centred or sized, soft photos and faded ink.
"""
import math

import torch
import torch.nn.functional as F


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


def augment_batch(images: torch.Tensor, generator: torch.Generator, photometric_share: float = 0.5) -> torch.Tensor:
    """Every image is moved, turned and resized; a share of them also gets another pen, blur and contrast."""
    images = random_affine(images, generator)
    chosen = torch.rand(images.shape[0], generator=generator) < photometric_share
    if chosen.any():
        images = images.clone()
        images[chosen] = vary_contrast(soften(vary_stroke_width(images[chosen], generator), generator), generator)
    return images
