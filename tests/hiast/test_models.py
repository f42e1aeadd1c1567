"""DeepLab-V2, its torchvision-compatible backbone loader, batch-norm freezing, the discriminator."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from hiast.config import ModelConfig
from hiast.models import (
    DeepLabV2,
    FCDiscriminator,
    build_model,
    load_backbone_state_dict,
    load_pretrained_backbone,
    segment,
)
from hiast.models.deeplab_v2 import build_deeplab_v2, build_deeplab_v2_small

NUM_CLASSES = 5


def torchvision_resnet_keys(layers: tuple[int, ...]) -> list[str]:
    """State-dict keys of torchvision's ``resnet*`` with Bottleneck blocks, written from its layout."""

    def bn(name: str) -> list[str]:
        suffixes = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        return [f"{name}.{s}" for s in suffixes]

    keys = ["conv1.weight", *bn("bn1")]
    for stage, n in enumerate(layers, start=1):
        for b in range(n):
            p = f"layer{stage}.{b}."
            for i in (1, 2, 3):
                keys += [f"{p}conv{i}.weight", *bn(f"{p}bn{i}")]
            if b == 0:  # every stage's first block projects the shortcut (channels change)
                keys += [f"{p}downsample.0.weight", *bn(f"{p}downsample.1")]
    return keys + ["fc.weight", "fc.bias"]


def torchvision_format(model: DeepLabV2, prefix: str = "", with_fc: bool = True) -> dict[str, torch.Tensor]:
    """A torchvision-layout state dict with distinct random values, built from ``model``'s shapes."""
    g = torch.Generator().manual_seed(7)
    sd = {}
    for k, v in model.backbone.state_dict().items():
        if v.is_floating_point():
            sd[prefix + k] = torch.randn(v.shape, generator=g)
        else:  # num_batches_tracked
            sd[prefix + k] = torch.randint(0, 100, v.shape, generator=g)
    if with_fc:
        sd[prefix + "fc.weight"] = torch.randn(1000, model.backbone.out_channels, generator=g)
        sd[prefix + "fc.bias"] = torch.randn(1000, generator=g)
    return sd


def assert_backbone_equals(model: DeepLabV2, sd: dict[str, torch.Tensor], prefix: str = "") -> None:
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, sd[prefix + k]), k


@pytest.fixture(scope="module")
def resnet101() -> DeepLabV2:
    torch.manual_seed(0)
    return build_deeplab_v2(NUM_CLASSES)


@pytest.fixture
def small() -> DeepLabV2:
    torch.manual_seed(0)
    return build_deeplab_v2_small(NUM_CLASSES, width=8)


# --- architecture -------------------------------------------------------------------------------


