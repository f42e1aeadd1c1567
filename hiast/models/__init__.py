"""Segmentation network (DeepLab-V2) and the output-space discriminator of the warm-up."""

from hiast.models.deeplab_v2 import (
    DeepLabV2,
    build_deeplab_v2,
    build_deeplab_v2_small,
    build_model,
    load_backbone_state_dict,
    load_pretrained_backbone,
    segment,
)
from hiast.models.discriminator import FCDiscriminator

__all__ = [
    "DeepLabV2",
    "FCDiscriminator",
    "build_deeplab_v2",
    "build_deeplab_v2_small",
    "build_model",
    "load_backbone_state_dict",
    "load_pretrained_backbone",
    "segment",
]
