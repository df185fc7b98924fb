"""The family registry: a family plugs in through one registration, and the loop, sampling, export and loading
work for it without knowing its name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import vidsynth
from vidsynth.config import DataConfig, ModelConfig, TrainConfig
from vidsynth.errors import UserError
from vidsynth.models.layers import Generator
from vidsynth.pretrained import export
from vidsynth.training import FAMILIES, RunConfig, model_config, register_family, train_config
from vidsynth.training.loop import train
from vidsynth.training.objective import Objective


@dataclass
class ToyConfig(ModelConfig):
    noise: float = 0.1  # how far a latent moves the video from the learned mean


@dataclass
class ToyTrainConfig(TrainConfig):
    lr: float = 1e-2


class ToyNet(Generator):
    """A learned mean clip, shifted by one latent number per clip: the smallest network that samples by seed."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg, self.num_classes = cfg, cfg.num_classes
        self.mean = torch.nn.Parameter(torch.zeros(cfg.channels, cfg.num_frames, cfg.resolution, cfg.resolution))

    def latent_dim(self, num_frames=None) -> int:
        return 1

    def forward(self, latents, labels=None):
        return torch.tanh(self.mean + self.cfg.noise * latents[:, :, None, None, None])


class ToyObjective(Objective):
    def loss_terms(self, batch):
        real = batch["video"]
        assert isinstance(batch["caption"], list) and len(batch["caption"]) == len(real)  # the batch is the dict
        return {"mse": F.mse_loss(self.generator(self.latents(len(real))), real)}


@pytest.fixture
def toy():
    register_family("toy", model_config=ToyConfig, train_config=ToyTrainConfig, build=ToyNet)(ToyObjective)
    yield FAMILIES["toy"]
    del FAMILIES["toy"]


def test_a_registered_family_trains_samples_exports_and_loads(tmp_path, toy):
    data = DataConfig(name="shapes", resolution=32, num_frames=4, length=16, background="plain")
    cfg = RunConfig(data, model_config("toy", noise=0.2, conditional=False),
                    train_config("toy", steps=3, batch_size=4, sample_every=3, checkpoint_every=3, num_samples=2))
    run = train(cfg, outdir=tmp_path / "runs", progress=False)
    assert run.name == "00000-toy-shapes32" and (run / "samples" / "step-0000003.png").is_file()
    assert "mse" in (run / "stats.jsonl").read_text()
    model = vidsynth.load_pretrained(export(run, tmp_path / "exported"))
    assert model.config.noise == 0.2 and not model.class_names
    batch, alone = model.sample([1, 2, 3]), model.sample([2])
    assert batch.shape == (3, 3, 4, 32, 32)
    torch.testing.assert_close(batch[1], alone[0], rtol=0, atol=0)
    with pytest.raises(UserError, match="noise=0.5 is a toy option that mocogan does not read"):
        model_config("mocogan", noise=0.5)
    with pytest.raises(UserError, match="unconditional: leave out the labels"):
        model.sample([0], labels=[1])
