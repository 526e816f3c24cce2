"""mmcbm networks: torchvision's EfficientNet-b0, masked attention pooling, the sigmoid-weight bottleneck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models import efficientnet_b0

from reprolab.core.errors import DataError
from reprolab.medical.mmcbm_cohort import MODALITIES, PHASES
from reprolab.medical.mmcbm_models import (
    IMAGENET_B0_FILE,
    AttentionPooling,
    Backbone,
    ConceptBottleneck,
    efficientnet_b0_net,
    load_imagenet_weights,
)

NORM = {m: {"mean": [0.3], "std": [0.1]} for m in MODALITIES}


def test_full_size_encoder_is_torchvisions_b0():
    ours, theirs = efficientnet_b0_net(1.0, 1.0).state_dict(), efficientnet_b0().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    small = efficientnet_b0_net(0.25, 0.25)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in theirs.values()) / 5


def test_imagenet_weights_are_hash_checked(tmp_path):
    with pytest.raises(DataError, match="download"):
        load_imagenet_weights(efficientnet_b0_net(), tmp_path / IMAGENET_B0_FILE)
    fake = tmp_path / IMAGENET_B0_FILE
    torch.save(efficientnet_b0().state_dict(), fake)
    with pytest.raises(DataError, match="SHA-256"):
        load_imagenet_weights(efficientnet_b0_net(), fake)


def test_attention_pooling_ignores_masked_images():
    torch.manual_seed(0)
    pool = AttentionPooling(16)
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[True, True, False, False, True], [True, False, False, False, False]])
    out = pool(x, mask)
    x2 = x.clone()
    x2[~mask] = 1e3
    torch.testing.assert_close(pool(x2, mask), out)
    torch.testing.assert_close(out[1], x[1, 0])  # one image: pooling returns it


def _batch(n: int, size: int = 48):
    rng = np.random.default_rng(0)
    images = {m: torch.from_numpy(rng.integers(0, 255, (n, len(PHASES[m]), 1, size, size), dtype=np.uint8))
              for m in MODALITIES}
    masks = {m: torch.ones(n, len(PHASES[m]), dtype=torch.bool) for m in MODALITIES}
    masks["FA"][0] = False  # patient 0 has no FA
    masks["US"][1] = False  # patient 1 has no US
    return images, masks


def test_backbone_ignores_missing_images_and_allows_a_dropped_modality():
    torch.manual_seed(0)
    net = Backbone(NORM, 0.25, 0.25).eval()
    images, masks = _batch(3)
    with torch.no_grad():
        logits = net(images, masks)
        images["FA"][0] = 255 - images["FA"][0]  # pixels of a missing modality must not matter
        torch.testing.assert_close(net(images, masks), logits)
        feats = net.encode(images, masks)
        assert (feats["FA"][0] == 0).all() and feats["US"].shape == (3, 1, net.n_features)
        dropped = dict(masks, ICGA=torch.zeros_like(masks["ICGA"]))
        assert net.classify(feats, dropped).shape == (3, 3)
    assert logits.shape == (3, 3)


def test_bottleneck_weights_are_sigmoids_starting_at_one_half():
    cbm = ConceptBottleneck(7, 3, init="zero")
    assert torch.allclose(cbm.class_weights, torch.full((3, 7), 0.5))
    x = torch.randn(4, 7)
    torch.testing.assert_close(cbm(x), x @ torch.full((7, 3), 0.5))
    with torch.no_grad():
        cbm.weight.uniform_(-20, 20)
    assert ((cbm.class_weights >= 0) & (cbm.class_weights <= 1)).all()
