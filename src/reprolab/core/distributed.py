"""Data-parallel training on PyTorch's own engine: ``torch.distributed``, DDP, elastic launch.

A training job asks for ``resources: {gpus, nodes}`` in its paper's config. With one
process nothing here changes anything. With more, :func:`launch` starts the processes the
way ``torchrun`` does (it is the same launcher, ``torch.distributed.launcher.elastic_launch``,
with c10d rendezvous):

- one node: ``gpus`` processes on this machine (NCCL on GPUs; gloo on CPUs, which is how the
  tests run two processes on ``127.0.0.1``);
- several nodes: inside a SLURM allocation, ``srun`` starts one launcher per node and the
  launchers meet at the first node of the job step (the SLURM executor submits such jobs
  with ``resources: {nodes, tasks, mpi}``, see ``workflow/rules/common.smk``).

Inside the processes, :func:`shard` splits each epoch's sample order with
``torch.utils.data.DistributedSampler`` (seeded, ``set_epoch``), so that the global batch of
step ``k`` holds the same samples with any number of processes; :func:`wrap` puts the model in
``DistributedDataParallel`` (gradients averaged over processes, so N processes with batch
``B / N`` take the step one process takes with batch ``B``); :func:`reduce_sums` and
:func:`gather_by_index` combine metrics and per-sample predictions; only rank 0 writes
files (:func:`is_main`). Checkpoints hold the unwrapped model, so a run resumes from the same
checkpoint with any number of processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprolab.core.errors import ConfigError

log = logging.getLogger("reprolab.distributed")


@dataclass(frozen=True)
class Topology:
    """How many processes a job runs: ``nodes`` x ``procs_per_node``.

    Attributes
    ----------
    nodes
        Machines (``resources.nodes``).
    procs_per_node
        Processes per machine: one per GPU (``resources.gpus``); at least 1.
    sync_batchnorm
        Convert BatchNorm layers to ``SyncBatchNorm`` (statistics over the global batch; CUDA
        only, so CPU runs keep per-process statistics).
    """

    nodes: int = 1
    procs_per_node: int = 1
    sync_batchnorm: bool = False

    @property
    def world_size(self) -> int:
        """Total number of processes."""
        return self.nodes * self.procs_per_node

    @classmethod
    def from_resources(cls, resources: Mapping[str, Any]) -> Topology:
        """From a paper's ``resources`` config section (``gpus``, ``nodes``, ``processes_per_node``, ``sync_batchnorm``)."""
        nodes, gpus = int(resources.get("nodes", 1)), int(resources.get("gpus", 0))
        procs = int(resources.get("processes_per_node") or max(1, gpus))
        if nodes < 1 or gpus < 0 or procs < 1:
            raise ConfigError("resources.nodes and resources.processes_per_node must be >= 1 and resources.gpus >= 0 "
                              f"(got nodes={nodes}, processes_per_node={procs}, gpus={gpus})")
        if gpus > 0 and procs > gpus:
            raise ConfigError(f"resources.processes_per_node = {procs} exceeds resources.gpus = {gpus}: one process "
                              "per GPU at most")
        return cls(nodes=nodes, procs_per_node=procs, sync_batchnorm=bool(resources.get("sync_batchnorm", False)))


