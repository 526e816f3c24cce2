"""Convolutional vision models: static, dynamic and sparse dynamic convolution (sdconv).

- :mod:`reprolab.vision.sdconv`: the layers (learnable-threshold mask, masked, dynamic and
  SD-Conv convolutions), sparse export and the ``sdconv`` DAG's entry points.
- :mod:`reprolab.vision.backbones`: a small CNN (demo), ResNet-18 and MobileNetV2 with any of
  the four convolution kinds.
- :mod:`reprolab.vision.flops`: multiply-add counts (library count, sparse adjustment).
- :mod:`reprolab.vision.sdconv_report`: figures, claims and report of the ``sdconv`` DAG.
- :mod:`reprolab.vision.validation`: the validation split carved from the training set and
  the choice of SD-Conv's alpha on it (before any test evaluation).

This module itself imports no torch: it holds the run names, the cross-key settings checks
and :class:`SdconvPlan` (the DAG's file layout), which the rule file uses at parse time.
"""

from __future__ import annotations

from typing import Any

#: Convolution kinds, also the arms of the sdconv DAG.
CONV_KINDS: tuple[str, ...] = ("static", "masked", "dynamic", "sdconv")
#: Arms whose kernels carry learnable-threshold masks (one run per alpha).
MASKED_ARMS: tuple[str, ...] = ("masked", "sdconv")


def run_name(arm: str, alpha: float | None = None) -> str:
    """Folder name of a run: the arm, plus ``_a<alpha>`` for masked arms (e.g. ``sdconv_a0.0001``)."""
    return arm if alpha is None else f"{arm}_a{alpha:g}"


def parse_run(run: str) -> tuple[str, float | None]:
    """Inverse of :func:`run_name`: ``(arm, alpha or None)``."""
    from reprolab.core.errors import ConfigError

    arm, _, alpha = run.partition("_a")
    if arm not in CONV_KINDS:
        raise ConfigError(f"run {run!r}: unknown arm {arm!r} (papers.sdconv.arms: {', '.join(CONV_KINDS)})")
    return arm, (float(alpha) if alpha else None)


def run_names(settings: dict[str, Any]) -> list[str]:
    """Every run of an sdconv configuration: static and dynamic once, masked arms once per alpha."""
    runs = []
    for arm in settings["arms"]:
        if arm in MASKED_ARMS:
            runs += [run_name(arm, a) for a in settings["alphas"][arm]]
        else:
            runs.append(run_name(arm))
    return runs


def check_settings(settings: dict[str, Any]) -> None:
    """Cross-key checks of ``papers.sdconv`` that a JSON schema cannot express (at parse time).

    Raises
    ------
    ConfigError
        Naming the key and the fix.
    """
    from reprolab.core.errors import ConfigError

    for arm in settings["arms"]:
        if arm in MASKED_ARMS and not settings["alphas"].get(arm):
            raise ConfigError(f"papers.sdconv.alphas.{arm}: arm {arm} is enabled but has no alpha; "
                              f"add a list such as [0.0001]")
    chosen = settings["chosen_alpha"]
    if chosen != "validation" and "sdconv" in settings["arms"] and chosen not in settings["alphas"]["sdconv"]:
        raise ConfigError(f"papers.sdconv.chosen_alpha: {chosen} is not in papers.sdconv.alphas.sdconv "
                          f"{settings['alphas']['sdconv']}; add it, choose one of them, or set 'validation'")
    for name, exp in settings["experiments"].items():
        model = exp["model"]
        if model["arch"] == "small_cnn":
            if "channels" not in model or "pool_after" not in model:
                raise ConfigError(f"papers.sdconv.experiments.{name}.model: small_cnn needs channels and pool_after")
            if len(model["pool_after"]) != len(model["channels"]) - 1:
                raise ConfigError(f"papers.sdconv.experiments.{name}.model.pool_after: needs one flag per block "
                                  f"({len(model['channels']) - 1}), has {len(model['pool_after'])}")
        if exp["dataset"] == "imagenet" and model.get("stem", "cifar") != "imagenet" and model["arch"] != "small_cnn":
            raise ConfigError(f"papers.sdconv.experiments.{name}.model.stem: use imagenet for 224x224 ImageNet input")
    if settings["init_from"] == "dynamic" and not {"dynamic", "sdconv"} <= set(settings["arms"]):
        raise ConfigError("papers.sdconv.init_from is dynamic: arms must include both dynamic and sdconv")


