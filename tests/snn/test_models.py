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