# --------------------------------------------------------------------------------------
# Inside the processes
# --------------------------------------------------------------------------------------


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def is_distributed() -> bool:
    """Whether this process belongs to an initialised process group of more than one."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return _dist().get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return _dist().get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process writes files and logs progress (rank 0)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        _dist().barrier()


def local_device(device: str) -> str:
    """The device of this process: ``cuda:<local rank>`` for CUDA, else ``device``."""
    if device.startswith("cuda") and is_distributed():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def shard(n: int, seed: int, epoch: int, shuffle: bool, num_replicas: int | None = None,
          replica: int | None = None) -> np.ndarray:
    """This process's sample indices for one epoch (``DistributedSampler`` order).

    With one process and ``shuffle``, the order is ``torch.randperm(n)`` under the seed
    ``seed + epoch``; with ``W`` processes, rank ``r`` takes every ``W``-th index of that same
    permutation starting at ``r`` (padded by wrapping around when ``n`` is not a multiple of
    ``W``), so consecutive local batches of the ranks make up the one-process batches.

    Parameters
    ----------
    n
        Number of samples.
    seed
        Seed of the permutation (the same on every rank).
    epoch
        Epoch (``set_epoch``).
    shuffle
        Permute; otherwise ``0..n-1`` in order.
    num_replicas, replica
        Override the process group's world size and this process's rank (for tests).
    """
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=num_replicas or world_size(),
                                 rank=rank() if replica is None else replica, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64)


def wrap(model: Any, device: str, sync_batchnorm: bool = False, find_unused_parameters: bool = False) -> Any:
    """``DistributedDataParallel(model)`` when distributed (with ``SyncBatchNorm`` on CUDA if asked), else ``model``.

    ``find_unused_parameters``: a model whose forward pass may skip parameters on a process (a
    sub-network run only on present inputs) lets DDP treat them as zero gradients there.
    """
    if not is_distributed():
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    if sync_batchnorm and device.startswith("cuda"):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap(model: Any) -> Any:
    """The module inside a ``DistributedDataParallel`` wrapper (or the model itself)."""
    return getattr(model, "module", model)


def local_share(batch: np.ndarray) -> np.ndarray:
    """This process's part of one global batch: ``np.array_split(batch, world_size)[rank]``.

    Training code whose batches are drawn once for the whole run (the same indices on every
    rank, e.g. from a seeded generator) splits each global batch with this. The parts differ in
    size by at most one; weight each process's mean loss by :func:`share_weight` so that the
    averaged gradient is the global batch's. With one process the batch itself is returned.

    Raises
    ------
    ValueError
        If the batch has fewer samples than there are processes (a process would get none and
        ``DistributedDataParallel`` would wait for it forever).
    """
    batch = np.asarray(batch)
    if not is_distributed():
        return batch
    if len(batch) < world_size():
        raise ValueError(f"a global batch of {len(batch)} samples cannot be split over {world_size()} processes; "
                         "raise the batch size or lower resources.gpus / processes_per_node")
    return np.array_split(batch, world_size())[rank()]


def share_weight(n_local: int, n_global: int) -> float:
    """Factor of a process's mean loss so that DDP's gradient average is the global batch mean.

    DDP averages gradients over ``W`` processes; a process holding ``n_local`` of ``n_global``
    samples multiplies its mean loss by ``n_local * W / n_global``. This is exactly ``1.0`` with
    one process (so single-process numbers stay bit-identical) and with equal shares.
    """
    return n_local * world_size() / n_global


def sync_buffers(model: Any) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process (no-op with one).

    DDP broadcasts buffers at the start of each forward pass, so after the last training step of
    an epoch every process holds running statistics updated from its own share only. Calling
    this before evaluating makes all processes evaluate (and checkpoint) rank 0's model.
    """
    if not is_distributed():
        return
    for buf in unwrap(model).buffers():
        _dist().broadcast(buf, src=0)


