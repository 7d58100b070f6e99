"""Training configuration: recipe defaults < config file (TOML / JSON) < command-line options.

The effective configuration is saved with the run (``config.json``) and inside every checkpoint.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from prunex.artifacts.errors import InputError
from prunex.data.types import ImagePipeline, Normalisation
from prunex.runtime.choices import parse_option
from prunex.train.choices import Recipe, Schedule


class ConfigError(InputError):
    """A configuration that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one learning-rate plan.

    ``gate_lr`` 0 keeps the gates fixed; ``freeze_connectivity`` fixes MaskConnect masks at top-K when the phase
    starts. Within a phase the LR is constant, steps by ``gamma`` at the ``milestones`` (fractions of the
    phase), or follows a cosine to 0.
    """

    name: str
    epochs: int
    lr: float
    gate_lr: float = 0.0
    freeze_connectivity: bool = False
    schedule: Schedule = Schedule.CONSTANT  # a word is converted here
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise ConfigError(f"phase {self.name!r}: epochs must be >= 1, got {self.epochs}")
        object.__setattr__(
            self, "schedule", parse_option(Schedule, self.schedule, f"phase {self.name!r}: schedule", ConfigError)
        )
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.lr, self.gate_lr)):
            raise ConfigError(f"phase {self.name!r}: learning rates must be numbers")
        if self.lr < 0 or self.gate_lr < 0:
            raise ConfigError(f"phase {self.name!r}: learning rates must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "maskconnect_cifar"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_root: str | None = None
    image_size: int | None = None
    pipeline: str | None = None  # image folders: "imagenet" (default) or "mini-imagenet" (an ImagePipeline value)
    normalisation: str | None = None  # "channel" or "pixel-mean" (a Normalisation value); None: the dataset's own
    recipe: Recipe = Recipe.AUTO  # a word is converted here
    phases: tuple[Phase, ...] = ()
    epochs: int | None = None  # when set, the recipe's phases are rescaled to this many epochs in total
    batch_size: int = 64
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    budget: float | None = None  # DGConv resource constraint b: o = Σ_ℓ C_in·C_out / b
    learn_groups: str | None = None  # convs that learn their grouping: kinds and name patterns (GroupLearning.parse)
    weights: str | None = None  # a state dict loaded into the new model before its convs learn their grouping
    structure_from: str | None = None  # retrain from scratch the plain grouped network a DGConv run learned
    alpha: float = -0.02  # exponent of the constraint factor (o/ζ)^α, applied while ζ > o
    augment: bool = True
    ten_crop: bool = False  # image folders: test on ten crops of each image, their softmax averaged (Multi-ResNet IV)
    amp: bool = True  # mixed precision (CUDA only): bf16 autocast where supported, else fp16 with loss scaling
    channels_last: bool | None = None  # channels-last tensors (None: on CUDA)
    compile: bool = False  # torch.compile the training step's model
    branch_parallel: int = 1  # ranks that split each multi-residual block's functions (Multi-ResNet; torchrun)
    device: str = "auto"
    workers: int | None = None  # loader processes for on-disk datasets (None: one per core, at most 8)
    seed: int = 0
    out: str | None = None

    def __post_init__(self) -> None:
        checks = [
            ("batch_size", int, lambda v: v >= 1, ">= 1"),
            ("momentum", (int, float), lambda v: 0 <= v < 1, "in [0, 1)"),
            ("weight_decay", (int, float), lambda v: v >= 0, ">= 0"),
            ("alpha", (int, float), lambda v: v == v and abs(v) != float("inf"), "a finite number"),
            ("seed", int, lambda v: 0 <= v < 2**32, "an integer from 0 to 4294967295"),
            ("branch_parallel", int, lambda v: v >= 1, ">= 1"),
        ]
        optional = [
            ("epochs", int, lambda v: v >= 1, ">= 1"),
            ("workers", int, lambda v: v >= 0, ">= 0"),
            ("budget", (int, float), lambda v: v >= 1, ">= 1 (o = Σ C_in·C_out / b)"),
            ("image_size", int, lambda v: v >= 1, ">= 1"),
        ]
        for name, kind, ok, rule in checks + optional:
            value = getattr(self, name)
            if value is None and (name, kind, ok, rule) in optional:
                continue
            if isinstance(value, bool) or not isinstance(value, kind) or not ok(value):
                raise ConfigError(f"{name} must be {rule}, got {value!r}")
        if not isinstance(self.model_kwargs, dict):
            raise ConfigError(f"model_kwargs must be a table of keyword arguments, got {self.model_kwargs!r}")
        for name, choices in (("pipeline", ImagePipeline), ("normalisation", Normalisation)):
            value, allowed = getattr(self, name), [c.value for c in choices]
            if value is not None and value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        object.__setattr__(self, "recipe", parse_option(Recipe, self.recipe, "--recipe", ConfigError))
        if self.pipeline is not None and self.dataset != "imagefolder":
            raise ConfigError(f"--pipeline chooses an image folder's pipeline; {self.dataset} has its own")

    @property
    def total_epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (a checkpoint is read with ``weights_only``): each choice as its word."""
        d = {**asdict(self), "recipe": self.recipe.value}
        d["phases"] = [{**asdict(p), "schedule": p.schedule.value} for p in self.phases]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a training configuration is a table of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        data = dict(data)
        if "phases" in data:
            if not isinstance(data["phases"], (list, tuple)):
                raise ConfigError(f"phases must be a list of phase tables, got {data['phases']!r}")
            data["phases"] = tuple(_phase(p) for p in data["phases"])
        for key in ("model", "dataset", "recipe", "device"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{key} must be a string, got {data[key]!r}")
        return cls(**data)


def _phase(p: dict[str, Any] | Phase) -> Phase:
    if isinstance(p, Phase):
        return p
    settings = {f.name: f for f in fields(Phase)}
    try:
        p = dict(p)
    except (TypeError, ValueError):
        raise ConfigError(f"a phase must be a table of settings, got {p!r}") from None
    label = f"phase {p.get('name', '?')!r}"
    unknown = sorted(set(p) - set(settings))
    if unknown:
        raise ConfigError(f"{label}: unknown setting {', '.join(unknown)} (a phase takes {', '.join(settings)})")
    missing = [n for n, f in settings.items() if n not in p and f.default is MISSING]
    if missing:
        raise ConfigError(f"{label}: needs {', '.join(missing)}")
    try:
        if "milestones" in p:
            p["milestones"] = tuple(p["milestones"])
        return Phase(**p)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{label}: {err}") from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Keys of :class:`TrainConfig` from a ``.toml`` or ``.json`` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"config file must end in .toml or .json, got {path.name}")
    try:
        text = path.read_bytes().decode("utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ConfigError(f"cannot parse {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a table of settings, not {type(data).__name__}")
    return data


def rescale_phases(phases: tuple[Phase, ...], total: int) -> tuple[Phase, ...]:
    """The same phases, their lengths scaled to ``total`` epochs (each at least one)."""
    if total < len(phases):
        raise ConfigError(f"--epochs {total} is fewer than the recipe's {len(phases)} phases")
    old = sum(p.epochs for p in phases)
    scaled = [max(1, round(p.epochs * total / old)) for p in phases]
    scaled[0] += total - sum(scaled)  # rounding remainder goes to the first phase
    if scaled[0] < 1:
        raise ConfigError(f"cannot split {total} epochs over the recipe's phases {[p.epochs for p in phases]}")
    return tuple(replace(p, epochs=e) for p, e in zip(phases, scaled, strict=True))
