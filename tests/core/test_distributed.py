import numpy as np
import pytest
import torch

from reprolab.core import distributed as dd
from reprolab.core.errors import ConfigError
from reprolab.core.io import read_jsonl
from tests.core import ddp_workers as w

TWO = dd.Topology(nodes=1, procs_per_node=2)


def test_shards_interleave_into_the_one_process_order():
    one = dd.shard(10, seed=5, epoch=3, shuffle=True, num_replicas=1, replica=0)
    assert one.tolist() == torch.randperm(10, generator=torch.Generator().manual_seed(8)).tolist()
    r0, r1 = (dd.shard(10, 5, 3, True, num_replicas=2, replica=r) for r in (0, 1))
    assert np.stack([r0, r1], 1).ravel().tolist() == one.tolist()
    assert dd.shard(4, 0, 0, False, num_replicas=1, replica=0).tolist() == [0, 1, 2, 3]


def test_topology_from_resources():
    assert dd.Topology.from_resources({"gpus": 4, "nodes": 2}).world_size == 8
    assert dd.Topology.from_resources({"gpus": 0}).world_size == 1
    cpu = dd.Topology.from_resources({"gpus": 0, "processes_per_node": 2, "sync_batchnorm": True})
    assert cpu.world_size == 2 and cpu.sync_batchnorm
    with pytest.raises(ConfigError, match="resources.nodes"):
        dd.Topology.from_resources({"gpus": 1, "nodes": 0})
    with pytest.raises(ConfigError, match="one process per GPU"):
        dd.Topology.from_resources({"gpus": 2, "processes_per_node": 4})


def test_one_process_runs_in_place(tmp_path):
    assert dd.launch(w.write_marker, (str(tmp_path / "m"),), dd.Topology(), "cpu") == 1


def test_two_gloo_processes_gather_and_reduce():
    out = dd.launch(w.gather_and_reduce, (11,), TWO, "cpu")
    assert out["ordered"].tolist() == [10 * i for i in range(11)]  # padding duplicate dropped
    assert out["sums"] == {"one": 2.0, "rank": 1.0} and out["main"]


def test_global_batches_split_into_weighted_shares_and_buffers_come_from_rank_0():
    out = dd.launch(w.shares_and_buffers, (5,), TWO, "cpu")
    assert out["parts"][0].tolist() == [0, 1, 2, -1, -1] and out["parts"][1].tolist() == [3, 4, -1, -1, -1]
    # shares 3 and 2 of 5 weigh 6/5 and 4/5: their mean (DDP's gradient average) is the global mean
    assert out["sums"] == pytest.approx({"mean": 2.0, "weight": 2.0, "n": 5.0})  # rank 0's buffer (1) on both
    one = dd.local_share(np.arange(5))
    assert one.tolist() == list(range(5)) and dd.share_weight(5, 5) == 1.0
    assert "cannot be split over 2 processes" in dd.launch(w.split_error, (1,), TWO, "cpu")


def test_two_processes_take_the_one_process_steps_and_resume_with_any_count(tmp_path):
    one = w.train_linear(4, str(tmp_path / "one"))
    two = dd.launch(w.train_linear, (4, str(tmp_path / "two")), TWO, "cpu")
    assert two["world"] == 2
    np.testing.assert_allclose(two["weight"], one["weight"], rtol=1e-5, atol=1e-6)
    assert [h["loss_sum"] for h in two["history"]] == pytest.approx([h["loss_sum"] for h in one["history"]],
                                                                     rel=1e-5)
    # A 2-process run killed in epoch 3 resumes with one process and ends where the others did.
    with pytest.raises(Exception):  # noqa: B017 - the launcher wraps the worker's error
        dd.launch(w.train_linear, (4, str(tmp_path / "killed"), 2), TWO, "cpu")
    assert len(read_jsonl(tmp_path / "killed" / "history.jsonl")) == 2
    resumed = w.train_linear(4, str(tmp_path / "killed"))
    np.testing.assert_allclose(resumed["weight"], one["weight"], rtol=1e-5, atol=1e-6)


def test_several_nodes_need_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ConfigError, match="SLURM allocation"):
        dd.launch(w.write_marker, ("x",), dd.Topology(nodes=2), "cpu")
