"""The ``vidsynth`` command. Dataset options are ``key=value`` words after the dataset name, e.g.
``vidsynth show videofolder root=clips/ resolution=64 --out grid.png``."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import textwrap
from pathlib import Path

import click

from vidsynth.config import DataConfig, ModelConfig, parse_overrides
from vidsynth.errors import UserError

OPTIONS_HELP = "Dataset options as key=value (see `vidsynth datasets`)."


def _data_config(name: str, options: tuple[str, ...]) -> DataConfig:
    from vidsynth.data import make_data_config
    return make_data_config(name, **parse_overrides(DataConfig, options))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="vidsynth")
def cli():
    """vidsynth: train, sample and evaluate generative video models."""


@cli.command()
def datasets():
    """List the datasets and the options each one takes.

    \b
    Example:
      vidsynth datasets
    """
    from vidsynth.data import DATASETS
    defaults = DataConfig()
    for name, cls in sorted(DATASETS.items()):
        options = " ".join(f"{key}={getattr(defaults, key)}" for key in cls.options)
        click.echo(f"{name}\n" + textwrap.fill(cls.description, 100, initial_indent="  ", subsequent_indent="  "))
        click.echo(textwrap.fill(options, 100, initial_indent="  options: ", subsequent_indent="    "))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("dataset")
@click.argument("options", nargs=-1)
def prepare(dataset, options):
    """Index DATASET and report clips per class and split (only the one given with split=...), and every file that
    cannot be used.

    The metadata index is cached, so later opens decode nothing.

    \b
    Examples:
      vidsynth prepare videofolder root=../shared/data/weizmann_actions val_fraction=0.2 group=mirror_pairs
      vidsynth prepare ucf101 root=data/UCF-101 fold=1 val_fraction=0.05
    """
    from vidsynth.data import dataset_splits
    cfg = _data_config(dataset, options)
    given = any(o.partition("=")[0].strip() == "split" for o in options)
    splits = dataset_splits(cfg, reports=True, splits=(cfg.split,) if given else ("train", "val", "test"))
    if given and not splits:
        raise UserError(f"split={cfg.split} is empty for these options (e.g. split=val needs val_fraction > 0)")
    bad, short = {}, {}
    for split, report in splits.items():
        click.echo(f"{split}: {report['clips']} clips, {len(report['per_class'])} classes")
        for cls_name, count in report["per_class"].items():
            click.echo(f"  {cls_name:<24} {count}")
        bad.update(report.get("bad", []))
        short.update(dict.fromkeys(report.get("too_short", [])))
    frames = cfg.num_frames if cfg.frame_stride == 1 else f"{cfg.num_frames}x{cfg.frame_stride}"
    click.echo(f"skipped, shorter than the clip ({frames} frames, short={cfg.short}): {len(short)}")
    for path in short:
        click.echo(f"  {path}")
    click.echo(f"unreadable files: {len(bad)}")
    for path, why in bad.items():
        click.echo(f"  {path}: {why}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("dataset")
@click.argument("options", nargs=-1)
@click.option("--out", required=True, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="grid.png (rows = clips, columns = frames), or clip.mp4 / clip.gif (clips tiled); repeatable.")
@click.option("--num", default=8, type=click.IntRange(1, 256), help="Number of clips.")
@click.option("--fps", default=8.0, type=click.FloatRange(0.5, 120), help="Frame rate of mp4/gif output.")
def show(dataset, options, out, num, fps):
    """Write real clips of DATASET to look at, spread evenly over the dataset.

    \b
    Examples:
      vidsynth show shapes --out shapes.mp4 --out shapes.png
      vidsynth show movingmnist root=../shared/data/mnist --out mmnist.png --num 4
    """
    import torch

    from vidsynth.data import build_dataset
    from vidsynth.io import IMAGE_OUT_EXTS, VIDEO_OUT_EXTS, save_videos, writable_folder
    for path in out:
        if path.suffix.lower() not in IMAGE_OUT_EXTS | VIDEO_OUT_EXTS:
            raise UserError(f"--out {path}: use a .png/.jpg grid or a {'/'.join(sorted(VIDEO_OUT_EXTS))} video")
        writable_folder(path.parent)
    cfg = dataclasses.replace(_data_config(dataset, options), cache="none")  # decode only the clips shown
    ds = build_dataset(cfg)
    picks = sorted({i * len(ds) // num for i in range(num)})
    clips = [ds[i] for i in picks]
    videos = torch.stack([c["video"] for c in clips])
    for path in out:
        save_videos(path, videos, fps=fps)
        click.echo(f"wrote {path} ({len(clips)} clips of {ds.num_frames}x{ds.resolution}x{ds.resolution} "
                   f"from {dataset})")
    for c in clips:
        caption = f"  {c['caption']}" if "caption" in c else ""
        click.echo(f"  [{c['index']}] {ds.class_names[c['label']]}{caption}")


PRESETS = Path(__file__).parent / "configs"
SECTIONS = ("data", "model", "train")
DATA_DECIDES = {"resolution", "num_frames", "num_classes", "channels"}  # model sizes the dataset decides
# train settings that may change on --resume (they do not change the math of the run)
RESUMABLE = {"steps", "minutes", "sample_every", "checkpoint_every", "log_every", "keep_checkpoints", "num_workers",
             "device", "metrics", "metric_every", "max_loss", "max_loss_steps"}


def _split_overrides(items, family_name: str) -> dict[str, dict]:
    """``model.z_dim=64`` or a bare key that only one section of ``family_name``'s run has -> typed values by
    section, ``{"model": {"z_dim": 64}, ...}``; an option only other families read is rejected in one line that
    names them."""
    from vidsynth.training.families import field_names, get_family, option_error, readers
    family = get_family(family_name)
    classes = {"data": DataConfig, "model": family.model_config, "train": family.train_config}
    names = {n: field_names(c) - (DATA_DECIDES if n == "model" else set()) for n, c in classes.items()}
    out = {name: [] for name in SECTIONS}
    for item in items:
        key, _, value = item.partition("=")
        section, dot, field = key.partition(".")
        section, field = (section, field) if dot else (None, key)
        field = field.replace("-", "_")
        if section is not None and section not in SECTIONS:
            raise UserError(f"{item!r}: prefix must be one of {', '.join(SECTIONS)} (e.g. train.steps=100)")
        if section == "model" and field in DATA_DECIDES:
            raise UserError(f"{item!r}: the model's {field} comes from the dataset; set data.{field} instead")
        candidates = [section] if section else SECTIONS
        owners = [n for n in candidates if field in names[n]]
        if not owners:
            for other in candidates:
                if other != "data" and readers(other, field):
                    raise option_error(family_name, other, field, value)
            raise UserError(f"{item!r}: unknown option; see `vidsynth train --help` and `vidsynth datasets`")
        if len(owners) > 1:
            raise UserError(f"{item!r}: ambiguous; say {' or '.join(f'{o}.{key}' for o in owners)}")
        out[owners[0]].append(f"{field}={value}")
    return {name: parse_overrides(classes[name], out[name]) for name in SECTIONS}


def _load_preset(name: str) -> dict:
    path = PRESETS / f"{name}.json"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in PRESETS.glob("*.json")))
        raise UserError(f"unknown preset {name!r}; available: {names}")
    return json.loads(path.read_text())


def _run_config(preset, data, model, overrides):
    from vidsynth.data import make_data_config
    from vidsynth.training.families import RunConfig, get_family, make_config
    base = _load_preset(preset) if preset else {}
    sections = {k: dict(base.get(k, {})) for k in SECTIONS}
    if data and data != sections["data"].get("name", data):
        # another dataset: keep the preset's clip settings, drop options of the preset's dataset
        keep = ("resolution", "num_frames", "frame_stride")
        sections["data"] = {k: v for k, v in sections["data"].items() if k in keep}
    if data:
        sections["data"]["name"] = data
    if model:
        sections["model"]["name"] = model
    family = get_family(sections["model"].setdefault("name", ModelConfig.name))
    for section, values in _split_overrides(overrides, family.name).items():
        sections[section].update(values)
    name = sections["data"].get("name", DataConfig.name)
    options = {k: v for k, v in sections["data"].items() if k != "name"}
    data_cfg = make_data_config(name, **options)  # rejects unknown datasets and options they do not take
    return RunConfig(data_cfg, make_config(family, "model", sections["model"]),
                     make_config(family, "train", sections["train"])).resolved()


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("overrides", nargs=-1)
@click.option("--preset", default=None, help="Named preset: quick, mmnist64, weizmann64, ucf101-128, "
                                              "weizmann-vae64, mmnist-predict, shapes-text.")
@click.option("--data", default=None, help="Dataset name (default: the preset's, else shapes).")
@click.option("--model", default=None, help="Model family: vgan, mocogan, continuous (GANs), vae, completion "
                                             "(prediction, interpolation, inpainting) (default: the preset's, else "
                                             "mocogan).")
@click.option("--outdir", default="runs", type=click.Path(file_okay=False, path_type=Path),
              help="Where numbered run folders are made.")
@click.option("--resume", default=None, help="A run folder to continue from its latest checkpoint, or 'latest'.")
@click.option("--nproc", default=1, type=click.IntRange(1, 64), help="Processes (torch.distributed via torchrun).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and stop.")
@click.option("--metrics", default=None, help="Metrics during training, e.g. fvd256_16f (same as metrics=...).")
@click.option("--metric-every", default=None, type=click.IntRange(1), help="Steps between metrics "
                                                                          "(same as metric_every=N).")
def train(overrides, preset, data, model, outdir, resume, nproc, dry_run, metrics, metric_every):
    """Train a video model (GAN, VAE or completion). Options are key=value words: a bare key if only one of
    data/model/train has it, else prefixed (data.seed=1, train.seed=1). An option the model family does not read
    is an error that names the families that do. The resolved config goes to the run's config.json.

    \b
    Examples:
      vidsynth train --preset quick
      vidsynth train --preset quick minutes=1
      vidsynth train --preset weizmann64 train.steps=5000 loss=hinge
      vidsynth train --data videofolder root=clips/ resolution=64 --model vgan
      vidsynth train --resume latest steps=2000
      vidsynth train --preset quick --nproc 2
      vidsynth train --preset mmnist64 --metrics fvd256_16f --metric-every 1000
      vidsynth train --preset weizmann-vae64
      vidsynth train --preset mmnist-predict steps=2000
    """
    from vidsynth.training.families import RunConfig
    from vidsynth.training.loop import latest_run
    from vidsynth.training.loop import train as run_training
    overrides += (f"metrics={metrics}",) if metrics is not None else ()
    overrides += (f"metric_every={metric_every}",) if metric_every is not None else ()
    if nproc > 1:  # relaunch this command under torchrun, one process per rank
        import os
        import subprocess
        args = [*overrides, "--outdir", str(outdir)]
        for flag, value in (("--preset", preset), ("--data", data), ("--model", model), ("--resume", resume)):
            args += [flag, value] if value else []
        args += ["--dry-run"] if dry_run else []
        threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "vidsynth.train", *args]
        sys.exit(subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": threads}))
    if resume:
        if preset or data or model:
            raise UserError("--resume takes the run's own config; only train settings like steps=N may change")
        run_dir = latest_run(outdir) if resume == "latest" else Path(resume)
        cfg = RunConfig.load(run_dir)
        changes = _split_overrides(overrides, cfg.model.name)
        if changes["data"] or changes["model"] or set(changes["train"]) - RESUMABLE:
            raise UserError(f"on --resume only {', '.join(sorted(RESUMABLE))} may change")
        cfg.train = dataclasses.replace(cfg.train, **changes["train"])
    else:
        run_dir = None
        cfg = _run_config(preset, data, model, overrides)
    if dry_run:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return
    evaluator = None
    if cfg.train.metrics:
        from vidsynth.metrics.evaluate import training_evaluator
        evaluator = training_evaluator(cfg.train.metrics, cfg.data)
    out = run_training(cfg, outdir=outdir, resume=run_dir, evaluator=evaluator)
    if out is not None:
        click.echo(f"run folder: {out}")


@cli.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--seeds", default="0-7", help="Seeds, e.g. 0-15 or 1,5,9-11: seed k is the same video alone or in "
                                              "a batch.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--format", "fmt", default="mp4", type=click.Choice(["mp4", "gif", "grid"]),
              help="One file per seed (mp4/gif) or one PNG grid (rows = seeds).")
@click.option("--class", "class_name", default=None, help="Class name for a conditional model (default: seed k "
                                                           "shows class k mod classes).")
@click.option("--truncation", default=1.0, type=click.FloatRange(0, 2), help="Scale latents toward their mean.")
@click.option("--frames", default=None, type=click.IntRange(1, 4096), help="Frames per video (latent-motion "
                                                                            "models can go longer than trained).")
@click.option("--fps", default=8.0, type=click.FloatRange(0.5, 120))
@click.option("--time-step", default=1.0, type=click.FloatRange(0.01, 100), help="Training-clip frames between "
              "output frames (continuous-time models): 0.25 renders four times the frame rate.")
@click.option("--prompt", "prompts", multiple=True, help="For a text-conditioned model: what to show (repeat it "
              "for several prompts: every seed of each; the grid has one row per prompt and seed).")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
def sample(source, seeds, out, fmt, class_name, truncation, frames, fps, time_step, prompts, device):
    """Sample videos from a run folder (its latest checkpoint) or an export folder.

    \b
    Examples:
      vidsynth sample runs/00000-mocogan-shapes32 --seeds 0-15 --out samples/
      vidsynth sample exported/ --seeds 3 --class jack --format gif --out samples/
      vidsynth sample runs/00001-mocogan-shapes32 --prompt "a red circle moves left" --prompt "a blue star moves up" --seeds 0-3 --format grid --out samples/
    """
    import torch
    from tqdm import tqdm

    from vidsynth.io import save_videos, writable_folder
    from vidsynth.models.sampler import parse_seeds
    from vidsynth.pretrained import load
    from vidsynth.training.distributed import resolve_device
    seed_list = parse_seeds(seeds)
    writable_folder(out)
    sampler = load(source).to(resolve_device(device))
    labels = None
    if class_name is not None:
        if not sampler.num_classes:
            raise UserError("--class: this model is unconditional")
        if class_name not in sampler.class_names:
            raise UserError(f"--class {class_name!r}: choose one of {', '.join(sampler.class_names)}")
        labels = [sampler.class_names.index(class_name)] * len(seed_list)
    texts = list(prompts) or [None]
    if len(texts) > 1:
        (out / "prompts.txt").write_text("".join(f"prompt{j}: {t}\n" for j, t in enumerate(texts)))
    if fmt == "grid":
        videos = torch.cat([sampler.sample(seed_list, labels, None if t is None else [t] * len(seed_list),
                                           num_frames=frames, truncation=truncation, time_step=time_step)
                            for t in texts])
        click.echo(f"wrote {save_videos(out / 'grid.png', videos)}")
        return
    chunk = 16  # seeds generated, written and freed together: any seed range runs in bounded memory
    with tqdm(total=len(seed_list) * len(texts), unit="video", desc="sampling", disable=None) as bar:
        for j, text in enumerate(texts):
            prefix = f"prompt{j}-" if len(texts) > 1 else ""
            for i in range(0, len(seed_list), chunk):
                seeds = seed_list[i: i + chunk]
                videos = sampler.sample(seeds, None if labels is None else labels[i: i + chunk],
                                        None if text is None else [text] * len(seeds), num_frames=frames,
                                        truncation=truncation, time_step=time_step)
                for seed, video in zip(seeds, videos):
                    save_videos(out / f"{prefix}seed{seed:04d}.{fmt}", video[None], fps=fps)
                bar.update(len(seeds))
    click.echo(f"wrote {len(seed_list) * len(texts)} {fmt} files to {out}")


@cli.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Export folder.")
def export(run, out):
    """Export a run's EMA generator as config.json + model.safetensors (loads without executing code).

    \b
    Example:
      vidsynth export runs/00000-mocogan-shapes32 --out exported/
      python -c "import vidsynth; m = vidsynth.load_pretrained('exported'); print(m.sample([0, 1]).shape)"
    """
    from vidsynth.pretrained import export as export_run
    click.echo(f"exported to {export_run(run, out)}")


def _completion_model(run: Path, device: str, class_name: str | None):
    """(completion model's sampler on the device, labels [1] | None) for predict/interpolate/inpaint."""
    import torch

    from vidsynth.tasks import load_completion
    from vidsynth.training.distributed import resolve_device
    model = load_completion(run).to(resolve_device(device))
    if not model.num_classes:
        if class_name is not None:
            raise UserError("--class: this model is unconditional")
        return model, None
    if class_name not in model.class_names:
        raise UserError(f"this model is class-conditional: pass --class with one of {', '.join(model.class_names)}")
    return model, torch.tensor([model.class_names.index(class_name)], device=model.device)


def _write_completion(out: Path, video, fps: float, notes: list[str]) -> None:
    from vidsynth.io import save_videos
    for note in notes:
        click.echo(note)
    click.echo(f"wrote {save_videos(out, video, fps=fps)} ({video.shape[2]} frames)")


def _output_file(ctx, param, value: Path) -> Path:
    from vidsynth.io import IMAGE_OUT_EXTS, VIDEO_OUT_EXTS, writable_folder
    if value.suffix.lower() not in IMAGE_OUT_EXTS | VIDEO_OUT_EXTS:
        raise click.BadParameter(f"{value}: end it in .mp4, .gif (a video) or .png (a frame grid)")
    writable_folder(value.parent)  # before the model loads and works
    return value


COMPLETION_OPTIONS = [
    click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path)),
    click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), callback=_output_file,
                 help="Output .mp4, .gif or .png (frame grid)."),
    click.option("--class", "class_name", default=None, help="Class name, for a class-conditional model."),
    click.option("--fps", default=8.0, type=click.FloatRange(0.5, 120)),
    click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"])),
    click.option("--seed", default=0, type=int, help="Latent noise of a stochastic model (another seed, another "
                                                     "future)."),
]


