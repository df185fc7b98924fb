"""Text conditioning through the family interface: every family's networks read caption embeddings, training on
captioned data with the learned and the MiniLM encoders, sampling with prompts (alone == in a batch), export and
load with the encoder, the matching-aware discriminator term, and the one-line mistakes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidsynth
from helpers import build_models, moving_frames, read_by
from vidsynth.config import DataConfig
from vidsynth.errors import UserError
from vidsynth.io import write_video
from vidsynth.models.text import embed_captions
from vidsynth.pretrained import export
from vidsynth.training import RunConfig, model_config, train_config
from vidsynth.training.loop import train
from vidsynth.training.objective import matching, mismatched

VIDSYNTH = Path(sys.executable).with_name("vidsynth")
WORDS = "a an moves red blue circle star up left"
SMALL = dict(g_channels=8, d_channels=8, max_channels=32, z_dim=16, resolution=32, num_frames=8)


@pytest.mark.parametrize("family", ["vgan", "mocogan", "continuous", "vae", "completion"])
def test_every_family_reads_caption_embeddings(family):
    extra = {"context": 4} if family == "completion" else {}
    cfg = model_config(family, **read_by(family, **SMALL, text="learned", text_dim=12, text_vocabulary=WORDS), **extra)
    models = build_models(cfg, seed=0)
    g = models.generator
    with torch.no_grad():   # conditional norms start as the identity: move every weight off its initial value
        for p in g.parameters():
            p.add_(0.05 * torch.randn_like(p))
    labels = embed_captions(g, ["a red circle moves up", "a blue star moves left"])
    assert labels.shape == (2, 12)
    other = embed_captions(g, ["a blue star moves left", "a red circle moves up"])
    if family == "completion":
        video, mask = torch.zeros(2, 3, 8, 32, 32), torch.ones(2, 1, 8, 32, 32)
        mask[:, :, 4:] = 0
        out = g(video, mask, labels)
        assert out.shape == (2, 3, 8, 32, 32)
        assert not torch.allclose(out, g(video, mask, other))
    else:
        latents = g.make_latents(2, torch.Generator().manual_seed(0))
        g.eval()
        out, swapped = g(latents, labels), g(latents, other)
        assert out.shape == (2, 3, 8, 32, 32) and not torch.allclose(out, swapped)
    for name, d in models.discriminators.items():
        context = {"times": torch.tensor([[0.0, 2, 5], [1, 3, 7]])} if family == "continuous" else {}
        clip = out if family != "continuous" else out[:, :, :3]
        logits = d(clip.detach(), labels.detach(), **context)
        assert logits.shape == (2,), name
        logits.sum().backward()
        assert all(p.grad is not None for p in d.parameters() if p.requires_grad), name
    out.sum().backward()                                    # the learned encoder trains with the network
    assert g.text_encoder.embed.weight.grad.abs().sum() > 0
    with pytest.raises(AssertionError, match="text embedding"):
        g(g.make_latents(2), torch.tensor([0, 1])) if family != "completion" else g(video, mask, torch.tensor([0, 1]))


def tiny_run(tmp_path, family="mocogan", text="learned", steps=2, **train_options):
    cfg = RunConfig(DataConfig(name="shapes", resolution=32, num_frames=8, length=32),
                    model_config(family, **read_by(family, **SMALL), text=text),
                    train_config(family, steps=steps, batch_size=4, sample_every=steps, checkpoint_every=steps,
                                 num_samples=2, log_every=1, **train_options))
    return train(cfg, outdir=tmp_path / "runs", progress=False)


def test_training_with_captions_then_sampling_with_prompts(tmp_path):
    run = tiny_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["text"] == "learned" and config["model"]["num_classes"] == 0
    assert "circle" in config["model"]["text_vocabulary"].split() and config["class_names"] == []
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert any("D_video_mismatch" in s and "D_image_mismatch" in s for s in stats)   # the matching-aware term
    assert (run / "samples" / "step-0000002.png").is_file()

    export(run, tmp_path / "exported")
    model = vidsynth.load_pretrained(tmp_path / "exported")
    prompts = ["a red circle moves left", "a blue star moves up", "a red star moves up"]
    batch = model.sample([4, 5, 6], prompts=prompts)
    alone = model.sample([5], prompts=prompts[1:2])
    torch.testing.assert_close(alone[0], batch[1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(model.sample([5], prompts=prompts[:1]), alone)   # the prompt matters
    assert torch.equal(model.sample([4, 5], prompts="a red circle moves left"),
                       model.sample([4, 5], prompts=[prompts[0]] * 2))
    with pytest.raises(UserError, match="text-conditioned: give prompts"):
        model.sample([0])
    with pytest.raises(UserError, match="never saw \\(purple\\)"):
        model.sample([0], prompts=["a purple circle"])
    untexted = vidsynth.load_pretrained(tmp_path / "exported")
    untexted.config = dataclasses.replace(untexted.config, text="")
    with pytest.raises(UserError, match="not text-conditioned"):
        untexted.sample([0], prompts=["a red circle"])


def test_minilm_conditioning_records_the_encoder_checksum(tmp_path):
    run = tiny_run(tmp_path, family="vgan", text="minilm", steps=1)
    model_cfg = json.loads((run / "config.json").read_text())["model"]
    assert model_cfg["text"] == "minilm" and model_cfg["text_checksum"].startswith("53aa5117")
    export(run, tmp_path / "exported")
    exported = tmp_path / "exported" / "config.json"
    model = vidsynth.load_pretrained(tmp_path / "exported")
    assert model.sample([0], prompts=["a red circle moves left"]).shape == (1, 3, 8, 32, 32)
    config = json.loads(exported.read_text())
    config["model"]["text_checksum"] = "0" * 64
    exported.write_text(json.dumps(config))
    with pytest.raises(UserError, match="refusing to load"):
        vidsynth.load_pretrained(tmp_path / "exported").sample([0], prompts=["a red circle"])


def test_text_needs_captions_and_cannot_also_take_classes(tmp_path):
    (tmp_path / "walk").mkdir()
    write_video(tmp_path / "walk" / "a.mp4", moving_frames(12, 32, 32))
    cfg = RunConfig(DataConfig(name="videofolder", root=str(tmp_path), resolution=32, num_frames=8),
                    model_config("vgan", **read_by("vgan", **SMALL), text="learned"),
                    train_config("vgan", steps=1, batch_size=2))
    with pytest.raises(UserError, match="needs captions, and videofolder has none"):
        train(cfg, outdir=tmp_path / "runs", progress=False)
    with pytest.raises(UserError, match="cannot also be class-conditional"):
        model_config("vgan", **read_by("vgan", **SMALL), text="learned", num_classes=3).check()
    with pytest.raises(UserError, match="text='clip'"):
        model_config("vgan", **read_by("vgan", **SMALL), text="clip").check()


def test_sample_command_writes_one_row_per_prompt(tmp_path):
    run = tiny_run(tmp_path)
    env = {**os.environ, "VIDSYNTH_CACHE": str(tmp_path / ".cache")}
    out = subprocess.run([str(VIDSYNTH), "sample", str(run), "--seeds", "0-1", "--prompt", "a red circle moves up",
                          "--prompt", "a blue star moves left", "--out", "s"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "prompt0-seed0000.mp4", "prompt0-seed0001.mp4", "prompt1-seed0000.mp4", "prompt1-seed0001.mp4", "prompts.txt"]
    out = subprocess.run([str(VIDSYNTH), "sample", str(run), "--seeds", "0", "--out", "t"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "give prompts" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_mismatched_captions_differ_in_one_content_word():
    captions = ["a red circle moves left", "a blue star moves up", "an orange star moves up", "a red circle moves left"]
    first_of = lambda *args, **kw: [c[0] for c in mismatched(*args, **kw)]  # noqa: E731
    # clip 0 against "a blue star moves up": the colour, shape or direction taken over, by its position in the stream
    swaps = ["a blue circle moves left", "a red star moves left", "a red circle moves up"]
    for first in range(4):
        wrong = first_of(captions, first)
        assert wrong[0] == swaps[first % 3]
        # clip 1 against "an orange star moves up": only the colour differs in a content word ("a"/"an" do not count)
        assert wrong[1] == "a orange star moves up"
        # clip 3's neighbour (clip 0) reads the same caption: the next one that differs (clip 1) is used
        assert wrong[3] == swaps[(first + 3) % 3]
    assert first_of(captions, first=0, stride=2)[1] == "a orange star moves up"
    assert [first_of(captions, first=0, stride=2)[0], first_of(captions, first=1, stride=2)[0]] == swaps[:2]
    # several per clip: each with another word, cycling when a clip has fewer
    wrong = mismatched(captions, first=1, count=3)
    assert wrong[0] == swaps[1:] + swaps[:1] and wrong[1] == ["a orange star moves up"] * 3
    # captions of different lengths: words are aligned (a diagonal direction has two words)
    pair = ["a red circle moves up-left", "a blue circle moves up"]
    assert first_of(pair, first=1) == ["a red circle moves up", "a red circle moves up"]
    assert first_of(pair, first=0) == ["a blue circle moves up left", "a blue circle moves up left"]
    # nothing but short words differ: the neighbour whole; nothing differs: the neighbour (no negative exists)
    assert first_of(["a red star", "an red star"]) == ["an red star", "a red star"]
    assert first_of(["a red circle", "a red circle"]) == ["a red circle", "a red circle"]


@pytest.mark.parametrize("family", ["mocogan", "continuous"])
def test_discriminators_score_several_captions_per_clip_at_once(family):
    cfg = model_config(family, **read_by(family, **SMALL), text="learned", text_dim=12, text_vocabulary=WORDS)
    models = build_models(cfg, seed=0)
    captions = [["a red circle moves up", "a blue circle moves up", "a red star moves up"],
                ["a blue star moves left", "a red star moves left", "a blue star moves up"]]
    labels = embed_captions(models.generator, [c for clip in captions for c in clip]).detach().view(2, 3, 12)
    frames = 8 if family == "mocogan" else cfg.d_frames
    video = torch.rand(2, 3, frames, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    context = {"times": torch.tensor([[0.0, 2, 5], [1, 3, 7]])[:, :frames]} if family == "continuous" else {}
    for name, d in models.discriminators.items():
        d.eval()   # the image D's frame phase advances with each training-mode call: score the same frames each time
        together = d(video, labels, **context)
        assert together.shape == (2, 3), name
        for k in range(3):
            torch.testing.assert_close(d(video, labels[:, k], **context), together[:, k], rtol=1e-4, atol=1e-4)


def test_matching_term_is_the_cross_entropy_of_picking_the_own_caption():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 1.0, -1.0, 3.0]])
    expected = -(torch.log_softmax(logits, 1)[:, 0]).mean()
    torch.testing.assert_close(matching(logits), expected)
    # the realness term (the same for all of a clip's captions) does not move it
    torch.testing.assert_close(matching(logits + torch.tensor([[5.0], [-7.0]])), expected)
    assert matching(torch.tensor([[9.0, 0.0, 0.0]])) < 1e-3 < matching(torch.zeros(1, 3)) - 1.0   # ln 3 = 1.099


@pytest.mark.parametrize("family", ["mocogan", "continuous"])
def test_matching_term_trains_both_sides_and_needs_captions(tmp_path, family):
    run = tiny_run(tmp_path, family, steps=2, match=1.0)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    names = {k for s in stats for k in s}
    discriminators = ("image", "video") if family == "mocogan" else ("video",)
    for d in discriminators:
        assert {f"D_{d}_match", f"G_{d}_match", f"D_{d}_mismatch"} <= names, names
    assert all(s[f"G_{discriminators[0]}_match"] > 0 for s in stats if "G_" + discriminators[0] + "_match" in s)
    cfg = RunConfig(DataConfig(name="shapes", resolution=32, num_frames=8, length=32),
                    model_config("mocogan", **read_by("mocogan", **SMALL)), train_config("mocogan", match=1.0))
    with pytest.raises(UserError, match="match=1 .* needs a text-conditioned model"):
        cfg.resolved()


def test_vae_prior_follows_the_caption():
    cfg = model_config("vae", **read_by("vae", **SMALL), text="learned", text_dim=12, text_vocabulary=WORDS)
    vae = build_models(cfg, seed=0).generator.eval()
    labels = embed_captions(vae, ["a red circle moves up", "a blue star moves left"]).detach()
    latents = vae.make_latents(2, torch.Generator().manual_seed(0))
    before = vae(latents, labels)
    with torch.no_grad():   # a new model's prior is N(0, I): the decoder reads the latents as they are
        torch.testing.assert_close(before, torch.tanh(vae.decoder(latents, labels)))
        vae.prior.weight.normal_()
    mean, log_scale = vae.prior(labels).chunk(2, dim=1)
    assert not torch.allclose(mean[0], mean[1])          # each caption its own prior
    with torch.no_grad():
        torch.testing.assert_close(vae(latents, labels), torch.tanh(vae.decoder(mean + log_scale.exp() * latents,
                                                                                labels)))
    assert vae.prior.weight.requires_grad
    class_vae = build_models(model_config("vae", **read_by("vae", **SMALL), num_classes=3), seed=0).generator
    assert class_vae.prior is None                       # class-conditional VAEs keep the plain prior