def reduce_sums(values: Mapping[str, float]) -> dict[str, float]:
    """Sum each value over all processes (identity when not distributed)."""
    if not is_distributed():
        return {k: float(v) for k, v in values.items()}
    import torch

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    _dist().all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def gather_by_index(indices: np.ndarray, values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Every process's per-sample arrays, put back in sample order (duplicates from padding dropped).

    Parameters
    ----------
    indices
        ``[m]`` sample indices this process evaluated.
    values
        Arrays ``[m, ...]`` aligned with ``indices``.

    Returns
    -------
    list of numpy.ndarray
        The arrays over all samples, ordered by index (on every rank).
    """
    if not is_distributed():
        order = np.argsort(indices, kind="stable")
        return [np.asarray(v)[order] for v in values]
    parts: list[Any] = [None] * world_size()
    _dist().all_gather_object(parts, (np.asarray(indices), [np.asarray(v) for v in values]))
    idx = np.concatenate([p[0] for p in parts])
    _, first = np.unique(idx, return_index=True)
    return [np.concatenate([p[1][j] for p in parts])[first] for j in range(len(values))]


# --------------------------------------------------------------------------------------
# Starting the processes
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(fn: Callable[..., Any], args: tuple[Any, ...], backend: str, log_path: str | None,
            result_path: str | None) -> Any:
    """Body of every process: join the group, run ``fn``, leave."""
    import torch

    from reprolab.core.logs import script_logging

    dist = _dist()
    dist.init_process_group(backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    logs = script_logging(log_path) if log_path else contextlib.nullcontext()
    try:
        with logs:
            if dist.get_rank() != 0:
                logging.getLogger().setLevel(logging.WARNING)
            out = fn(*args)
        if result_path and dist.get_rank() == 0:
            Path(result_path).write_bytes(pickle.dumps(out))
        return out
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def _main_script_hidden(fn: Callable[..., Any]) -> Iterator[None]:
    """Keep spawned processes from re-running the ``__main__`` script (a Snakemake script has no main guard).

    multiprocessing's spawn re-executes the parent's main file in every child unless the main
    module was started with ``-m``; the children only need the function they run, unless that
    function lives in the main script itself (a guarded command-line script): then it stays.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if (main is None or path is None or getattr(getattr(main, "__spec__", None), "name", None)
            or getattr(fn, "__module__", None) == "__main__"):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _launch_here(fn: Callable[..., Any], args: tuple[Any, ...], nodes: int, procs: int, backend: str,
                 endpoint: str, run_id: str, log_path: str | None, result_path: str | None) -> Any:
    """``torchrun`` semantics from Python: ``procs`` local workers joining a c10d rendezvous."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=nodes, max_nodes=nodes, nproc_per_node=procs, rdzv_backend="c10d",
                          rdzv_endpoint=endpoint, run_id=run_id, max_restarts=0, start_method="spawn",
                          monitor_interval=0.5)
    with _main_script_hidden(fn):
        results = elastic_launch(config, _worker)(fn, args, backend, log_path, result_path)
    return results.get(0) if results else None


def launch(fn: Callable[..., Any], args: tuple[Any, ...], topology: Topology, device: str,
           log_path: str | None = None) -> Any:
    """Run ``fn(*args)`` in ``topology.world_size`` processes; return rank 0's result.

    ``fn`` must be a module-level function (processes are spawned). It runs with the process
    group initialised (``backend`` NCCL on CUDA, gloo on CPU) and uses :func:`shard`,
    :func:`wrap`, :func:`reduce_sums`, :func:`is_main` for its data, model and outputs.

    Parameters
    ----------
    fn, args
        The training function and its arguments (picklable).
    topology
        Nodes and processes per node.
    device
        ``cpu`` or ``cuda`` (chosen once by :func:`reprolab.core.choose_device`).
    log_path
        The job's log file: each process appends to it (ranks > 0 log warnings only).

    Raises
    ------
    ConfigError
        When more than one node is asked for outside a SLURM allocation.
    """
    if topology.world_size == 1:
        return fn(*args)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    run_id = f"reprolab-{uuid.uuid4().hex[:12]}"
    if topology.nodes == 1:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.pkl"
            out = _launch_here(fn, args, 1, topology.procs_per_node, backend, f"127.0.0.1:{_free_port()}", run_id,
                               log_path, str(result))
            return pickle.loads(result.read_bytes()) if result.exists() else out
    return _launch_with_srun(fn, args, topology, backend, log_path)


def launch_training(fn: Callable[..., Any], args: tuple[Any, ...], resources: Mapping[str, Any] | None,
                    device_pref: str, threads: int, log_path: str | None = None) -> Any:
    """The entry of a training rule: choose the device once, then run ``fn`` in the configured processes.

    ``fn(*args, device=..., sync_batchnorm=...)`` runs in every process with its own device
    (``cuda:<local rank>`` on GPUs) and its share of the job's ``threads``; it writes outputs
    only where :func:`is_main`. With one process it simply runs here.

    Parameters
    ----------
    fn, args
        Module-level training function and its positional arguments.
    resources
        The paper's ``resources`` config section (``gpus``, ``nodes``, ``processes_per_node``,
        ``sync_batchnorm``); ``None`` for one process.
    device_pref
        Config key ``device`` (auto, cpu, cuda).
    threads
        Threads Snakemake granted the job.
    log_path
        The job's log file (every process appends to it).
    """
    from reprolab.core.runtime import choose_device, set_threads

    set_threads(threads)
    device = choose_device(device_pref)
    topology = Topology.from_resources(resources or {})
    per_process = max(1, threads // topology.procs_per_node)
    return launch(_in_process, (fn, args, device, per_process, topology.sync_batchnorm), topology, device, log_path)


def _in_process(fn: Callable[..., Any], args: tuple[Any, ...], device: str, threads: int, sync_batchnorm: bool) -> Any:
    from reprolab.core.runtime import set_threads

    set_threads(threads)
    return fn(*args, device=local_device(device), sync_batchnorm=sync_batchnorm)


def _launch_with_srun(fn: Callable[..., Any], args: tuple[Any, ...], topology: Topology, backend: str,
                      log_path: str | None) -> Any:
    """One launcher per node through ``srun``; they meet at the step's first node."""
    if not os.environ.get("SLURM_JOB_ID"):
        raise ConfigError(f"resources.nodes = {topology.nodes} needs a SLURM allocation: run with "
                          "--profile profiles/slurm, or set resources.nodes: 1")
    with tempfile.TemporaryDirectory(dir=os.environ.get("REPROLAB_SHARED_TMP") or Path.cwd()) as tmp:
        payload = Path(tmp) / "payload.pkl"
        # The parent's import path travels with the job, as multiprocessing's spawn does.
        payload.write_bytes(pickle.dumps((list(sys.path), pickle.dumps((fn, args, topology, backend, log_path)))))
        # REPROLAB_SRUN_NODES spreads the launchers over fewer machines (the tests put two on a
        # one-node cluster); by default each node gets one.
        cmd = ["srun", f"--ntasks={topology.nodes}", f"--nodes={os.environ.get('REPROLAB_SRUN_NODES', topology.nodes)}",
               "--kill-on-bad-exit=1", sys.executable, "-m", "reprolab.core.distributed", str(payload)]
        log.info("starting %d launchers: %s", topology.nodes, " ".join(cmd))
        subprocess.run(cmd, check=True)
        result = payload.with_suffix(".result")
        return pickle.loads(result.read_bytes()) if result.exists() else None


def _first_host(nodelist: str) -> str:
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True, text=True)
    return out.stdout.split()[0]


def _srun_task(payload: Path) -> None:
    """Entry point of one ``srun`` task: a launcher for this node's processes."""
    path, job = pickle.loads(payload.read_bytes())
    sys.path[:0] = [p for p in path if p not in sys.path]
    fn, args, topology, backend, log_path = pickle.loads(job)
    nodelist = os.environ.get("SLURM_STEP_NODELIST") or os.environ["SLURM_JOB_NODELIST"]
    port = 20000 + int(os.environ["SLURM_JOB_ID"]) % 20000 + int(os.environ.get("SLURM_STEP_ID", "0")) % 100
    _launch_here(fn, args, topology.nodes, topology.procs_per_node, backend, f"{_first_host(nodelist)}:{port}",
                 f"slurm-{os.environ['SLURM_JOB_ID']}-{os.environ.get('SLURM_STEP_ID', '0')}", log_path,
                 str(payload.with_suffix(".result")))


if __name__ == "__main__":
    _srun_task(Path(sys.argv[1]))
