import pytest
import torch

from reprolab.core.errors import ConfigError
from reprolab.snn.models import VGGSNN, ResNet19, build_model


def test_vggsnn_outputs_one_logit_vector_per_step():
    net = VGGSNN(2, 10, 34, [4, 8], [True, True])
    assert net(torch.rand(3, 2, 2, 34, 34)).shape == (3, 2, 10)


def test_vggsnn_rejects_mismatched_pool_flags():
    with pytest.raises(ConfigError, match="pool_after"):
        VGGSNN(2, 10, 34, [4, 8], [True])


def test_state_is_reset_between_forward_passes():
    net = VGGSNN(2, 10, 16, [4], [True]).eval()
    x = torch.rand(4, 1, 2, 16, 16)
    torch.testing.assert_close(net(x), net(x))


def test_resnet19_paper_layout_has_eight_blocks_and_the_spiking_fc():
    net = ResNet19(3, 100, [16, 16, 32, 64], blocks=[3, 3, 2], classifier_hidden=32)
    blocks = [m for m in net.features if m.__class__.__name__ == "BasicBlock"]
    assert len(blocks) == 8
    assert net(torch.rand(2, 1, 3, 32, 32)).shape == (2, 1, 100)


def test_build_model_names_unknown_arch():
    with pytest.raises(ConfigError, match="model.arch"):
        build_model({"arch": "transformer", "channels": [4]}, 2, 10, 34)


def _default_bound(m: torch.nn.Module) -> float:
    """PyTorch's default init draws weights (and biases) uniformly in +-1/sqrt(fan_in)."""
    return 1.0 / (m.weight[0].numel() ** 0.5)


def test_vggsnn_initialises_conv_weights_only_like_the_official_code():
    torch.manual_seed(0)
    net = VGGSNN(2, 10, 16, [32, 64], [True, True], classifier_hidden=64)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    for conv in convs:  # Kaiming normal, fan out: std sqrt(2 / (c_out * 9)), well beyond the default bound
        fan_out = conv.out_channels * conv.weight[0, 0].numel()
        assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.15)
        assert conv.bias is not None and conv.bias.abs().max() <= _default_bound(conv) and conv.bias.abs().sum() > 0
    for lin in linears:  # PyTorch's default, as the official classifier
        assert lin.weight.abs().max() <= _default_bound(lin)
        assert lin.weight.std().item() == pytest.approx(_default_bound(lin) / 3 ** 0.5, rel=0.15)


def test_resnet19_keeps_pytorch_defaults_and_bias_free_convs_like_the_official_code():
    torch.manual_seed(0)
    net = ResNet19(3, 10, [16, 32, 64, 64], blocks=[1, 1, 1], classifier_hidden=32)
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for m in layers:
        assert m.weight.abs().max() <= _default_bound(m)
        if isinstance(m, torch.nn.Conv2d):
            assert m.bias is None
