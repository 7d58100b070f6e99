"""He initialisation as the papers state it (He et al., 2015; the authors' fb.resnet.torch-based code):
conv weights ~ N(0, 2 / (k_h · k_w · C_out)) ("fan out"), BN scale 1 and shift 0, linear biases 0."""

from __future__ import annotations

import torch
from torch import nn


def he_init_(model: nn.Module) -> nn.Module:
    """Initialise ``model`` in place (every ``nn.Conv2d``, DGConv2d included, BN and linear layer)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
            elif isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.zero_()
    return model
