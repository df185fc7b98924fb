"""Text faithfulness on Shapes: train the ``shapes-text`` preset for ``--minutes`` with some colour-shape pairs held
out of the training data, train the same model unconditionally for the same time, and report:

- per-attribute accuracy (colour, shape, motion direction) and the all-correct rate of samples for **held-out
  prompts** (captions of Shapes test clips: 256 prompts, seed k with prompt k) and for **held-out combinations**
  (every held-out pair x 8 directions x 4 seeds: captions never seen in training), read by a judge trained on real
  clips (``vidsynth.metrics.text_judge``; its accuracy on real val clips and on the real test clips' own captions is
  printed beside, as the ceiling the judge allows);
- FVD256_16f of both models against the train split (the text model with the real clips' captions) and their
  ratio.

Goals (issue 22, 2 CPU cores, 15 minutes): held-out prompts colour >= 90%, direction >= 80%, shape >= 70%;
held-out combinations all-correct >= 50%; FVD within 1.3x of the unconditional model's.

    python bench/text_faithfulness.py --minutes 15
    python bench/text_faithfulness.py --minutes 15 --holdout "blue star,red circle,green triangle,yellow diamond"

Writes ``results.json``, ``prompts.png`` (one row per prompt, four seeds each) and both runs under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from vidsynth.cli import _run_config
from vidsynth.data import build_dataset
from vidsynth.data.shapes import DIRECTIONS
from vidsynth.io import replaced_atomically, save_videos, writable_folder
from vidsynth.metrics.evaluate import evaluate
from vidsynth.metrics.text_judge import text_accuracy, train_judge
from vidsynth.pretrained import load_run
from vidsynth.training.loop import train

SHOWN = ["a red circle moves right", "a blue square moves up", "a yellow triangle moves down-left",
         "a green star moves left"]


def trained(preset: str, overrides: tuple[str, ...], minutes: float, outdir: Path) -> Path:
    cfg = _run_config(preset, None, None, overrides + (f"minutes={minutes}", "steps=1000000000",
                                                      "sample_every=1000000", "checkpoint_every=1000000"))
    return train(cfg, outdir=outdir)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes of each model")
    parser.add_argument("--holdout", default="blue star,red circle,green triangle,yellow diamond",
                        help="colour-shape pairs never shown in training")
    parser.add_argument("--clips", type=int, default=256, help="held-out prompts, and clips per FVD")
    parser.add_argument("--out", type=Path, default=Path("bench-results") / "text-faithfulness")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of both models (repeatable), e.g. --set lr_d=4e-4")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unconditional model and the FVDs (faithfulness figures only)")
    args = parser.parse_args(argv)
    out = writable_folder(args.out)
    started = time.perf_counter()
    settings = (f"holdout={args.holdout}", *args.set)
    text_run = trained("shapes-text", settings, args.minutes, out / "runs")
    text_model = load_run(text_run)
    data = text_model.data

    judge, judge_val = train_judge(data.resolution, data.background, cache=out / "judges")
    test = build_dataset(dataclasses.replace(data, split="test"))
    held = {tuple(pair.split()) for pair in args.holdout.split(",")}
    prompts = [c for c in (test.clip(i).caption for i in range(len(test)))
               if tuple(c.split()[1:3]) not in held][: args.clips]
    combos = [f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape} moves {d}"
              for colour, shape in sorted(held) for d in DIRECTIONS for _ in range(4)]
    real = torch.stack([test[i]["video"] for i in range(len(prompts))])
    results = {"minutes": args.minutes, "holdout": args.holdout, "judge_val_accuracy": judge_val,
               "judge_on_real_test_clips": text_accuracy(judge, real, [test.clip(i).caption for i in range(len(prompts))]),
               "held_out_prompts": text_accuracy(judge, text_model.sample(len(prompts), prompts=prompts), prompts),
               "held_out_combinations": text_accuracy(judge, text_model.sample(len(combos), prompts=combos), combos),
               "settings": list(settings), "runs": {"text": str(text_run)}, "steps": {"text": _steps(text_run)}}
    if not args.no_baseline:
        plain = settings + ("text=", "conditional=false", "match=0")   # match needs captions
        plain_run = trained("shapes-text", plain, args.minutes, out / "runs")
        results["runs"]["unconditional"], results["steps"]["unconditional"] = str(plain_run), _steps(plain_run)
        metric = f"fvd{args.clips}_16f"
        real_data = dataclasses.replace(data, split="train", holdout="")
        fvd_text = evaluate([metric], text_model, real_data)[0]["value"]
        fvd_plain = evaluate([metric], load_run(plain_run), real_data)[0]["value"]
        results["fvd"] = {"metric": metric, "text": fvd_text, "unconditional": fvd_plain,
                          "ratio": fvd_text / fvd_plain}
    shown = [p for p in SHOWN for _ in range(4)]
    save_videos(out / "prompts.png", text_model.sample(list(range(4)) * len(SHOWN), prompts=shown))
    results["shown_prompts"] = SHOWN
    results["seconds"] = round(time.perf_counter() - started)
    with replaced_atomically(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    for name in ("judge_val_accuracy", "judge_on_real_test_clips", "held_out_prompts", "held_out_combinations"):
        print(f"{name:26s} " + "  ".join(f"{k} {100 * v:5.1f}%" for k, v in results[name].items()))
    if "fvd" in results:
        fvd = results["fvd"]
        print(f"{fvd['metric']}: text {fvd['text']:.1f}, unconditional {fvd['unconditional']:.1f}, ratio "
              f"{fvd['ratio']:.2f}")
    print(f"steps {results['steps']}; wrote {out / 'results.json'} and {out / 'prompts.png'}")
    return results


def _steps(run: Path) -> int:
    lines = (run / "stats.jsonl").read_text().splitlines()
    return json.loads(lines[-1]).get("step", 0) if lines else 0


if __name__ == "__main__":
    main()
