"""Residual functions shared by the multi-branch families (post-activation, as in ResNet / ResNeXt)."""

from __future__ import annotations

from torch import Tensor, nn


class BottleneckFunction(nn.Module):
    """F(x) = BN(conv1×1(ReLU(BN(conv3×3(ReLU(BN(conv1×1(x)))))))): the residual function of one branch."""

    def __init__(self, in_ch: int, width: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        return self.bn3(self.conv3(h))


class Projection(nn.Module):
    """Shortcut P(x) = BN(conv1×1_stride(x)) where width or resolution changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


def shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when shapes agree, else a :class:`Projection`."""
    if in_ch == out_ch and stride == 1:
        return nn.Identity()
    return Projection(in_ch, out_ch, stride)
