"""Peer: PyTorch's tutorial "Neural Transfer Using PyTorch" (Gatys style transfer), at dlpipe's sizes.

Usage: python bench/peers/torch_tutorial_style.py SIZE EVALS WARMUP SEED
Plain PyTorch (runs in the project venv). Follows the tutorial: VGG19's ``features`` walked layer by layer
into a new ``nn.Sequential`` (after a Normalization module), a ContentLoss module after conv_4 and a
StyleLoss module after conv_1 ... conv_5 (each stores its MSE in ``self.loss`` and returns its input),
everything after the last loss layer trimmed; ``optim.LBFGS([input_img])`` with a closure that clamps the
image to [0, 1], sums ``style_weight * style + content_weight * content`` and backpropagates. Rewritten,
not copied; one change: VGG19's weights are random (seeded) instead of ImageNet's, which cannot be
fetched here — the work per evaluation is the same. The content and style images are seeded noise of
SIZE x SIZE. Prints one JSON line: evaluations per second after WARMUP evaluations.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg19


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, x):
        self.loss = F.mse_loss(x, self.target)
        return x


def gram_matrix(x):
    a, b, c, d = x.size()
    f = x.view(a * b, c * d)
    return torch.mm(f, f.t()).div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, x):
        self.loss = F.mse_loss(gram_matrix(x), self.target)
        return x


class Normalization(nn.Module):
    def __init__(self):
        super().__init__()
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)

    def forward(self, img):
        return (img - self.mean) / self.std


def model_and_losses(cnn, style_img, content_img, content_layers=("conv_4",),
                     style_layers=("conv_1", "conv_2", "conv_3", "conv_4", "conv_5")):
    model, content_losses, style_losses, i = nn.Sequential(Normalization()), [], [], 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name, layer = f"relu_{i}", nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool_{i}"
        else:
            name = f"other_{i}"
        model.add_module(name, layer)
        if name in content_layers:
            loss = ContentLoss(model(content_img).detach())
            model.add_module(f"content_loss_{i}", loss)
            content_losses.append(loss)
        if name in style_layers:
            loss = StyleLoss(model(style_img).detach())
            model.add_module(f"style_loss_{i}", loss)
            style_losses.append(loss)
    for j in range(len(model) - 1, -1, -1):
        if isinstance(model[j], (ContentLoss, StyleLoss)):
            break
    return model[: j + 1], style_losses, content_losses


def main(size: int, evals: int, warmup: int, seed: int) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    cnn = vgg19(weights=None).features.eval()
    g = torch.Generator().manual_seed(seed)
    content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g)
    model, style_losses, content_losses = model_and_losses(cnn, style, content)
    model.eval().requires_grad_(False)
    img = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([img], max_iter=warmup + evals, max_eval=warmup + evals, tolerance_grad=0.0,
                            tolerance_change=0.0)
    stamps = []

    def closure():
        with torch.no_grad():
            img.clamp_(0, 1)
        opt.zero_grad()
        model(img)
        loss = 1e6 * sum(s.loss for s in style_losses) + sum(c.loss for c in content_losses)
        loss.backward()
        stamps.append(time.perf_counter())
        return loss

    opt.step(closure)
    t = stamps[warmup - 1:]
    print(json.dumps({"evals_per_s": (len(t) - 1) / (t[-1] - t[0]), "evals": len(stamps)}), flush=True)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:5]))
