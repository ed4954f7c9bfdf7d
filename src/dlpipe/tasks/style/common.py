"""What the style stages share: the photos and paintings by name, square crops of them, loss networks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dlpipe.core.errors import DataError, ParamsError
from dlpipe.tasks.style.params import NetworkParams
from dlpipe.vision.images import IMAGE_EXTS, load_image
from dlpipe.vision.loss_network import LossNetwork, load_loss_network
from dlpipe.vision.sr_data import to_tensor
from dlpipe.vision.style import check_weights


def find_image(folder: Path, stem: str, key: str) -> Path:
    """``folder/<stem>.<image ext>``; a name that is not there fails listing the ones that are."""
    hits = sorted(p for p in Path(folder).glob(f"{stem}.*") if p.suffix.lower() in IMAGE_EXTS)
    if not hits:
        have = sorted(p.stem for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS) \
            if Path(folder).is_dir() else []
        raise ParamsError(f"{key}: {stem!r}: no such image in {folder} (have: {', '.join(have) or 'none'})")
    return hits[0]


def square(path: Path, size: int, key: str) -> np.ndarray:
    """uint8 (size, size, 3): the image shrunk so its short side is ``size``, centre-cropped. An image
    smaller than that fails (upscaling would blur the very texture a style loss measures)."""
    img = load_image(path, "RGB")
    h, w = img.shape[:2]
    if min(h, w) < size:
        raise DataError(f"{path}: {w}x{h} px, smaller than the {size}-px crop of {key} "
                        f"(use a larger image or a smaller {key})")
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    if (nh, nw) != (h, w):
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.LANCZOS))
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[top:top + size, left:left + size]


def square_tensor(path: Path, size: int, key: str) -> torch.Tensor:
    """(1, 3, size, size) 0-1 of :func:`square`."""
    return to_tensor(square(path, size, key))[None]


def network(n: NetworkParams, backbone: Path, key: str, device: torch.device | str = "cpu") -> LossNetwork:
    """The loss network of ``n`` (weights per layer checked), on ``device``."""
    check_weights(n.layers, n.content, n.style, key)
    return load_loss_network(n.source, backbone, n.layers, n.seed, key=key).to(device)
