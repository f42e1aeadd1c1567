"""DeepLab-V2: a dilated ResNet with an ASPP classifier (single scale, no CRF).

Paper: Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
Convolution, and Fully Connected CRFs", TPAMI 2018 (https://arxiv.org/abs/1606.00915); the form
used by AdaptSegNet and HIAST: ResNet-101 at output stride 8 and four summed 3x3 atrous convs.

The backbone follows torchvision's ResNet (BSD-3-Clause) in layout and key names
(``conv1``, ``bn1``, ``layer1.0.downsample.0`` ...; stride on the 3x3 conv; dilation as in
``replace_stride_with_dilation=[False, True, True]``) so that torchvision ImageNet weights stored on
disk load without renaming. torchvision itself is not imported: nothing is ever downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hiast.checkpoint import load_model_state, strip_prefix
from hiast.config import ModelConfig

__all__ = [
    "Bottleneck",
    "ResNetBackbone",
    "ASPPClassifier",
    "DeepLabV2",
    "segment",
    "build_deeplab_v2",
    "build_deeplab_v2_small",
    "build_model",
    "load_backbone_state_dict",
    "load_pretrained_backbone",
]

_log = logging.getLogger(__name__)

DEEPLAB_V2_RATES = (6, 12, 18, 24)
# At 64x128 inputs the stride-8 feature map is 8x16: the full rates would sample mostly padding.
SMALL_RATES = (1, 2, 3, 4)


def _is_bn(m: nn.Module) -> bool:
    # _BatchNorm also covers SyncBatchNorm, which DDP setups may convert the model to.
    return isinstance(m, nn.modules.batchnorm._BatchNorm)


class Bottleneck(nn.Module):
    """ResNet-v1.5 bottleneck (stride on the 3x3 conv), torchvision's layout and key names.

    Args:
        inplanes: input channels.
        planes: inner channels; the block outputs ``planes * 4``.
        stride: stride of the 3x3 conv (and of the shortcut projection).
        dilation: dilation (and padding) of the 3x3 conv.
        downsample: shortcut projection, or None for the identity.
        norm_layer: normalisation class, called with a channel count.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return self.relu(x + shortcut)


