"""Settings and file layout of the ``calib`` DAG, computed from its resolved config (used by calib.smk).

Li, Deng, Dong, Gu, arXiv:2205.10121. Keeping the path and settings functions in the package
lets the rule file hold only rules and lets tests check the layout without Snakemake; this
module needs neither torch nor numba.
"""

from __future__ import annotations

import copy
from typing import Any

from reprolab.core.errors import ConfigError

#: Calibration steps a pipeline may chain (config ``papers.calib.pipelines``).
THRESHOLD_STEPS = ("threshold_max", "threshold_mse")
CALIBRATION_STEPS = ("bias", "potential", "weight")
#: Event datasets whose recordings become one count image each (``data_frames``).
EVENT_DATASETS = ("nmnist_demo", "nmnist")
#: Files of torchvision's ImageNet weights per architecture (registry entry ``torchvision_imagenet``).
TORCHVISION_WEIGHTS = {"resnet34": "resnet34-b627a593.pth", "vgg_imagenet": "vgg16_bn-6c64b313.pth"}


def check_settings(settings: dict[str, Any], base: bool = True) -> None:
    """Pipelines start with one threshold step, then calibration steps; ``focus_T`` is evaluated
    and inside the claims' T range; the pipeline of the no-retraining claim trains no weight.

    With ``base`` (the scale's own settings) the pipelines that ``claims.few_batches`` and
    ``pool_variant`` name must exist; an experiment replacing the pipelines may drop them
    (its report then skips that claim or variant).
    """
    if settings["focus_T"] not in settings["eval_T"]:
        raise ConfigError(f"papers.calib.focus_T = {settings['focus_T']} is not in papers.calib.eval_T "
                          f"{settings['eval_T']}; add it there or change focus_T")
    claims = settings["claims"]
    lo, hi = claims["T_range"]
    if not lo <= settings["focus_T"] <= hi:
        raise ConfigError(f"papers.calib.focus_T = {settings['focus_T']} is outside papers.calib.claims.T_range "
                          f"[{lo}, {hi}]; the claims are judged at focus_T, so widen the range or move focus_T")
    few = claims["few_batches"]["pipeline"]
    if base and few not in settings["pipelines"]:
        raise ConfigError(f"papers.calib.claims.few_batches.pipeline = {few!r} is not a pipeline "
                          f"({', '.join(settings['pipelines'])}); name one of them")
    if "weight" in settings["pipelines"].get(few, []):
        raise ConfigError(f"papers.calib.claims.few_batches.pipeline = {few!r} trains weights (weight calibration); "
                          "the no-retraining claim needs a pipeline without the weight step (e.g. light)")
    missing = [n for n in settings.get("pool_variant") or [] if n not in settings["pipelines"]]
    if base and missing:
        raise ConfigError(f"papers.calib.pool_variant: {missing} are not pipelines ({', '.join(settings['pipelines'])}); "
                          "remove them or add the pipelines")
    for name, steps in settings["pipelines"].items():
        if not steps or steps[0] not in THRESHOLD_STEPS:
            raise ConfigError(f"papers.calib.pipelines.{name} must start with threshold_max or threshold_mse")
        bad = [s for s in steps[1:] if s not in CALIBRATION_STEPS]
        if bad:
            raise ConfigError(f"papers.calib.pipelines.{name}: {bad} after the threshold step; "
                              f"use {', '.join(CALIBRATION_STEPS)}")


#: Keys an experiment may set to override ``papers.calib`` for itself (e.g. the ImageNet
#: hyperparameters of the official ``main_cal_imagenet.py``). ``calibration`` is merged key
#: by key; the others replace the scale's value (``pipelines`` as a whole).
EXPERIMENT_OVERRIDES = ("seeds", "eval_T", "calibration", "pipelines", "eval_batch_size", "probe_size")


