"""A seeded, resumable epoch loop for training code with its own step logic.

``reprolab.snn.training.fit`` covers classifiers trained with one optimiser. Training that
does not fit that shape (several networks and optimisers updated in a cycle, segmentation,
registration) supplies one function that runs an epoch, and :func:`run_epochs` does the rest
of the contract every training job in reprolab keeps:

- the global random state is reseeded from ``(seed, epoch)`` before every epoch, so a run
  resumed after epoch ``k`` draws the same numbers as an uninterrupted one;
- after every epoch, the state of every registered object (modules, optimisers, schedulers,
  grad scalers: anything with ``state_dict`` / ``load_state_dict``) and the history are
  written atomically to ``<checkpoint_dir>/last.pt``, outside the rule's declared outputs;
- one JSON line per epoch goes to ``<checkpoint_dir>/history.jsonl`` (rewritten from the
  checkpoint on resume, so an epoch that did not finish leaves no line);
- a checkpoint written under another run key (another configuration) is ignored, with a
  warning, instead of being resumed;
- under data-parallel training (:mod:`reprolab.core.distributed`) every process runs the
  epochs and restores the checkpoint, and only rank 0 writes it and the history; objects
  wrapped in ``DistributedDataParallel`` are saved unwrapped, so a run resumes with any
  number of processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from reprolab.core.distributed import barrier, is_main, unwrap
from reprolab.core.io import append_jsonl, atomic_path
from reprolab.core.runtime import seed_everything

log = logging.getLogger("reprolab.loop")

#: ``epoch_fn(epoch) -> metrics``: trains one epoch (0-based) and returns its numbers.
EpochFn = Callable[[int], Mapping[str, Any]]


class Stateful(Protocol):
    """Anything whose state can be saved and restored (torch modules, optimisers, ...)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


def run_key(settings: Any) -> str:
    """Short hash of a run's settings (any JSON-serialisable object); names its checkpoint.

    Parameters
    ----------
    settings
        Everything that changes the run's numbers (config section, seed, arm, ...).

    Returns
    -------
    str
        16 hexadecimal characters; equal settings give equal keys.
    """
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch: distinct for every ``(seed, epoch)``, the same on resume."""
    return (int(seed) * 1_000_003 + int(epoch)) % 2**63


def _save(path: Path, state: dict[str, Any]) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _resume(path: Path, key: str, stateful: Mapping[str, Stateful]) -> tuple[int, list[dict[str, Any]]]:
    """Load ``path`` into ``stateful`` if it belongs to run ``key``; return (next epoch, history)."""
    import torch

    if not path.exists():
        return 0, []
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("key") != key:
        log.warning("ignoring %s: it belongs to another configuration", path)
        return 0, []
    missing = set(stateful) - set(state["objects"])
    if missing:
        log.warning("ignoring %s: it holds no state for %s", path, sorted(missing))
        return 0, []
    for name, obj in stateful.items():
        unwrap(obj).load_state_dict(state["objects"][name])
    log.info("resuming from %s after epoch %d", path, state["epoch"] + 1)
    return state["epoch"] + 1, list(state["history"])


def run_epochs(epoch_fn: EpochFn, stateful: Mapping[str, Stateful], epochs: int, seed: int, key: str,
               checkpoint_dir: str | Path, progress: bool = True, desc: str = "epoch") -> list[dict[str, Any]]:
    """Run ``epoch_fn`` for epochs ``0..epochs-1``, resuming from ``checkpoint_dir`` if possible.

    Parameters
    ----------
    epoch_fn
        Trains one epoch and returns its metrics (numbers or lists, JSON-serialisable). It must
        draw its randomness from the global generators (reseeded here) or from generators it
        builds from :func:`epoch_seed`.
    stateful
        ``{name: object}`` whose states make up the checkpoint (networks, optimisers,
        schedulers, ``torch.amp.GradScaler``); restored in place on resume.
    epochs
        Total number of epochs.
    seed
        The run's seed.
    key
        Identity of the run (:func:`run_key` of its settings); a checkpoint with another key is
        not resumed.
    checkpoint_dir
        Folder outside the rule's outputs; receives ``last.pt`` and ``history.jsonl``.
    progress
        Show a tqdm bar over epochs on stderr.
    desc
        Label of the progress bar.

    Returns
    -------
    list of dict
        One record per epoch: ``epoch`` (1-based), ``seconds`` and what ``epoch_fn`` returned.
    """
    ckpt_dir = Path(checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, history_path = ckpt_dir / "last.pt", ckpt_dir / "history.jsonl"
    start, history = _resume(ckpt_path, key, stateful)
    main = is_main()
    if main:
        with atomic_path(history_path) as tmp:
            tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    bar = tqdm(range(start, epochs), initial=start, total=epochs, desc=desc, disable=not (progress and main),
               file=sys.stderr, mininterval=5.0)
    for epoch in bar:
        seed_everything(epoch_seed(seed, epoch))
        t0 = time.perf_counter()
        metrics = dict(epoch_fn(epoch))
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - t0, **metrics}
        history.append(record)
        if main:
            append_jsonl(history_path, record)
            log.info("%s %d/%d: %s", desc, epoch + 1, epochs,
                     {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
            _save(ckpt_path, {"key": key, "epoch": epoch, "history": history,
                              "objects": {name: unwrap(obj).state_dict() for name, obj in stateful.items()}})
        barrier()
    return history
