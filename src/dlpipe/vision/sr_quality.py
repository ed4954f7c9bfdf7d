"""Super-resolution image quality by the convention of the papers' tables (SRCNN, VDSR, EDSR, BasicSR).

* Images are mod-cropped to a multiple of the scale, the low-resolution input is the **bicubic**
  downscale (PIL's, which antialiases with a = -0.5 like MATLAB's ``imresize``: Set5 x2 bicubic
  measures 33.67 dB here against the published 33.66).
* Scores are on the **Y channel** (ITU-R BT.601, 16-235, as MATLAB's ``rgb2ycbcr``) of the uint8 output,
  with a **border of ``scale`` pixels** removed on every side.
* PSNR is torchmetrics'; SSIM is scikit-image's with Wang et al.'s settings (Gaussian window sigma 1.5,
  population covariances, data range 255, the window kept inside the image as in MATLAB's ``ssim`` and
  BasicSR). torchmetrics' SSIM pads the borders by reflection instead and reads ~2e-4 higher. Scores
  are per image, then averaged over the set.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from torchmetrics.functional.image import peak_signal_noise_ratio

Y_WEIGHTS = (65.481, 128.553, 24.966)     # BT.601 on 0-1 RGB, plus 16: MATLAB rgb2ycbcr


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) cropped to H, W multiples of ``scale`` (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3) with PIL's bicubic (antialiased when shrinking); size = (h, w)."""
    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The low-resolution input of a mod-cropped uint8 (H, W, 3) image: bicubic to (H/scale, W/scale)."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"downscale: {h}x{w} is not a multiple of scale {scale} (mod_crop first)")
    return bicubic_resize(hr, (h // scale, w // scale))


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) 0-255 RGB -> (..., 1, H, W) Y in 16-235 (float64 for exact comparison)."""
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float64, device=img.device).view(3, 1, 1)
    return 16.0 + (img.double() / 255.0 * w).sum(-3, keepdim=True)


def _y_cropped(img: np.ndarray | torch.Tensor, border: int) -> torch.Tensor:
    """uint8 (H, W, 3) or 0-255 (3, H, W) tensor -> (1, 1, H - 2b, W - 2b) Y."""
    t = torch.from_numpy(np.array(img)).permute(2, 0, 1) if isinstance(img, np.ndarray) else img   # a writable copy
    y = rgb_to_y(t.double())[None]
    return y[..., border: y.shape[-2] - border, border: y.shape[-1] - border] if border else y


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR (dB) on Y of two uint8 (H, W, 3) images, ``border`` pixels shaved off each side."""
    a, b = _y_cropped(sr, border), _y_cropped(hr, border)
    return float(peak_signal_noise_ratio(a, b, data_range=255.0))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """SSIM on Y (Gaussian window, sigma 1.5, data range 255), ``border`` shaved, as the papers'."""
    a, b = _y_cropped(sr, border)[0, 0].numpy(), _y_cropped(hr, border)[0, 0].numpy()
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def edge_energy(img: np.ndarray) -> float:
    """Mean gradient magnitude of the Y channel (finite differences): how much fine detail an image
    carries. Ratios to the ground truth's show blur (< 1) and over-sharpening (> 1)."""
    y = _y_cropped(img, 0)[0, 0]
    gx, gy = y[:, 1:] - y[:, :-1], y[1:, :] - y[:-1, :]
    return float(torch.sqrt(gx[:-1, :] ** 2 + gy[:, :-1] ** 2).mean())


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A model's (3, H, W) 0-1 output -> uint8 (H, W, 3), clamped and rounded as a saved PNG would be."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def batch_psnr_y(border: int):
    """A Learner metric: mean Y-PSNR of a batch of 0-1 predictions (bs, 3, H, W) against targets."""
    def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
        p, t = pred.detach().clamp(0, 1).mul(255).round(), target.detach().mul(255).round()
        vals = [peak_signal_noise_ratio(_y_cropped(a, border), _y_cropped(b, border), data_range=255.0)
                for a, b in zip(p, t)]
        return float(torch.stack(vals).mean())
    psnr.__name__ = "psnr"
    return psnr
