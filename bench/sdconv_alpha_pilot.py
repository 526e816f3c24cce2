"""One-seed pilot of SD-Conv's sparsity weight alpha on the validation split (never the test split).

Trains DY-Conv and SD-Conv at a wide log grid of alpha with the demo experiment of
``config/papers/sdconv.yaml`` on the fitting part of the training set and prints, per alpha,
the validation accuracy and the non-zero parameters relative to DY-Conv. The demo grid
(``scales.demo.alphas.sdconv``) is read off this table: the range where the penalty moves
the sparsity within the demo's short schedule. Usage (from the repository root, after
``snakemake --cores 1 resources/static/digits/train.npz``)::

    PYTHONPATH=src python bench/sdconv_alpha_pilot.py [--seed 1] [--alphas 1e-5,1e-4,...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from reprolab.core.config import deep_update
from reprolab.snn.training import evaluate
from reprolab.vision import run_name
from reprolab.vision.sdconv import fit_and_validation_batches, parameter_counts, train_run
from reprolab.vision.validation import read_split, run_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alphas", default="1e-5,3e-5,1e-4,3e-4,1e-3,3e-3,1e-2")
    parser.add_argument("--train", default="resources/static/digits/train.npz")
    args = parser.parse_args()
    section = yaml.safe_load(Path("config/papers/sdconv.yaml").read_text())["papers"]["sdconv"]
    settings = deep_update({k: v for k, v in section.items() if k != "scales"}, section["scales"]["demo"])
    exp = settings["experiments"]["digits"]
    with tempfile.TemporaryDirectory() as tmp:
        run_split(exp, settings, args.train, f"{tmp}/split.json")
        split = read_split(f"{tmp}/split.json")
        _, validation = fit_and_validation_batches(exp, args.train, split)
        rows = {}
        for run in ["dynamic"] + [run_name("sdconv", float(a)) for a in args.alphas.split(",")]:
            model, _ = train_run(exp, settings, run, args.seed, args.train, split, f"{tmp}/{run}", "cpu",
                                 progress=False)
            rows[run] = (evaluate(model, validation, "cpu")["accuracy"], parameter_counts(model)["nonzero"])
            print(f"{run:>16}: validation accuracy {100 * rows[run][0]:.2f} %, non-zero parameters "
                  f"{rows[run][1]:,} ({100 * rows[run][1] / rows['dynamic'][1]:.1f} % of DY-Conv)", flush=True)


if __name__ == "__main__":
    main()
