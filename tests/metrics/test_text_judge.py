"""The faithfulness judge: prompts parsed with the Shapes grammar, a judge trained on real clips that reads real
clips' attributes, and accuracies that fall when the prompts do not match the clips."""

from __future__ import annotations

import pytest
import torch

from vidsynth.data import build_dataset
from vidsynth.errors import UserError
from vidsynth.metrics.text_judge import prompt_attributes, text_accuracy, train_judge


def test_prompts_parse_into_attributes():
    assert prompt_attributes("a red circle moves down-left") == {"colour": 0, "shape": 0, "direction": 5}
    assert prompt_attributes("An orange star moves up") == {"colour": 7, "shape": 4, "direction": 0}
    for bad in ("a purple circle moves up", "a red circle jumps", "two red circles"):
        with pytest.raises(UserError, match="not a Shapes caption"):
            prompt_attributes(bad)


def test_the_judge_reads_real_clips_and_catches_wrong_prompts(tmp_path):
    judge, val = train_judge(32, "plain", steps=600, batch=32, cache=tmp_path)
    assert val["colour"] > 0.9 and val["shape"] > 0.5 and val["direction"] > 0.5, val
    again, val_again = train_judge(32, "plain", steps=600, batch=32, cache=tmp_path)   # from the cache
    assert val_again == val and all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(),
                                                                      again.state_dict().values()))
    test = build_dataset(name="shapes", resolution=32, num_frames=8, background="plain", split="test")
    videos = torch.stack([test[i]["video"] for i in range(64)])
    captions = [test.clip(i).caption for i in range(64)]
    right = text_accuracy(judge, videos, captions)
    wrong = text_accuracy(judge, videos, captions[1:] + captions[:1])
    assert right["colour"] > 0.9 and right["all"] > wrong["all"] + 0.2 and right["colour"] > wrong["colour"] + 0.5
    with pytest.raises(UserError, match="one prompt per video"):
        text_accuracy(judge, videos, captions[:3])
