"""Logging for workflow scripts: everything a job prints goes to its rule's ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def script_logging(log_path: str | Path) -> Iterator[logging.Logger]:
    """Send ``logging``, ``stdout``, ``stderr`` and warnings to ``log_path`` for the block.

    An exception is logged with its traceback and re-raised, so Snakemake marks the job
    failed and the log tells why.
    """
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a", buffering=1)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = handle
    root = logging.getLogger()
    handler = logging.StreamHandler(handle)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated.*")
    logger = logging.getLogger("reprolab")
    try:
        yield logger
    except BaseException:
        logger.exception("job failed")
        raise
    finally:
        root.removeHandler(handler)
        sys.stdout, sys.stderr = old_out, old_err
        handle.close()