def experiment_settings(settings: dict[str, Any], exp: dict[str, Any], name: str = "?") -> dict[str, Any]:
    """``papers.calib`` at the configured scale with the overrides of one experiment, checked.

    Raises
    ------
    ConfigError
        Naming ``papers.calib.experiments.<name>`` when the merged settings are inconsistent
        (e.g. ``focus_T`` not in the experiment's ``eval_T``).
    """
    from reprolab.core.config import deep_update

    out = {k: v for k, v in settings.items() if k != "experiments"}
    for key in EXPERIMENT_OVERRIDES:
        if key in exp:
            out[key] = deep_update(out[key], exp[key]) if key == "calibration" else copy.deepcopy(exp[key])
    try:
        check_settings(out, base=False)
    except ConfigError as err:
        raise ConfigError(f"papers.calib.experiments.{name} (with its overrides {sorted(set(exp) & set(EXPERIMENT_OVERRIDES))}): "
                          f"{err}") from None
    return out


class CalibPlan:
    """Per-experiment settings and every path of the ``calib`` DAG.

    Parameters
    ----------
    settings
        ``pcfg("calib")``: the paper's section with the scale merged in.
    data_dir
        ``config["data_dir"]``.

    Raises
    ------
    ConfigError
        At parse time, naming the key, if an experiment's merged settings are inconsistent.
    """

    def __init__(self, settings: dict[str, Any], data_dir: str) -> None:
        self.settings, self.data_dir = settings, data_dir
        self.experiments: dict[str, dict[str, Any]] = settings["experiments"]
        base = {k: v for k, v in settings.items() if k not in ("experiments", "resources", "enabled")}
        check_settings(base)
        self.by_experiment = {e: experiment_settings(base, x, e) for e, x in self.experiments.items()}

    def data_file(self, exp_name: str, split: str) -> str:
        """The cache a split is read from: static images, one-frame event counts, or the ImageNet manifest."""
        dataset = self.experiments[exp_name]["dataset"]
        if dataset == "imagenet":
            return f"{self.data_dir}/imagenet/prepared.json"
        if dataset in EVENT_DATASETS:
            return f"{self.data_dir}/frames/{dataset}/{split}_T1_count.npz"
        return f"{self.data_dir}/static/{dataset}/{split}.npz"

    def data_files(self) -> list[str]:
        """Every split cache the DAG reads (sorted, no duplicates)."""
        return sorted({self.data_file(e, s) for e in self.experiments for s in ("train", "test")})

    def weights(self, exp_name: str) -> dict[str, str]:
        """``{"weights": path}`` of torchvision's ImageNet weights when the experiment starts from them, else ``{}``."""
        model = self.experiments[exp_name]["model"]
        if model.get("pretrained", "none") != "torchvision":
            return {}
        if model["arch"] not in TORCHVISION_WEIGHTS:
            raise ConfigError(f"papers.calib.experiments.{exp_name}.model.pretrained: torchvision weights exist for "
                              f"arch {' / '.join(TORCHVISION_WEIGHTS)}, not {model['arch']}; set pretrained: none")
        return {"weights": f"{self.data_dir}/downloads/torchvision_imagenet/{TORCHVISION_WEIGHTS[model['arch']]}"}

    def seeds(self, exp_name: str) -> list[int]:
        return [int(s) for s in self.by_experiment[exp_name]["seeds"]]

    def evals(self) -> list[str]:
        """``eval.json`` of every experiment and calibration seed."""
        return [f"results/calib/{e}/s{s}/eval.json" for e in self.experiments for s in self.seeds(e)]

    def histories(self) -> list[str]:
        return [f"results/calib/{e}/ann_history.json" for e in self.experiments]

    def eventsim_experiments(self) -> list[str]:
        """Experiments run event-driven: all sequential VGG ones when ``eventsim.enabled``."""
        cfg = self.settings["eventsim"]
        if not cfg["enabled"]:
            return []
        out = [e for e, x in self.experiments.items() if x["model"]["arch"] == "vgg"]
        for e in out:
            missing = [p for p in cfg["pipelines"] if p not in self.by_experiment[e]["pipelines"]]
            if missing:
                raise ConfigError(f"papers.calib.eventsim.pipelines: {missing} are not pipelines of experiment {e} "
                                  f"({', '.join(self.by_experiment[e]['pipelines'])}); remove them or add the pipelines")
        return out

    def eventsims(self) -> list[str]:
        """``eventsim.json`` of every event-driven experiment and calibration seed."""
        return [f"results/calib/{e}/s{s}/eventsim.json" for e in self.eventsim_experiments() for s in self.seeds(e)]
