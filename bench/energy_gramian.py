"""Time the exact Gramians of the ``energy`` paper against nctpy's quadrature, for 94 regions.

Static minimum energy: closed-form spectral Gramian (ours), Van Loan block exponential (ours) and
nctpy's ``minimum_energy_fast`` (Simpson quadrature, 1000 steps). Dynamic energy over M windows:
spectral recursion (ours) vs the same recursion with Simpson-quadrature Gramians (nctpy has no
piecewise-constant energy). Data: the committed HCP demo subject 101309 (AAL2, 94 regions), DMN
control nodes as in config/papers/energy.yaml.

    .venv/bin/python bench/energy_gramian.py --repeats 5 --windows 10 --horizon 10 --out bench.json

The workflow runs the same function as rule ``energy_bench`` (results/energy/bench_gramian.json).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import yaml

from reprolab.core.config import paper_config
from reprolab.data.hcp import build_demo_timeseries
from reprolab.netsci.energy import benchmark_gramians

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "hcp-rest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, each on a new segment")
    parser.add_argument("--windows", type=int, default=10, help="windows M of the dynamic energy")
    parser.add_argument("--window", type=int, default=30, help="frames per window")
    parser.add_argument("--horizon", type=float, default=10.0, help="static horizon T")
    parser.add_argument("--subject", default="101309", help="demo subject id")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    with open(REPO / "config" / "papers" / "energy.yaml") as handle:
        settings = paper_config({"scale": "demo", "papers": yaml.safe_load(handle)["papers"]}, "energy")
    settings["bench"] = {"repeats": args.repeats, "windows": args.windows, "window": args.window,
                         "horizon": args.horizon}
    mat = DEMO / "subjects" / args.subject / "functional" / "TC_rsfMRI_REST1_LR.mat"
    with tempfile.TemporaryDirectory() as tmp:
        ts_path = Path(tmp) / "ts.npz"
        out = Path(args.out) if args.out else Path(tmp) / "bench.json"
        build_demo_timeseries({args.subject: mat}, DEMO / "aal2_94_labels.tsv", settings, ts_path)
        benchmark_gramians(ts_path, settings, out)
        result = json.loads(out.read_text())
    print(json.dumps(result, indent=2))
    print(f"speed-up over nctpy quadrature: static {result['speedup_static_vs_nctpy']:.0f}x, "
          f"dynamic ({args.windows} windows) {result['speedup_dynamic_vs_quadrature']:.0f}x")


if __name__ == "__main__":
    main()
