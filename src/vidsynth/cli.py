"""The ``vidsynth`` command. Dataset options are ``key=value`` words after the dataset name, e.g.
``vidsynth show videofolder root=clips/ resolution=64 --out grid.png``."""

from __future__ import annotations

import dataclasses
import logging
import sys
import textwrap
from pathlib import Path

import click

from vidsynth.config import DataConfig, parse_overrides
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
    """Index DATASET and report clips per class and split, and every file that cannot be used.

    The metadata index is cached, so later opens decode nothing.

    \b
    Examples:
      vidsynth prepare videofolder root=../shared/data/weizmann_actions val_fraction=0.2 group=mirror_pairs
      vidsynth prepare ucf101 root=data/UCF-101 fold=1 val_fraction=0.05
    """
    from vidsynth.data import dataset_splits
    cfg = _data_config(dataset, options)
    bad, short = {}, {}
    for split, report in dataset_splits(cfg, reports=True).items():
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
    from vidsynth.io import IMAGE_OUT_EXTS, VIDEO_OUT_EXTS, save_videos
    for path in out:
        if path.suffix.lower() not in IMAGE_OUT_EXTS | VIDEO_OUT_EXTS:
            raise UserError(f"--out {path}: use a .png/.jpg grid or a {'/'.join(sorted(VIDEO_OUT_EXTS))} video")
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


def main(argv=None):
    """Entry point: user mistakes print one line and exit 2, never a traceback."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
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
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
