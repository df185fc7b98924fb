"""The model-family registry and the run configuration built on it.

A family is registered by one decorator on its objective class, in its own module under ``training/``::

    @register_family("vae", model_config=VAEConfig, train_config=VAETrainConfig, build=vae.build,
                     discriminators=vae.discriminators)
    class VAEObjective(Objective): ...

naming its model config dataclass (``models/<family>.py``), its network builder, its training config dataclass and
its objective; optionally the discriminators of its adversarial term and its ``Sampler``. The loop, the CLI, export
and the metrics reach a family only through this entry, never by its name.

Each family owns its options: a run's ``model`` section is the family's model config, its ``train`` section the
family's training config, and an option the family does not read is rejected in one line that names the families
that do. ``config.json`` carries a ``format_version``; older files are converted on reading (``upgrade``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vidsynth.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from vidsynth.errors import UserError
from vidsynth.models.sampler import NoiseSampler, Sampler
from vidsynth.models.text import with_text_encoder

FORMAT_VERSION = 2  # of config.json in run and export folders; 1: before per-family options (no field)


@dataclass(frozen=True)
class Family:
    name: str
    model_config: type[ModelConfig]
    train_config: type[TrainConfig]
    build: Callable[[ModelConfig], nn.Module]       # the trained, sampled and exported network
    objective: type
    discriminators: Callable[[ModelConfig], dict[str, nn.Module]] | None = None  # of the adversarial term
    sampler: type[Sampler] = NoiseSampler
    summary: str = ""
    hints: dict[str, str] = dataclasses.field(default_factory=dict)  # another family's option -> what to set instead

    def config_class(self, section: str) -> type:
        return self.model_config if section == "model" else self.train_config


FAMILIES: dict[str, Family] = {}


def register_family(name: str, *, model_config: type[ModelConfig], train_config: type[TrainConfig], build,
                    discriminators=None, sampler: type[Sampler] = NoiseSampler, summary: str = "",
                    hints: dict[str, str] | None = None):
    """Class decorator on an objective: make the family available under ``name`` (its CLI name). ``hints``: for
    options of other families that a user may give this one, what to set instead."""
    def deco(objective):
        FAMILIES[name] = Family(name, model_config, train_config, build, objective, discriminators, sampler, summary,
                                hints or {})
        return objective
    return deco


def get_family(name: str) -> Family:
    if not isinstance(name, str) or name not in FAMILIES:
        raise UserError(f"unknown model {name!r}: use one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def readers(section: str, key: str) -> list[str]:
    """The families whose ``section`` ("model" or "train") config has option ``key``."""
    return [name for name, f in sorted(FAMILIES.items()) if key in field_names(f.config_class(section))]


def option_error(family: str, section: str, key: str, value) -> UserError:
    """The one-line error for ``key=value`` given to ``family``, which does not read it."""
    owners = readers(section, key)
    if not owners:
        valid = ", ".join(sorted(field_names(get_family(family).config_class(section))))
        return UserError(f"unknown {section} option {key!r} for {family}; valid: {valid}")
    hint = get_family(family).hints.get(key, f"remove it or use --model {' or '.join(owners)}")
    value = str(value).lower() if isinstance(value, bool) else value  # as typed on the command line
    return UserError(f"{key}={value} is a {' / '.join(owners)} option that {family} does not read: {hint}")


def make_config(family: Family, section: str, values: dict):
    """``family``'s ``section`` config from ``values``, rejecting options it does not read."""
    cls = family.config_class(section)
    names = field_names(cls)
    for key, value in values.items():
        if key not in names:
            raise option_error(family.name, section, key, value)
    return cls(**values)


def coerce(family: Family, section: str, cfg):
    """``cfg`` (a dataclass, e.g. a plain ``ModelConfig``) as ``family``'s own ``section`` config. Options it does
    not read are dropped where they hold their default, rejected otherwise."""
    if type(cfg) is family.config_class(section):
        return cfg
    names = field_names(family.config_class(section))
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
              if f.name in names or getattr(cfg, f.name) != f.default}
    return make_config(family, section, values)


