import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from reprolab.snn.losses import sdt_loss, tet_loss


def test_tet_loss_without_regulariser_equals_spikingjelly_reference():
    torch.manual_seed(0)
    out, y = torch.randn(6, 8, 10), torch.randint(0, 10, (8,))
    torch.testing.assert_close(tet_loss(out, y, lam=0.0), functional.temporal_efficient_training_cross_entropy(out, y))


def test_tet_loss_is_mean_of_per_step_cross_entropies_plus_weighted_mse():
    torch.manual_seed(1)
    out, y = torch.randn(4, 5, 3), torch.randint(0, 3, (5,))
    lam, phi = 0.2, 1.0
    per_step = sum(F.cross_entropy(out[t], y) for t in range(4)) / 4
    mse = ((out - phi) ** 2).mean()
    torch.testing.assert_close(tet_loss(out, y, lam, phi), (1 - lam) * per_step + lam * mse)


def test_sdt_loss_is_cross_entropy_of_the_time_average():
    torch.manual_seed(2)
    out, y = torch.randn(3, 4, 5), torch.randint(0, 5, (4,))
    torch.testing.assert_close(sdt_loss(out, y), F.cross_entropy(out.mean(0), y))


def test_tet_and_sdt_gradients_differ_per_time_step():
    # TET gives each O(t) its own gradient; SDT gives every step the same one.
    out = torch.randn(3, 2, 4, requires_grad=True)
    y = torch.tensor([1, 2])
    (g_sdt,) = torch.autograd.grad(sdt_loss(out, y), out)
    (g_tet,) = torch.autograd.grad(tet_loss(out, y), out)
    assert torch.allclose(g_sdt[0], g_sdt[1]) and not torch.allclose(g_tet[0], g_tet[1])