def test_resnet101_keys_and_shapes_match_torchvision(resnet101: DeepLabV2) -> None:
    sd = resnet101.backbone.state_dict()
    expected = [k for k in torchvision_resnet_keys((3, 4, 23, 3)) if not k.startswith("fc.")]
    assert list(sd) == expected
    # torchvision's resnet101 has 44,549,160 parameters, 2048*1000 + 1000 of them in fc.
    assert sum(p.numel() for p in resnet101.backbone.parameters()) == 44_549_160 - 2_049_000
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["layer1.0.conv2.weight"].shape == (64, 64, 3, 3)
    assert sd["layer3.0.downsample.0.weight"].shape == (1024, 512, 1, 1)
    assert sd["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)


def test_resnet101_strides_and_dilations_follow_torchvision(resnet101: DeepLabV2) -> None:
    b = resnet101.backbone
    # replace_stride_with_dilation=[False, True, True]: the first block of a dilated stage keeps
    # the previous stage's dilation, and the stride sits on the 3x3 conv.
    assert b.layer2[0].conv2.stride == (2, 2) and b.layer2[0].conv1.stride == (1, 1)
    assert b.layer2[0].downsample[0].stride == (2, 2)
    assert [blk.conv2.dilation[0] for blk in (b.layer3[0], b.layer3[1], b.layer3[22])] == [1, 2, 2]
    assert [blk.conv2.dilation[0] for blk in (b.layer4[0], b.layer4[1], b.layer4[2])] == [2, 4, 4]
    assert all(blk.conv2.stride == (1, 1) for blk in [*b.layer3, *b.layer4])
    assert [c.dilation for c in resnet101.classifier.convs] == [(6, 6), (12, 12), (18, 18), (24, 24)]


@torch.no_grad()
def test_resnet101_output_stride_8(resnet101: DeepLabV2) -> None:
    resnet101.eval()
    x = torch.randn(1, 3, 48, 64)
    assert resnet101(x).shape == (1, NUM_CLASSES, 6, 8)
    assert segment(resnet101, x).shape == (1, NUM_CLASSES, 48, 64)


def test_small_variant_layout() -> None:
    model = build_deeplab_v2_small(NUM_CLASSES, width=16)
    b = model.backbone
    assert [len(getattr(b, f"layer{i}")) for i in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert [getattr(b, f"layer{i}")[0].conv3.out_channels for i in (1, 2, 3, 4)] == [64, 128, 256, 512]
    assert [c.dilation for c in model.classifier.convs] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    # Same key layout as torchvision, just fewer blocks.
    expected = [k for k in torchvision_resnet_keys((1, 1, 1, 1)) if not k.startswith("fc.")]
    assert list(b.state_dict()) == expected


def test_small_variant_output_stride_8_and_segment(small: DeepLabV2) -> None:
    x = torch.randn(2, 3, 64, 128)
    logits = small(x)
    assert logits.shape == (2, NUM_CLASSES, 8, 16)
    up = segment(small, x)
    assert up.shape == (2, NUM_CLASSES, 64, 128)
    expected = nn.functional.interpolate(logits, size=(64, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up, expected)
    # Sizes that are not multiples of 8 still come back at the input size.
    assert segment(small, torch.randn(1, 3, 37, 53)).shape == (1, NUM_CLASSES, 37, 53)


def test_aspp_sums_its_branches_and_starts_small(small: DeepLabV2) -> None:
    head = small.classifier
    feats = torch.randn(2, small.backbone.out_channels, 8, 16)
    torch.testing.assert_close(head(feats), sum(conv(feats) for conv in head.convs))
    w = torch.cat([c.weight.flatten() for c in head.convs])
    assert 0.005 < w.std().item() < 0.02  # normal(0, 0.01), not the backbone's kaiming init
    assert all(torch.count_nonzero(c.bias) == 0 for c in head.convs)


def test_build_model_dispatches_on_arch() -> None:
    small = build_model(ModelConfig(arch="deeplab_v2_small", width=8), NUM_CLASSES)
    assert small.backbone.out_channels == 8 * 32 and len(small.backbone.layer3) == 1
    assert small.classifier.convs[0].out_channels == NUM_CLASSES
    big = build_model(ModelConfig(arch="deeplab_v2"), 3)
    assert len(big.backbone.layer3) == 23 and big.backbone.out_channels == 2048
    assert big.classifier.convs[0].out_channels == 3


# --- parameter groups and batch norm ------------------------------------------------------------


def _ids(params: list[nn.Parameter]) -> set[int]:
    return {id(p) for p in params}


def test_parameter_groups_disjoint_and_complete(small: DeepLabV2) -> None:
    backbone, head = small.parameter_groups()
    assert _ids(backbone).isdisjoint(_ids(head))
    assert _ids(backbone) | _ids(head) == _ids(list(small.parameters()))
    assert _ids(backbone) == _ids(list(small.backbone.parameters()))
    assert _ids(head) == _ids(list(small.classifier.parameters()))


def _running_stats(model: nn.Module) -> list[torch.Tensor]:
    return [b.clone() for n, b in model.named_buffers() if "running_" in n]


def _bns(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def test_freeze_bn_fixes_statistics_and_affine_params(small: DeepLabV2) -> None:
    small.freeze_bn(True)
    small.train()  # the freeze must survive the usual call at the start of a training loop
    assert small.training and small.classifier.training
    assert not any(bn.training for bn in _bns(small))
    before = _running_stats(small)
    out = small(torch.randn(4, 3, 64, 128) * 3 + 1)
    out.mean().backward()
    after = _running_stats(small)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    for bn in _bns(small):
        assert not bn.weight.requires_grad and not bn.bias.requires_grad
        assert bn.weight.grad is None
    backbone, head = small.parameter_groups()
    assert _ids(backbone).isdisjoint({id(p) for bn in _bns(small) for p in bn.parameters()})
    assert len(head) == 2 * len(small.classifier.convs)
    # Gradients still flow through frozen BN into the convs below it.
    assert small.backbone.conv1.weight.grad is not None
    assert small.backbone.conv1.weight.grad.abs().sum() > 0
    # eval() then train() again: still frozen.
    small.eval().train()
    assert not any(bn.training for bn in _bns(small))


def test_unfrozen_bn_updates_statistics(small: DeepLabV2) -> None:
    small.freeze_bn(True)
    small.freeze_bn(False)  # must be reversible: the "BN updating" setting has to stay reachable
    small.train()
    assert all(bn.training for bn in _bns(small))
    assert all(bn.weight.requires_grad for bn in _bns(small))
    before = _running_stats(small)
    small(torch.randn(4, 3, 64, 128) * 3 + 1)
    after = _running_stats(small)
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    # Released BN affine params are trainable again, so they are back in the optimiser groups.
    assert _ids(small.parameter_groups()[0]) == _ids(list(small.backbone.parameters()))


def test_freeze_bn_in_eval_mode_stays_eval(small: DeepLabV2) -> None:
    small.eval()
    small.freeze_bn(False)
    assert not small.training and not any(bn.training for bn in _bns(small))


# --- backbone loading ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "module."])
def test_load_torchvision_state_dict(small: DeepLabV2, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    sd = torchvision_format(small, prefix=prefix)
    head_before = [c.weight.clone() for c in small.classifier.convs]
    with caplog.at_level(logging.INFO, logger="hiast.models.deeplab_v2"):
        load_backbone_state_dict(small, sd)
    assert_backbone_equals(small, sd, prefix)
    assert "fc.weight" in caplog.text and "fc.bias" in caplog.text  # the dropped head is reported
    # The classifier is not part of the backbone weights and must not change.
    assert all(torch.equal(a, c.weight) for a, c in zip(head_before, small.classifier.convs, strict=True))


def test_load_without_fc_and_with_mixed_prefixes(small: DeepLabV2) -> None:
    sd = torchvision_format(small, with_fc=False)
    # Prefix stripped key by key: only some keys carry it here.
    mixed = {("module." + k if i % 2 else k): v for i, (k, v) in enumerate(sd.items())}
    load_backbone_state_dict(small, mixed)
    assert_backbone_equals(small, sd)


def test_load_tolerates_missing_num_batches_tracked(small: DeepLabV2) -> None:
    sd = torchvision_format(small)
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    load_backbone_state_dict(small, sd)
    assert torch.equal(small.backbone.bn1.running_mean, sd["bn1.running_mean"])


def test_load_reports_every_problem_and_loads_nothing(small: DeepLabV2) -> None:
    sd = torchvision_format(small)
    del sd["layer2.0.conv1.weight"]
    del sd["layer4.0.bn3.running_var"]
    sd["layer1.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
    sd["layer5.0.conv1.weight"] = torch.zeros(1)
    before = {k: v.clone() for k, v in small.backbone.state_dict().items()}
    with pytest.raises(RuntimeError) as err:
        load_backbone_state_dict(small, sd)
    msg = str(err.value)
    for text in (
        "missing key: layer2.0.conv1.weight",
        "missing key: layer4.0.bn3.running_var",
        "unexpected key: layer5.0.conv1.weight",
        "shape mismatch: layer1.0.conv2.weight",
    ):
        assert text in msg
    assert "(3, 3, 3, 3)" in msg and "(8, 8, 3, 3)" in msg
    after = small.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_load_rejects_duplicate_after_prefix_strip(small: DeepLabV2) -> None:
    sd = torchvision_format(small)
    sd["module.conv1.weight"] = sd["conv1.weight"].clone()
    with pytest.raises(RuntimeError, match="conv1.weight"):
        load_backbone_state_dict(small, sd)


def test_load_full_resnet101_rejects_small_weights(resnet101: DeepLabV2, small: DeepLabV2) -> None:
    with pytest.raises(RuntimeError, match="shape mismatch: conv1.weight"):
        load_backbone_state_dict(resnet101, torchvision_format(small))


def test_load_pretrained_backbone_from_file(small: DeepLabV2, tmp_path) -> None:
    sd = torchvision_format(small, prefix="module.")
    path = tmp_path / "resnet.pth"
    torch.save(sd, path)
    load_pretrained_backbone(small, path)
    assert_backbone_equals(small, sd, "module.")
    model = build_model(ModelConfig(arch="deeplab_v2_small", width=8, pretrained_backbone=path), NUM_CLASSES)
    assert_backbone_equals(model, sd, "module.")


def test_load_pretrained_backbone_missing_file(small: DeepLabV2, tmp_path) -> None:
    path = tmp_path / "nope" / "resnet101.pth"
    with pytest.raises(FileNotFoundError, match="resnet101.pth"):
        load_pretrained_backbone(small, path)
    with pytest.raises(FileNotFoundError, match="nope"):
        build_model(ModelConfig(arch="deeplab_v2_small", width=8, pretrained_backbone=path), NUM_CLASSES)


def test_load_pretrained_backbone_unreadable_file_names_path(small: DeepLabV2, tmp_path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(RuntimeError, match="garbage.pth"):
        load_pretrained_backbone(small, path)


# --- discriminator ------------------------------------------------------------------------------


def test_discriminator_shapes_and_width() -> None:
    d = FCDiscriminator(NUM_CLASSES, ndf=16)
    convs = [d.conv1, d.conv2, d.conv3, d.conv4, d.classifier]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 1]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert d.leaky_relu.negative_slope == 0.2
    probs = torch.randn(2, NUM_CLASSES, 64, 128).softmax(1)
    assert d(probs).shape == (2, 1, 2, 4)
    assert FCDiscriminator(NUM_CLASSES).conv4.out_channels == 512  # the paper's ndf=64


def test_discriminator_rejects_bad_input() -> None:
    d = FCDiscriminator(NUM_CLASSES, ndf=4)
    with pytest.raises(ValueError, match="H>=32"):
        d(torch.rand(1, NUM_CLASSES, 8, 16))
    with pytest.raises(ValueError, match=str(NUM_CLASSES)):
        d(torch.rand(1, NUM_CLASSES + 1, 64, 64))