def completion_options(fn):
    for option in reversed(COMPLETION_OPTIONS):
        fn = option(fn)
    return fn


@cli.command("predict")
@completion_options
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Video file, frame folder or frame strip; its first --context frames are given.")
@click.option("--context", default=None, type=click.IntRange(1), help="Given frames (default: the model's).")
@click.option("--frames", default=None, type=click.IntRange(1), help="Frames to predict (default: the model's "
                                                                      "clip length minus the context).")
def predict_cmd(run, out, class_name, fps, device, seed, input_path, context, frames):
    """Predict the frames that follow the first frames of a video (a model trained with task=predict).

    \b
    Example:
      vidsynth predict runs/00001-completion-movingmnist64 --input clip.mp4 --context 10 --frames 10 --out pred.mp4
    """
    import torch

    from vidsynth.tasks import predict, read_clip
    model, labels = _completion_model(run, device, class_name)
    context = model.config.context if context is None else context
    frames = model.config.num_frames - context if frames is None else frames
    clip, note = read_clip(input_path, model.config.resolution, model.data.frame_stride)
    video = predict(model, clip[None].to(model.device), context, max(1, frames), labels,
                    torch.Generator().manual_seed(seed))
    _write_completion(out, video, fps, [note, f"context: frames 0-{context - 1}; predicted {frames} frames"])


