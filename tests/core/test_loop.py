import pytest
import torch
from torch import nn

from reprolab.core.io import read_jsonl
from reprolab.core.loop import epoch_seed, run_epochs, run_key


class Interrupted(Exception):
    pass


def _regression(seed: int, stop_after: int | None = None):
    """A tiny linear regression trained on fresh random batches each epoch (global RNG)."""
    torch.manual_seed(seed)
    net = nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    w_true = torch.tensor([[1.0, -2.0, 0.5]])

    def epoch_fn(epoch: int) -> dict[str, float]:
        if stop_after is not None and epoch == stop_after:
            raise Interrupted
        x = torch.randn(64, 3)
        loss = ((net(x) - x @ w_true.T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": float(loss)}

    return net, {"net": net, "opt": opt, "sched": sched}, epoch_fn


def test_an_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    key = run_key({"lr": 0.1})
    net_a, state_a, fn_a = _regression(0)
    full = run_epochs(fn_a, state_a, epochs=6, seed=3, key=key, checkpoint_dir=tmp_path / "a", progress=False)

    _, state_b, fn_b = _regression(0, stop_after=4)
    with pytest.raises(Interrupted):
        run_epochs(fn_b, state_b, epochs=6, seed=3, key=key, checkpoint_dir=tmp_path / "b", progress=False)
    assert len(read_jsonl(tmp_path / "b" / "history.jsonl")) == 4
    net_c, state_c, fn_c = _regression(99)  # different init: everything must come from the checkpoint
    resumed = run_epochs(fn_c, state_c, epochs=6, seed=3, key=key, checkpoint_dir=tmp_path / "b", progress=False)

    assert [h["loss"] for h in resumed] == [h["loss"] for h in full]
    assert torch.equal(net_c.weight, net_a.weight)
    assert full[-1]["loss"] < full[0]["loss"]  # it does learn
    assert [h["epoch"] for h in read_jsonl(tmp_path / "b" / "history.jsonl")] == list(range(1, 7))


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    _, state, fn = _regression(0)
    run_epochs(fn, state, epochs=2, seed=0, key=run_key({"lr": 0.1}), checkpoint_dir=tmp_path, progress=False)
    _, state, fn = _regression(0)
    history = run_epochs(fn, state, epochs=3, seed=0, key=run_key({"lr": 0.2}), checkpoint_dir=tmp_path,
                         progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_epoch_seeds_differ_across_epochs_and_runs():
    seeds = {epoch_seed(s, e) for s in range(5) for e in range(50)}
    assert len(seeds) == 250
    assert run_key({"a": 1, "b": 2}) == run_key({"b": 2, "a": 1}) != run_key({"a": 1, "b": 3})
