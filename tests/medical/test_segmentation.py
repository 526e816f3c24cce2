"""Generic MONAI pieces: U-Net with a bottleneck head, weight transfer, per-volume metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reprolab.medical.segmentation import UNetWithHead, basic_unet, transfer_weights, volume_metrics

FEATURES = (4, 4, 8, 8, 16, 4)


def test_unet_with_head_reads_the_bottleneck():
    net = UNetWithHead(basic_unet(1, 2, FEATURES), bottleneck_channels=16, hidden=8, dropout=0.0)
    dense, head = net(torch.randn(3, 1, 32, 32))
    assert dense.shape == (3, 2, 32, 32) and head.shape == (3, 1)
    # the head depends on the bottleneck only: zeroing the up-path leaves it unchanged
    net.eval()
    x = torch.randn(2, 1, 32, 32)
    before = net(x)[1]
    with torch.no_grad():
        for p in net.unet.upcat_1.parameters():
            p.zero_()
    assert torch.allclose(net(x)[1], before)
    with pytest.raises(ValueError, match="six widths"):
        basic_unet(1, 2, (4, 8))


def test_transfer_weights_skips_the_output_layer_and_checks_shapes():
    torch.manual_seed(0)
    pretrained = UNetWithHead(basic_unet(1, 2, FEATURES), 16, 8)
    target = basic_unet(1, 4, FEATURES)
    final_before = target.final_conv.weight.clone()
    loaded = transfer_weights(target, pretrained.state_dict(), prefix="unet.")
    assert loaded and not any("final_" in k or k.startswith("head") for k in loaded)
    assert torch.equal(target.conv_0.conv_0.conv.weight, pretrained.unet.conv_0.conv_0.conv.weight)
    assert torch.equal(target.final_conv.weight, final_before)
    with pytest.raises(ValueError, match="do not fit"):
        transfer_weights(basic_unet(1, 4, (8, 8, 8, 8, 16, 8)), pretrained.state_dict(), prefix="unet.")


def test_volume_metrics_match_hand_computed_dice_and_distances():
    label = np.zeros((20, 20, 4), dtype=np.uint8)
    label[5:15, 5:15] = 1
    pred = np.zeros_like(label)
    pred[5:15, 7:17] = 1  # shifted by 2 voxels along axis 1
    pred[0, 0, 0] = 2  # class 2 predicted, absent from the label
    m = volume_metrics(pred, label, n_classes=3, spacing=(1.0, 2.0, 5.0))
    assert m["dice"][0] == pytest.approx(2 * 8 * 10 * 4 / (400 + 400))
    assert np.isnan(m["dice"][1])  # no class 2 in the label: Dice undefined, not 0
    assert m["hd"][0] == pytest.approx(4.0)  # 2 voxels of 2 mm
    assert 0 < m["assd"][0] <= 4.0 and np.isnan(m["hd"][1])
    fast = volume_metrics(pred, label, 3, (1, 1, 1), surface=False)
    assert fast["dice"][0] == m["dice"][0] and np.isnan(fast["hd"][0])