@cli.command("interpolate")
@completion_options
@click.option("--first", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Image of the first frame.")
@click.option("--last", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Image of the last frame.")
@click.option("--frames", default=None, type=click.IntRange(3), help="Frames in all, the two given included "
                                                                     "(default: the model's clip length).")
def interpolate_cmd(run, out, class_name, fps, device, seed, first, last, frames):
    """Generate the frames between a first and a last frame (a model trained with task=interpolate).

    \b
    Example:
      vidsynth interpolate runs/00002-completion-shapes64 --first a.png --last b.png --frames 16 --out out.mp4
    """
    import torch

    from vidsynth.tasks import interpolate, read_image
    model, labels = _completion_model(run, device, class_name)
    resolution, dev = model.config.resolution, model.device
    (a, note_a), (b, note_b) = read_image(first, resolution), read_image(last, resolution)
    frames = model.config.num_frames if frames is None else frames
    video = interpolate(model, a[None].to(dev), b[None].to(dev), frames, labels,
                        torch.Generator().manual_seed(seed))
    _write_completion(out, video, fps, [note_a, note_b])


@cli.command("inpaint")
@completion_options
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Video file, frame folder or frame strip.")
@click.option("--mask", "mask_spec", required=True, help="What to fill: box:x,y,w,h (input pixels), an image "
                                                         "(nonzero = fill, every frame) or a video (frame by frame).")
def inpaint_cmd(run, out, class_name, fps, device, seed, input_path, mask_spec):
    """Fill a region of a video consistently over time; every other pixel is kept exactly (task=inpaint).

    \b
    Examples:
      vidsynth inpaint runs/00003-completion-shapes64 --input clip.mp4 --mask box:8,8,24,24 --out filled.mp4
      vidsynth inpaint runs/00003-completion-shapes64 --input clip.mp4 --mask hole.png --out filled.mp4
    """
    import torch

    from vidsynth.data.video_io import probe
    from vidsynth.tasks import inpaint, read_clip, read_hole
    model, labels = _completion_model(run, device, class_name)
    resolution, stride = model.config.resolution, model.data.frame_stride
    clip, note = read_clip(input_path, resolution, stride)
    info = probe(input_path)
    hole, hole_note = read_hole(mask_spec, info.height, info.width, clip.shape[1], resolution, stride)
    video = inpaint(model, clip[None].to(model.device), hole[None].to(model.device), labels,
                    torch.Generator().manual_seed(seed))
    _write_completion(out, video, fps, [note, hole_note])


@cli.command("eval", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1)
@click.option("--metrics", default="fvd2048_16f", help="Comma-separated: <fvd|kvd><clips>_<frames>f[_s<stride>]"
              "[_styleganv], e.g. fvd2048_16f,kvd2048_16f or fvd256_16f for a quick look.")
@click.option("--data", default=None, help="Real data: a dataset name, its options as key=value words (default: "
                                           "the run's training data and split).")
@click.option("--real", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Real data: a folder of video files instead of a dataset.")
@click.option("--fake", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Generated data: a folder of video files instead of a run.")
@click.option("--batch-size", default=8, type=click.IntRange(1, 1024), help="Clips per I3D batch (results do not "
                                                                             "depend on it).")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--no-cache", is_flag=True, help="Recompute the real clips' features instead of reading the cache.")
def evaluate(args, metrics, data, real, fake, batch_size, device, no_cache):
    """FVD/KVD of a run's generator (appended to RUN/metric-<name>.jsonl), or of two folders of videos. A
    completion run (prediction, interpolation, inpainting) completes the real clips themselves: pass the split to
    score on, e.g. --data movingmnist split=test.

    \b
    Examples:
      vidsynth eval runs/00000-mocogan-shapes32 --metrics fvd256_16f,kvd256_16f
      vidsynth eval runs/00003-mocogan-ucf101 --metrics fvd2048_16f --data ucf101 root=/data/UCF-101 split=test
      vidsynth eval --real real_clips/ --fake generated_clips/ --metrics fvd64_16f
    """
    from vidsynth.metrics.evaluate import append_records, folder_data
    from vidsynth.metrics.evaluate import evaluate as run_metrics
    from vidsynth.training.distributed import resolve_device
    run = [a for a in args if "=" not in a]
    options = tuple(a for a in args if "=" in a)
    if len(run) > 1:
        raise UserError(f"eval takes one run folder, got {' '.join(run)}")
    if bool(run) == bool(fake):
        raise UserError("eval needs a run folder or --fake DIR (one of them)")
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    if not names:
        raise UserError("--metrics names no metric: e.g. --metrics fvd2048_16f or fvd256_16f,kvd256_16f")
    trained = None  # the run's training data
    if run:
        from vidsynth.pretrained import load
        fake_source = load(run[0])
        trained = fake_source.data
    else:
        fake_source = folder_data(fake)
    if real is not None:
        real_cfg = folder_data(real)
    elif data or options:
        from vidsynth.data import check_options, make_data_config
        overrides = parse_overrides(DataConfig, options)
        name = data or (trained.name if trained else None)
        if name is None:
            raise UserError("--fake needs --real DIR or --data NAME for the real videos")
        if trained and name == trained.name:  # the run's data with some options changed (e.g. split=test)
            check_options(name, overrides)
            real_cfg = dataclasses.replace(trained, **overrides).check()
        else:
            base = {"resolution": trained.resolution} if trained else {}
            real_cfg = make_data_config(name, **{**base, **overrides})
    elif trained:
        real_cfg = trained
    else:
        raise UserError("--fake needs --real DIR or --data NAME for the real videos")
    records = run_metrics(names, fake_source, real_cfg, batch_size=batch_size, device=resolve_device(device),
                          use_cache=not no_cache)
    if run:
        append_records(Path(run[0]), records, run=str(run[0]), checkpoint=fake_source.checkpoint)
    for record in records:
        if "attributes" in record:     # text_acc
            click.echo(f"{record['metric']} = {record['value']:.4f}  (all attributes right; " + ", ".join(
                f"{k} {v:.3f}" for k, v in record["attributes"].items() if k != "all") +
                f"; {record['real']['clips']} prompts from shapes/test)")
            continue
        click.echo(f"{record['metric']} = {record['value']:.4f}  ({record['real']['clips']} real clips of "
                   f"{record['real']['dataset']}/{record['real']['split']} at {record['real']['resolution']}px, "
                   f"{record['protocol']['num_frames']} frames, {record['protocol']['resize']} resize)")


def _scene_from(description: str):
    """A scene from a .json file path or from controlled English."""
    from vidsynth import render
    render.require()
    if description.strip().lower().endswith(".json"):
        return render.load(description)
    return render.parse(description)


@cli.command(name="render")
@click.argument("description")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The clip: .mp4, .gif, .webm, ... (passes and --scene-out go beside it).")
@click.option("--frames", default=32, type=click.IntRange(1, 4096))
@click.option("--res", "resolution", default=128, type=click.IntRange(8, 4096), help="Width and height in pixels.")
@click.option("--route", default="mitsuba", type=click.Choice(["mitsuba", "octree"]), help="Render route: "
              "mitsuba (a path-tracing renderer) or octree (sparse voxel octrees traversed in torch).")
@click.option("--fps", default=12.0, type=click.FloatRange(1, 120), help="Frames per second of the simulation "
              "and the clip.")
@click.option("--seed", default=0, type=click.IntRange(0), help="Layout seed (where objects start).")
@click.option("--spp", default=8, type=click.IntRange(1, 4096), help="Samples per pixel.")
@click.option("--passes", default="", help="Comma-separated passes to write beside the clip: depth, ids, flow "
              "(<stem>.passes.npz plus one mp4 each).")
@click.option("--scene-out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the parsed scene graph (JSON) here.")
@click.option("--schema", is_flag=True, help="Print the scene JSON schema and stop (DESCRIPTION is ignored).")
def render_cmd(description, out, frames, resolution, route, fps, seed, spp, passes, scene_out, schema):
    """Render a scene from controlled English (or a scene JSON file) into a clip, with light, shadow and physics.

    \b
    Sentences, each ending with a full stop:
      a [small|medium|large] [colour] [rubber|metal|glass|emissive] <sphere|cube|cylinder|cone|torus|plane>
          [stays | moves <left|right|forward|back> | rolls <direction> | bounces | falls | spins | orbits <object>]
          [slowly|quickly] [left of | right of | in front of | behind | on | next to <object>].
      a [soft|hard] [white|warm|cool|<colour>] [point|area|sun] light from the <left|right|front|back> | from above.
      the camera is fixed | orbits | pans <left|right> | zooms <in|out> [slowly|quickly].
      the background is <colour>.   the ground is <colour>.
    colours: gray, red, blue, green, brown, purple, cyan, yellow, white, black; <object>: 'a ...' (new) or
    'the ...' (named before)

    \b
    Examples:
      vidsynth render "a red rubber sphere bounces left of a blue metal cube. warm light from the left. the camera orbits slowly." --frames 32 --res 128 --out clip.mp4
      vidsynth render scene.json --passes depth,ids,flow --out clip.mp4
    """
    from vidsynth import render
    from vidsynth.io import VIDEO_OUT_EXTS, replaced_atomically, write_video
    if schema:
        click.echo(json.dumps(render.scene.SCHEMA, indent=2))
        return
    if out.suffix.lower() not in VIDEO_OUT_EXTS:
        raise UserError(f"--out {out}: use a video suffix ({', '.join(sorted(VIDEO_OUT_EXTS))})")
    names = [p.strip() for p in passes.split(",") if p.strip()]
    unknown = sorted(set(names) - set(render.clip.PASSES))
    if unknown:
        raise UserError(f"--passes {','.join(unknown)}: not a pass; use any of {', '.join(render.clip.PASSES)}")
    scene = _scene_from(description)
    if scene_out is not None:
        with replaced_atomically(scene_out) as tmp:
            tmp.write_text(render.to_json(scene))
    clip = render.render_scene(scene, frames, resolution, route, seed, fps, spp)
    write_video(out, clip.video, fps=fps)
    written = [out] + (render.write_passes(out, clip, names) if names else [])
    click.echo(f"{clip.metadata['caption']}\nwrote {', '.join(map(str, written))}")


@cli.command(name="render-dataset")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Dataset folder "
              "(a killed run continues when given the same folder and settings).")
@click.option("--n", "count", default=2000, type=click.IntRange(1), help="Number of clips.")
@click.option("--frames", default=16, type=click.IntRange(1, 4096))
@click.option("--res", "resolution", default=64, type=click.IntRange(8, 4096))
@click.option("--seed", default=0, type=click.IntRange(0))
@click.option("--route", default="mitsuba", type=click.Choice(["mitsuba", "octree"]))
@click.option("--fps", default=12.0, type=click.FloatRange(1, 120))
@click.option("--spp", default=4, type=click.IntRange(1, 4096), help="Samples per pixel.")
@click.option("--passes", is_flag=True, help="Also write depth, ids and flow per clip.")
@click.option("--max-objects", default=6, type=click.IntRange(1, 50))
def render_dataset_cmd(out, count, frames, resolution, seed, route, fps, spp, passes, max_objects):
    """Render random captioned scenes (CLEVR-like attributes and motions, 1-6 objects) into a dataset with exact
    ground truth: per clip the video, caption, scene JSON, per-object per-frame states, 2D boxes and events.

    \b
    Examples:
      vidsynth render-dataset --n 2000 --frames 16 --res 64 --seed 0 --out data/rendered
      vidsynth train --data rendered root=data/rendered label=shape
    """
    from vidsynth import render
    from vidsynth.render.dataset import render_dataset
    render.require()
    done = render_dataset(out, count, frames, resolution, seed, route, fps, spp, passes, max_objects)
    click.echo(f"{out}: {done['rendered']} clips rendered, {done['kept']} already there")


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


def main(argv=None):
    """Entry point: user mistakes print one line and exit 2, never a traceback."""
    handler = logging.StreamHandler()
    handler.setFormatter(_ConsoleFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx else ""
        click.echo(f"error: {e.format_message()}{hint}", err=True)
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # the file system refused (full disk, permissions, a vanished file): still one line
        where = f" {e.filename}" if e.filename else ""
        click.echo(f"error: cannot access{where}: {e.strerror or e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted: resume with `vidsynth train --resume latest`", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
