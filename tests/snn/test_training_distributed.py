"""Data-parallel training of an ANN through the shared fit loop: 2 gloo processes against 1."""

import pytest

from reprolab.core import distributed as dd

from . import ddp_workers as w


def test_two_processes_train_the_ann_like_one_with_the_same_global_batch(tmp_path):
    """Each of 2 processes takes 16 of every 32-sample batch; DDP averages their gradients.

    BatchNorm statistics come from each process's 16 samples (SyncBatchNorm is CUDA only), so
    the runs agree to a tolerance, stated here: training loss within 5 % per epoch, final test
    accuracy within 3 points (of 360 test digits), and both clearly above chance.
    """
    one = w.train_digits_ann(str(tmp_path / "one"))
    two = dd.launch(w.train_digits_ann, (str(tmp_path / "two"),), dd.Topology(procs_per_node=2), "cpu")
    assert (one["world"], two["world"]) == (1, 2)
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
    final_one, final_two = one["history"][-1]["test_accuracy"], two["history"][-1]["test_accuracy"]
    assert final_two == pytest.approx(final_one, abs=0.03)
    assert min(final_one, final_two) > 0.5  # it learns (chance is 0.1)
