"""The two PyTorch modules tinycnn layers need that ``torch.nn`` does not name directly.

Imported only by :func:`tinycnn.interop.to_torch` / ``from_torch`` (it imports torch).
"""
import torch
from torch import nn

__all__ = ["GlobalAvgPool2d", "Residual", "SOURCE"]


class GlobalAvgPool2d(nn.Module):
    """``(N, C, H, W) -> (N, C)``: the mean of each map (tinycnn's ``GlobalAvgPool2D``)."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


class Residual(nn.Module):
    """``y = f(x) + shortcut(x)``; an empty ``shortcut`` is the identity (tinycnn's ``Residual``)."""

    def __init__(self, f, shortcut=None):
        super().__init__()
        self.f = f
        self.shortcut = shortcut if shortcut is not None else nn.Sequential()

    def forward(self, x):
        return self.f(x) + self.shortcut(x)


#: The same two classes as source code, for the code :func:`tinycnn.interop.torch_code` prints.
SOURCE = {
    "GlobalAvgPool2d": '''class GlobalAvgPool2d(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))''',
    "Residual": '''class Residual(nn.Module):
    def __init__(self, f, shortcut=None):
        super().__init__()
        self.f = f
        self.shortcut = shortcut if shortcut is not None else nn.Sequential()

    def forward(self, x):
        return self.f(x) + self.shortcut(x)''',
}
del torch
