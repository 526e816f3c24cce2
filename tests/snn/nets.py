"""Small helpers that put test networks into a trained-like state without training."""

import torch


def bn_statistics_of(net: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.nn.Module:
    """``net`` in eval mode with the exact BN statistics of ``x`` and random affine parameters.

    Every layer is then normalised as after training, so a conversion sees realistic
    activation ranges without training.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the statistics of x exactly
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()
