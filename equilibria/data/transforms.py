"""Image tensor transforms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHUNK = 4096


def resize_images(data: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 ``(N, C, H, W)`` images to ``(N, C, size, size)`` (antialiased bilinear)."""
    if data.dtype != torch.uint8 or data.dim() != 4:
        raise ValueError(f"resize_images: expected uint8 (N, C, H, W) images, got {data.dtype} "
                         f"{tuple(data.shape)}")
    if size < 1:
        raise ValueError(f"image_size: must be >= 1, got {size}")
    if data.shape[-2:] == (size, size):
        return data
    out = torch.empty(*data.shape[:2], size, size, dtype=torch.uint8, device=data.device)
    for start in range(0, len(data), _CHUNK):  # bounds the float32 working memory
        chunk = data[start:start + _CHUNK].float()
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                antialias=True)
        out[start:start + _CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out