def model_config(name: str, **options) -> ModelConfig:
    """``name``'s model config with ``options`` (one-line UserError for an option it does not read)."""
    return make_config(get_family(name), "model", {"name": name, **options})


def train_config(name: str, **options) -> TrainConfig:
    """``name``'s training config with ``options``."""
    return make_config(get_family(name), "train", options)


def build_network(cfg: ModelConfig) -> nn.Module:
    """The network of family ``cfg.name`` (what is sampled and exported), after checking ``cfg``."""
    family = get_family(cfg.name)
    cfg = coerce(family, "model", cfg).check()
    return with_text_encoder(family.build(cfg), cfg)


def upgrade(config: dict, source: str) -> dict:
    """A config.json dict of any known ``format_version`` in the current format. Version 1 (no field) held every
    family's options in one model and one train section: the options the family does not read (which it ignored)
    are dropped, and a VAE's or completion model's ``lr_g`` becomes its ``lr``."""
    if not isinstance(config, dict) or not isinstance(config.get("model", {}), dict):
        raise UserError(f"{source} is not a vidsynth config (expected a JSON object with a model section)")
    version = config.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{source} has format_version {version!r}; this vidsynth reads 1 to {FORMAT_VERSION}: "
                        "upgrade vidsynth (pip install -U vidsynth)")
    config = {**config, "format_version": FORMAT_VERSION}
    if version == 1:
        family = get_family(config.get("model", {}).get("name", ModelConfig.name))
        train = dict(config.get("train", {}))
        if "lr_g" in train and "lr" in field_names(family.train_config):
            train["lr"] = train.pop("lr_g")
        config["train"] = train
        for section in ("model", "train"):
            if section in config:
                names = field_names(family.config_class(section))
                config[section] = {k: v for k, v in config[section].items() if k in names}
    return config


@dataclass
class RunConfig:
    """A run: the data, the family's model and training configs, and the class names (filled from the dataset)."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    class_names: list[str] = dataclasses.field(default_factory=list)

    @property
    def family(self) -> Family:
        return get_family(self.model.name)

    def resolved(self) -> "RunConfig":
        """This config with the model and train sections as the family's own dataclasses, all values checked."""
        family = self.family
        model, train = coerce(family, "model", self.model), coerce(family, "train", self.train)
        # the sizes the data decides are filled in when training starts; checked here with the data config's
        dataclasses.replace(model, resolution=self.data.resolution, num_frames=self.data.num_frames).check()
        if getattr(train, "match", 0) > 0 and not model.text:
            raise UserError(f"match={train.match:g} scores clips against wrong captions: it needs a text-conditioned "
                            "model (text=learned or text=minilm); set match=0")
        return RunConfig(self.data.check(), model, train.check(), list(self.class_names))

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "data": to_dict(self.data), "model": to_dict(self.model),
                "train": to_dict(self.train), "class_names": self.class_names}

    @classmethod
    def from_dict(cls, d: dict, source: str = "the config") -> "RunConfig":
        d = upgrade(d, source)
        sections = {k: d.get(k, {}) for k in ("data", "model", "train")}
        for key, value in sections.items():
            if not isinstance(value, dict):
                raise UserError(f"{source}: its {key} section is not a JSON object; write the file again")
        family = get_family(sections["model"].get("name", ModelConfig.name))
        model = make_config(family, "model", sections["model"]).check()
        names = d.get("class_names", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or \
                len(names) not in (0, model.num_classes):
            raise UserError(f"{source}: class_names must be a list of {model.num_classes} names; write the file again")
        # every value bounded before anything is built from it (check() refuses sizes no machine can hold)
        return cls(from_dict(DataConfig, sections["data"]).check(), model,
                   make_config(family, "train", sections["train"]).check(), list(names))

    @classmethod
    def load(cls, run_dir: Path) -> "RunConfig":
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise UserError(f"{run_dir} has no config.json: pass a run folder (runs/00003-...) or an export folder")
        return cls.from_dict(read_json(path), str(path))


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e}): restore it from a copy or write it again") from None
