import torch

from reprolab.snn.neurons import Triangle, lif


def test_lif_follows_the_tet_recursion_with_strict_threshold_and_hard_reset():
    x = torch.tensor([0.6, 0.8, 1.0, 0.2, 2.5]).view(5, 1)
    spikes = lif()(x).flatten().tolist()
    # u: 0.6 | 0.3+0.8=1.1 fires, reset | 0+1.0=1.0 does not fire (strict >) | 0.5+0.2=0.7 | 0.35+2.5 fires
    assert spikes == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_lif_state_is_independent_per_neuron():
    x = torch.tensor([[0.9, 1.2], [0.9, 0.0]])  # [T=2, N=2]
    assert lif()(x).tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_triangle_surrogate_gradient_is_the_zif_triangle():
    u = torch.tensor([-1.5, -0.5, 0.0, 0.25, 1.0, 2.0], requires_grad=True)
    out = Triangle(alpha=1.0)(u)
    out.sum().backward()
    expected = torch.clamp(1.0 - u.detach().abs(), min=0.0)
    torch.testing.assert_close(u.grad, expected)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_triangle_primitive_is_the_integral_of_the_surrogate():
    x = torch.linspace(-2, 2, 401, requires_grad=True)
    prim = Triangle.primitive_function(x, 1.0)
    (grad,) = torch.autograd.grad(prim.sum(), x)
    torch.testing.assert_close(grad, torch.clamp(1 - x.detach().abs(), min=0), atol=1e-5, rtol=0)


def test_lif_fires_by_the_same_strict_rule_in_eval_mode():
    # SpikingJelly's own eval kernels fire on v >= V_th; a potential of exactly 1.0 must not fire in either mode.
    x = torch.tensor([0.6, 0.8, 1.0, 0.2, 2.5]).view(5, 1)
    node = lif()
    train_spikes = node(x).flatten().tolist()
    node.reset()
    node.eval()
    with torch.no_grad():
        eval_spikes = node(x).flatten().tolist()
    assert eval_spikes == train_spikes == [0.0, 1.0, 0.0, 0.0, 1.0]


def test_lif_single_step_mode_matches_multi_step_in_eval_mode():
    x = torch.rand(6, 3, 4) * 1.5
    multi = lif().eval()
    single = lif().eval()
    single.step_mode = "s"
    with torch.no_grad():
        expected = multi(x)
        got = torch.stack([single(xt) for xt in x])
    torch.testing.assert_close(got, expected)