def make_stage(
    inplanes: int,
    planes: int,
    blocks: int,
    stride: int,
    dilation: int,
    first_dilation: int,
    norm_layer: type[nn.Module],
) -> nn.Sequential:
    """One ResNet stage; the first block changes resolution/width, the rest keep them.

    ``first_dilation`` is the dilation of the stage before: torchvision gives the first block of a
    dilated stage the previous dilation and only the following blocks the new one.
    """
    out = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        # Sequential indices 0/1 are part of the key names torchvision weights use.
        downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), norm_layer(out))
    layers = [Bottleneck(inplanes, planes, stride, first_dilation, downsample, norm_layer)]
    layers += [Bottleneck(out, planes, 1, dilation, None, norm_layer) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetBackbone(nn.Module):
    """ResNet trunk at output stride 8 (no pooling head, no ``fc``).

    Args:
        layers: bottleneck blocks per stage, e.g. ``(3, 4, 23, 3)`` for ResNet-101.
        width: stem channels and inner channels of stage 1; stage ``i`` outputs
            ``width * 4 * 2**(i-1)`` channels (64 -> 256 ... 2048 for ResNet-101).
        norm_layer: normalisation class used throughout.
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 23, 3),
        width: int = 64,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        assert len(layers) == 4 and all(n >= 1 for n in layers), f"need 4 stages of >= 1 block, got {layers}"
        assert width >= 1, width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        exp = Bottleneck.expansion
        # (planes, stride, dilation, dilation of the previous stage): stages 3 and 4 trade their
        # stride for dilation 2 and 4, so the output stays at stride 8.
        specs = [(width, 1, 1, 1), (width * 2, 2, 1, 1), (width * 4, 1, 2, 1), (width * 8, 1, 4, 2)]
        inplanes = width
        for i, ((planes, stride, dilation, first_dilation), n) in enumerate(zip(specs, layers, strict=True)):
            stage = make_stage(inplanes, planes, n, stride, dilation, first_dilation, norm_layer)
            self.add_module(f"layer{i + 1}", stage)
            inplanes = planes * exp
        self.out_channels = inplanes
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif _is_bn(m):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


class ASPPClassifier(nn.Module):
    """DeepLab-V2 ASPP head: parallel 3x3 atrous convs to class logits, summed (not concatenated).

    Args:
        in_channels: feature channels from the backbone.
        num_classes: output channels.
        rates: dilation of each branch.
    """

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int] = DEEPLAB_V2_RATES) -> None:
        super().__init__()
        assert len(rates) >= 1 and num_classes >= 1, (rates, num_classes)
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates
        )
        for conv in self.convs:
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class DeepLabV2(nn.Module):
    """DeepLab-V2 segmentation network: ``forward(x)`` gives logits at 1/8 of the input size.

    Batch norm starts in the ordinary (updating) mode; ``freeze_bn(True)`` fixes it.

    Args:
        num_classes: number of output classes.
        layers: bottleneck blocks per ResNet stage (``(3, 4, 23, 3)``: ResNet-101).
        width: base width of the ResNet (64 for the standard network).
        rates: ASPP dilation rates.
        norm_layer: normalisation class of the backbone.
    """

    def __init__(
        self,
        num_classes: int,
        layers: Sequence[int] = (3, 4, 23, 3),
        width: int = 64,
        rates: Sequence[int] = DEEPLAB_V2_RATES,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNetBackbone(layers, width, norm_layer)
        self.classifier = ASPPClassifier(self.backbone.out_channels, num_classes, rates)
        self._bn_frozen = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """``(backbone_params, head_params)`` that require grad, for per-group learning rates."""
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        head = [p for p in self.classifier.parameters() if p.requires_grad]
        return backbone, head

    def _batch_norms(self) -> Iterator[nn.Module]:
        return (m for m in self.modules() if _is_bn(m))

    @property
    def bn_frozen(self) -> bool:
        return self._bn_frozen

    def freeze_bn(self, frozen: bool = True) -> DeepLabV2:
        """Fix or release every batch norm; returns ``self``.

        Frozen: running statistics are used and never updated (eval mode, kept through later
        ``train()`` calls) and the affine weight/bias get ``requires_grad=False``, so they also drop
        out of ``parameter_groups()``. Call this before building the optimiser and before
        wrapping in DistributedDataParallel (which fixes its parameter set at construction).
        Not frozen: ordinary batch norm, statistics updating in train mode. Self-training with
        updating statistics is a known way to collapse; it stays reachable on purpose.
        """
        self._bn_frozen = frozen
        for bn in self._batch_norms():
            for p in bn.parameters(recurse=False):
                p.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> DeepLabV2:
        super().train(mode)
        if self._bn_frozen:
            for bn in self._batch_norms():
                bn.eval()
        return self


def segment(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of ``model`` upsampled bilinearly (``align_corners=False``) to the size of ``x``."""
    logits = model(x)
    return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def load_backbone_state_dict(model: DeepLabV2, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load torchvision-format ResNet weights into ``model.backbone``.

    ``module.`` (DDP) prefixes are removed from every key that has one. The ImageNet classifier
    (``fc.*``) is dropped, with a log message. Missing ``*.num_batches_tracked`` counters are
    tolerated (older torchvision files predate them; they only count updates). Anything else must
    match exactly.

    Raises:
        RuntimeError: listing every missing key, unexpected key and shape mismatch; nothing is
            loaded in that case.
    """
    sd = strip_prefix(state_dict, "module.")
    dropped = sorted(k for k in sd if k.startswith("fc."))
    if dropped:
        _log.info("backbone weights: dropping the ImageNet classifier (%s)", ", ".join(dropped))
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    for key, ref in model.backbone.state_dict().items():
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = torch.zeros_like(ref)
    load_model_state(model.backbone, sd, what="backbone state dict (torchvision ResNet format expected)")


def load_pretrained_backbone(model: DeepLabV2, path: str | Path) -> None:
    """Read torchvision-format ResNet weights from a local file and load them strictly.

    Raises:
        FileNotFoundError: no file at ``path``.
        RuntimeError: the file is unreadable or its keys/shapes do not match the backbone.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained backbone weights not found: {path}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(f"{path}: cannot read backbone weights: {type(e).__name__}: {e}") from e
    if not isinstance(state_dict, Mapping):
        raise RuntimeError(f"{path}: expected a state dict, found {type(state_dict).__name__}")
    try:
        load_backbone_state_dict(model, state_dict)
    except RuntimeError as e:
        raise RuntimeError(f"{path}: {e}") from None


def build_deeplab_v2(num_classes: int, pretrained_backbone: str | Path | None = None) -> DeepLabV2:
    """DeepLab-V2 on ResNet-101, ASPP rates 6/12/18/24 (the paper's model).

    Args:
        num_classes: number of output classes.
        pretrained_backbone: local torchvision ResNet-101 weights to load, or None for random init.
    """
    model = DeepLabV2(num_classes, layers=(3, 4, 23, 3), width=64, rates=DEEPLAB_V2_RATES)
    if pretrained_backbone is not None:
        load_pretrained_backbone(model, pretrained_backbone)
    return model


def build_deeplab_v2_small(
    num_classes: int, width: int = 16, pretrained_backbone: str | Path | None = None
) -> DeepLabV2:
    """The same network with one block per stage, base ``width`` and ASPP rates 1/2/3/4.

    Sized for CPU runs on 64x128 images: stage outputs are ``width*4 ... width*32`` channels.

    Args:
        num_classes: number of output classes.
        width: base width (16 gives 64/128/256/512 stage channels).
        pretrained_backbone: local weights in torchvision layout for this width, or None.
    """
    model = DeepLabV2(num_classes, layers=(1, 1, 1, 1), width=width, rates=SMALL_RATES)
    if pretrained_backbone is not None:
        load_pretrained_backbone(model, pretrained_backbone)
    return model


def build_model(cfg: ModelConfig, num_classes: int) -> DeepLabV2:
    """Build the network named by ``cfg.arch``, loading ``cfg.pretrained_backbone`` when set.

    Args:
        cfg: the ``model`` section of the run config.
        num_classes: number of output classes (``cfg.data.num_classes``).
    """
    if cfg.arch == "deeplab_v2":
        return build_deeplab_v2(num_classes, cfg.pretrained_backbone)
    if cfg.arch == "deeplab_v2_small":
        return build_deeplab_v2_small(num_classes, cfg.width, cfg.pretrained_backbone)
    raise ValueError(f"unknown model.arch {cfg.arch!r}")
