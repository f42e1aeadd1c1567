"""Output-space discriminator of AdaptSegNet (Tsai et al., CVPR 2018, https://arxiv.org/abs/1802.10349).

Used by the adversarial part of the warm-up: it scores softmax segmentation maps as source or target.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FCDiscriminator"]


class FCDiscriminator(nn.Module):
    """Four 4x4 stride-2 convs (``ndf``, ``2ndf``, ``4ndf``, ``8ndf``) with LeakyReLU(0.2), then a
    4x4 stride-2 conv to one channel: a (B, 1, H/32, W/32) map of source/target logits.

    The input is the segmentation network's softmax probabilities (B, num_classes, H, W), not its
    logits; the caller applies the softmax, as in AdaptSegNet. H and W must be at least 32.

    Args:
        num_classes: channels of the input probability map.
        ndf: width of the first conv (64 in the paper; e.g. 16 for CPU runs).
    """

    def __init__(self, num_classes: int, ndf: int = 64) -> None:
        super().__init__()
        assert num_classes >= 1 and ndf >= 1, (num_classes, ndf)
        self.num_classes = num_classes
        # Key names conv1..conv4/classifier as in AdaptSegNet's FCDiscriminator.
        self.conv1 = nn.Conv2d(num_classes, ndf, 4, 2, 1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, 4, 2, 1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1)
        self.classifier = nn.Conv2d(ndf * 8, 1, 4, 2, 1)
        self.leaky_relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.ndim != 4 or probs.shape[1] != self.num_classes or min(probs.shape[-2:]) < 32:
            # Five stride-2 convs shrink a side below 32 px to nothing; fail with the shape instead.
            raise ValueError(
                f"FCDiscriminator expects (B, {self.num_classes}, H>=32, W>=32) probabilities, "
                f"got {tuple(probs.shape)}"
            )
        x = self.leaky_relu(self.conv1(probs))
        x = self.leaky_relu(self.conv2(x))
        x = self.leaky_relu(self.conv3(x))
        x = self.leaky_relu(self.conv4(x))
        return self.classifier(x)