class SdconvPlan:
    """The file layout of the ``sdconv`` DAG, computed from its resolved config (used by sdconv.smk).

    Keeping the path functions in the package lets the rule file hold only rules and lets
    tests check the layout without Snakemake.

    Parameters
    ----------
    settings
        ``pcfg("sdconv")``: the paper's section with the scale merged in (checked by
        :func:`check_settings`).
    data_dir
        ``config["data_dir"]``.
    """

    def __init__(self, settings: dict[str, Any], data_dir: str) -> None:
        check_settings(settings)
        self.settings, self.data_dir = settings, data_dir
        self.experiments: dict[str, dict[str, Any]] = settings["experiments"]
        self.runs = run_names(settings)

    def split_file(self, exp_name: str, split: str) -> str:
        """The cache a split is read from: static images, one-frame event counts, or the ImageNet manifest."""
        exp = self.experiments[exp_name]
        if exp["dataset"] == "imagenet":
            return f"{self.data_dir}/imagenet/prepared.json"
        if exp["dataset"] == "nmnist_demo":
            binning = exp.get("frames", {}).get("binning", "count")
            return f"{self.data_dir}/frames/{exp['dataset']}/{split}_T1_{binning}.npz"
        return f"{self.data_dir}/static/{exp['dataset']}/{split}.npz"

    def data_files(self) -> list[str]:
        """Every split cache the DAG reads (sorted, no duplicates)."""
        return sorted({self.split_file(e, s) for e in self.experiments for s in ("train", "test")})

    def paths(self, filename: str, exp_name: str | None = None, runs: list[str] | None = None) -> list[str]:
        """One path per experiment (or only ``exp_name``), run (or only ``runs``) and seed."""
        exps = [exp_name] if exp_name is not None else list(self.experiments)
        return [f"results/sdconv/{e}/{r}_s{s}/{filename}" for e in exps for r in (runs or self.runs)
                for s in self.settings["seeds"]]

    @staticmethod
    def split_path(exp_name: str) -> str:
        """The validation split carved from the experiment's training file (rule ``sdconv_split``)."""
        return f"results/sdconv/{exp_name}/validation_split.json"

    @staticmethod
    def selection_path(exp_name: str) -> str:
        """The alpha chosen on the validation split (rule ``sdconv_select``)."""
        return f"results/sdconv/{exp_name}/alpha_selection.json"

    def selections(self) -> list[str]:
        """Every experiment's alpha choice (none without an SD-Conv arm)."""
        return [self.selection_path(e) for e in self.experiments] if "sdconv" in self.settings["arms"] else []

    def selection_input(self, exp_name: str) -> dict[str, str]:
        """``{"selection": path}``: test evaluation waits for the alpha choice (``{}`` without SD-Conv)."""
        return {"selection": self.selection_path(exp_name)} if "sdconv" in self.settings["arms"] else {}

    def selection_histories(self, exp_name: str) -> list[str]:
        """``history.json`` of the runs the alpha choice reads: DY-Conv (if an arm) and every SD-Conv alpha."""
        runs = [r for r in self.runs if r == "dynamic" or r.startswith("sdconv")]
        return self.paths("history.json", exp_name, runs) if runs else []

    def init_model(self, exp_name: str, run: str, seed: str | int) -> dict[str, str]:
        """``{"init": path}`` of the DY-Conv model an SD-Conv run starts from (``init_from: dynamic``), else ``{}``."""
        if self.settings["init_from"] == "dynamic" and run.startswith("sdconv"):
            return {"init": f"results/sdconv/{exp_name}/dynamic_s{seed}/model.pt"}
        return {}

    def run_pattern(self) -> str:
        """Regular expression matching exactly the configured run names (a wildcard constraint)."""
        return "|".join(r.replace(".", r"\.") for r in self.runs)
