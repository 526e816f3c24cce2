"""The file layout of the ``tet`` DAG, computed from its resolved config (used by tet.smk).

Keeping these path functions in the package lets the rule file hold only rules and lets
tests check the layout without Snakemake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reprolab.core.errors import ConfigError
from reprolab.data.pipeline import STATIC_DATASETS


@dataclass(frozen=True)
class TetPlan:
    """Paths and derived settings of every TET job.

    Parameters
    ----------
    settings
        ``pcfg("tet")``: the paper's section with the scale merged in.
    data_dir
        ``config["data_dir"]``.
    """

    settings: dict[str, Any]
    data_dir: str

    @property
    def experiments(self) -> dict[str, dict[str, Any]]:
        return self.settings["experiments"]

    def split_file(self, exp_name: str, split: str, T: int | None = None) -> str:
        """Cache of one split at ``T`` frames (event data) or the image cache (static data)."""
        exp = self.experiments[exp_name]
        if exp["dataset"] in STATIC_DATASETS:
            return f"{self.data_dir}/static/{exp['dataset']}/{split}.npz"
        binning = exp.get("frames", {}).get("binning", "count")
        return f"{self.data_dir}/frames/{exp['dataset']}/{split}_T{T or exp['T']}_{binning}.npz"

    def eval_Ts(self, exp_name: str) -> list[int]:
        """Inference T of the scalability curve, always including the training T."""
        exp = self.experiments[exp_name]
        return sorted(set(exp["eval_T"]) | {exp["T"]})

    def eval_files(self, exp_name: str) -> list[str]:
        """Test caches at every inference T (same order as :meth:`eval_Ts`)."""
        return [self.split_file(exp_name, "test", T) for T in self.eval_Ts(exp_name)]

    def runs(self, filename: str) -> list[str]:
        """One path per experiment, arm and seed."""
        return [f"results/tet/{e}/{a}_s{s}/{filename}" for e in self.experiments for a in self.settings["arms"]
                for s in self.settings["seeds"]]

    def __post_init__(self) -> None:
        for name in self.tit_experiments():
            exp = self.experiments[name]
            tit, epochs = exp["tit"], exp["optim"]["epochs"]
            if tit["small_epochs"] + tit["epochs"] > epochs:
                raise ConfigError(
                    f"papers.tet experiment {name}: tit.small_epochs + tit.epochs = {tit['small_epochs'] + tit['epochs']}"
                    f" exceeds optim.epochs = {epochs}; time inheritance is compared with the from-scratch run at the "
                    "same total epochs, so lower them or raise optim.epochs")
            if "tet" not in self.settings["arms"]:
                raise ConfigError(f"papers.tet experiment {name}: tit needs the tet arm in papers.tet.arms")

    def tit_experiments(self) -> list[str]:
        """Experiments with time inheritance training enabled."""
        return [e for e, exp in self.experiments.items() if exp.get("tit", {}).get("enabled", False)]

    def keeps_predictions(self, exp_name: str, arm: str) -> bool:
        """Whether a training run stores per-epoch test predictions: the TET arm of a TIT experiment
        (compared with the inherited run at an equal epoch or wall-time budget)."""
        return arm == "tet" and exp_name in self.tit_experiments()

    def tit_stage(self, exp_name: str, stage: str) -> dict[str, Any]:
        """Experiment config of a TIT stage: ``small`` (at small_T) or ``inherit`` (at T, fewer epochs)."""
        exp, tit = self.experiments[exp_name], self.experiments[exp_name]["tit"]
        if stage == "small":
            return dict(exp, T=tit["small_T"], optim=dict(exp["optim"], epochs=tit["small_epochs"]))
        return dict(exp, optim=dict(exp["optim"], epochs=tit["epochs"]))

    def tit_init(self, exp_name: str, stage: str, seed: str) -> list[str]:
        """The model an ``inherit`` stage starts from (none for ``small``)."""
        return [f"results/tet/{exp_name}/tit/small_s{seed}/model.pt"] if stage == "inherit" else []

    def tit_runs(self, filename: str) -> list[str]:
        """Both TIT stages of every enabled experiment and seed."""
        return [f"results/tet/{e}/tit/{stage}_s{seed}/{filename}" for e in self.tit_experiments()
                for seed in self.settings["seeds"] for stage in ("small", "inherit")]

    def data_files(self) -> list[str]:
        """Train and test caches at the training T of every experiment (listed in the report)."""
        return sorted({self.split_file(e, s) for e in self.experiments for s in ("train", "test")})
