"""UCF101 and HMDB51: official list parsing per fold, group-safe val carving, annotation discovery, bad lines,
missing files, and real clips decoded from tiny AVI files written with PyAV."""

from __future__ import annotations

import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from vidsynth.data import build_dataset
from vidsynth.data.hmdb51 import movie_group
from vidsynth.errors import EmptySplitError, UserError
from vidsynth.io import write_video

# classInd order on purpose not alphabetical, so labels must come from the ids, not from sorted names
UCF_CLASSES = ["ApplyEyeMakeup", "YoYo", "HandstandPushups"]
UCF_FILE_NAME = {"HandstandPushups": "HandStandPushups"}  # the real dataset's case quirk
HMDB_CLASSES = ["brush_hair", "cartwheel", "catch"]
# movie -> clip stems (with HMDB meta tags) and its 1|2|0 mark in splits 1, 2, 3
HMDB_MOVIES = {
    "April_09": (["u_nm_np1_ba_goo_0", "u_nm_np1_ba_goo_1", "u_nm_np1_ri_med_0"], "121"),
    "Blonde": (["f_nm_np1_fr_goo_0"], "112"),
    "Curly": (["h_cm_np1_le_bad_0"], "210"),
    "Dolly": (["u_nm_np2_ba_med_2"], "001"),
    "Eve": (["l_cm_np1_fr_med_0"], "111"),
}
COLORS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]  # per class, to check that a label comes with its video


def write_clip(path: Path, label: int) -> None:
    write_video(path, np.broadcast_to(np.array(COLORS[label], np.uint8), (8, 32, 40, 3)), fps=8)


def ucf_rel(cls: str, g: int, c: int) -> str:
    return f"{cls}/v_{UCF_FILE_NAME.get(cls, cls)}_g{g:02d}_c{c:02d}.avi"


def ucf_lists(fold: int) -> tuple[list[str], list[str]]:
    """(trainlist lines, testlist lines) of the tiny tree: group g0<fold> is the test group."""
    train, test = [], []
    for label, cls in enumerate(UCF_CLASSES):
        for g in range(1, 5):
            for c in (1, 2):
                (test.append(ucf_rel(cls, g, c)) if g == fold else train.append(f"{ucf_rel(cls, g, c)} {label + 1}"))
    return train, test


def write_ucf_annotations(folder: Path, train_lines=None, newline="\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    for fold in (1, 2, 3):
        train, test = ucf_lists(fold)
        train = train_lines if train_lines is not None and fold == 1 else train
        (folder / f"trainlist0{fold}.txt").write_bytes(newline.join(train + [""]).encode())
        (folder / f"testlist0{fold}.txt").write_bytes(newline.join(test + [""]).encode())
    return folder


def hmdb_split(cls: str, fold: int) -> list[tuple[str, str]]:
    return [(f"{movie}_{cls}_{tags}.avi", marks[fold - 1])
            for movie, (clips, marks) in HMDB_MOVIES.items() for tags in clips]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """base/UCF-101 + base/ucfTrainTestlist, base/hmdb51 + base/testTrainMulti_7030_splits (default places)."""
    base = tmp_path_factory.mktemp("datasets")
    for label, cls in enumerate(UCF_CLASSES):
        for g in range(1, 5):
            for c in (1, 2):
                write_clip(base / "UCF-101" / ucf_rel(cls, g, c), label)
    write_ucf_annotations(base / "ucfTrainTestlist")
    for label, cls in enumerate(HMDB_CLASSES):
        for fold in (1, 2, 3):
            lines = hmdb_split(cls, fold)
            (base / "testTrainMulti_7030_splits" / f"{cls}_test_split{fold}.txt").parent.mkdir(exist_ok=True)
            (base / "testTrainMulti_7030_splits" / f"{cls}_test_split{fold}.txt").write_text(
                "".join(f"{name} {mark} \n" for name, mark in lines))  # the real files end lines with a space
        for name, _ in hmdb_split(cls, 1):
            write_clip(base / "hmdb51" / cls / name, label)
    return base


def ucf(tree, **options):
    return build_dataset(name="ucf101", root=str(tree / "UCF-101"), resolution=16, num_frames=4, **options)


def hmdb(tree, **options):
    return build_dataset(name="hmdb51", root=str(tree / "hmdb51"), resolution=16, num_frames=4, **options)


def rels(dataset) -> list[str]:
    return [e.path.relative_to(dataset.root).as_posix() for e in dataset.entries]


def ucf_group(rel: str) -> str:
    return rel.split("/")[0] + re.search(r"_g(\d+)_", rel).group(1)


# ---------------------------------------------------------------- UCF101


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_ucf_train_and_test_lists_per_fold(tree, fold):
    train_lines, test_lines = ucf_lists(fold)
    train = ucf(tree, fold=fold)
    assert train.class_names == UCF_CLASSES and train.num_classes == 3
    assert sorted(zip(rels(train), train.labels())) == sorted((r, int(i) - 1) for r, i in map(str.split, train_lines))
    test = ucf(tree, fold=fold, split="test")
    assert sorted(rels(test)) == sorted(test_lines)
    assert test.labels() == [UCF_CLASSES.index(r.split("/")[0]) for r in rels(test)]
    assert {re.search(r"_g(\d+)_", r).group(1) for r in rels(test)} == {f"{fold:02d}"}
    assert not train.bad and not test.bad


def test_ucf_val_is_carved_by_group_and_deterministic(tree):
    train_lines = [line.split()[0] for line in ucf_lists(1)[0]]
    train, val = ucf(tree, val_fraction=0.34), ucf(tree, val_fraction=0.34, split="val")
    assert sorted(rels(train) + rels(val)) == sorted(train_lines)  # train + val == trainlist, no overlap
    assert {ucf_group(r) for r in rels(train)}.isdisjoint({ucf_group(r) for r in rels(val)})
    assert sorted(set(val.labels())) == [0, 1, 2]  # one of the 3 train groups of each class
    assert len(val) == 3 * 2
    assert rels(ucf(tree, val_fraction=0.34, split="val")) == rels(val)
    # the same list shuffled, with Windows line endings and blank lines, gives the same split
    shuffled = ucf_lists(1)[0]
    random.Random(1).shuffle(shuffled)
    ann = write_ucf_annotations(tree / "ucf_shuffled", shuffled[:5] + ["", "  "] + shuffled[5:], newline="\r\n")
    assert rels(ucf(tree, val_fraction=0.34, split="val", annotations=str(ann))) == rels(val)
    assert rels(ucf(tree, val_fraction=0.34, annotations=str(ann))) == rels(train)
    with pytest.raises(EmptySplitError, match="val_fraction"):
        ucf(tree, split="val")


@pytest.mark.parametrize("place", ["root/ucfTrainTestlist", "root/../ucfTrainTestlist", "root"])
def test_ucf_finds_annotations(tree, tmp_path, place):
    root = tmp_path / "data" / "UCF-101"
    shutil.copytree(tree / "UCF-101", root)
    with pytest.raises(UserError, match=r"annotations=<folder with classInd\.txt and trainlist01\.txt>"):
        build_dataset(name="ucf101", root=str(root))
    write_ucf_annotations({"root/ucfTrainTestlist": root / "ucfTrainTestlist",
                           "root/../ucfTrainTestlist": root.parent / "ucfTrainTestlist", "root": root}[place])
    test = build_dataset(name="ucf101", root=str(root), split="test", fold=2, resolution=16, num_frames=4)
    assert sorted(rels(test)) == sorted(ucf_lists(2)[1])


def test_ucf_rejects_a_class_id_that_disagrees_with_the_folder(tree):
    lines = ucf_lists(1)[0]
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 2"  # an ApplyEyeMakeup file labelled YoYo
    ann = write_ucf_annotations(tree / "ucf_bad_id", lines)
    with pytest.raises(UserError, match=rf"trainlist01\.txt:5: class id 2 does not match ApplyEyeMakeup .*{lines[4]}"):
        ucf(tree, annotations=str(ann))
    with pytest.raises(UserError, match="holds no classInd.txt"):
        ucf(tree, annotations=str(tree / "UCF-101"))


def test_ucf_listed_but_missing_file_is_reported_and_skipped(tree, caplog):
    missing = "YoYo/v_YoYo_g09_c01.avi"
    ann = write_ucf_annotations(tree / "ucf_missing", ucf_lists(1)[0] + [f"{missing} 2"])
    with caplog.at_level(logging.WARNING, logger="vidsynth.data"):
        train = ucf(tree, annotations=str(ann))
    assert [(p.relative_to(train.root).as_posix(), why.split(":")[0]) for p, why in train.bad] == [
        (missing, "cannot stat")]
    assert missing not in rels(train) and len(train) == len(ucf_lists(1)[0])
    assert "skipped 1 of 19 videos" in caplog.text and missing in caplog.text
    assert train[len(train) - 1]["video"].shape == (3, 4, 16, 16)


def test_ucf_clips_decode_with_their_labels(tree):
    test = ucf(tree, split="test", fold=3)
    for i in range(len(test)):
        sample = test[i]
        video, label = sample["video"], sample["label"]
        assert video.shape == (3, 4, 16, 16) and video.min() >= -1 and video.max() <= 1
        assert label == UCF_CLASSES.index(rels(test)[i].split("/")[0])
        expected = np.array(COLORS[label]) / 127.5 - 1
        assert np.abs(video.mean(dim=(1, 2, 3)).numpy() - expected).max() < 0.1


# ---------------------------------------------------------------- HMDB51


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_hmdb_marks_1_train_2_test_0_unused(tree, fold):
    expect = {mark: sorted((f"{cls}/{name}", label) for label, cls in enumerate(HMDB_CLASSES)
                           for name, m in hmdb_split(cls, fold) if m == mark) for mark in "012"}
    train, test = hmdb(tree, fold=fold), hmdb(tree, fold=fold, split="test")
    assert train.class_names == HMDB_CLASSES
    assert sorted(zip(rels(train), train.labels())) == expect["1"]
    assert sorted(zip(rels(test), test.labels())) == expect["2"]
    assert expect["0"] and not {r for r, _ in expect["0"]} & set(rels(train) + rels(test))


def test_hmdb_val_never_splits_a_source_movie(tree):
    def movie(rel):
        cls, name = rel.split("/")
        return cls, name.split(f"_{cls}_")[0]

    for seed in range(6):
        train, val = hmdb(tree, val_fraction=0.34, seed=seed), hmdb(tree, val_fraction=0.34, split="val", seed=seed)
        assert sorted(rels(train) + rels(val)) == sorted(f"{c}/{n}" for c in HMDB_CLASSES
                                                          for n, m in hmdb_split(c, 1) if m == "1")
        assert {movie(r) for r in rels(train)}.isdisjoint({movie(r) for r in rels(val)})
        assert sorted(set(val.labels())) == [0, 1, 2]


def test_hmdb_movie_group_drops_meta_tags_and_counter():
    names = ["Aussie_Brunette_Brushing_Hair_II_brush_hair_u_nm_np1_ri_med_3",
             "Aussie_Brunette_Brushing_Hair_II_brush_hair_u_nm_np2_le_goo_1",
             "Aussie_Brunette_Brushing_Hair_II_brush_hair_u_nm_np1_ba_goo_4"]
    assert {movie_group("brush_hair", n) for n in names} == {"brush_hair/Aussie_Brunette_Brushing_Hair_II_brush_hair"}
    assert movie_group("x", "some_clip_12") == "x/some_clip"  # no tags: only the counter goes
    assert movie_group("x", "Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_x_h_cm_np1_le_goo_1") == \
        "x/Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_x"


def test_hmdb_missing_annotations_is_a_clear_error(tmp_path):
    root = tmp_path / "hmdb51"
    (root / "brush_hair").mkdir(parents=True)
    with pytest.raises(UserError, match=r"testTrainMulti_7030_splits.*annotations=<folder with <class>_test_split1"):
        build_dataset(name="hmdb51", root=str(root))
    with pytest.raises(UserError, match="holds no"):
        build_dataset(name="hmdb51", root=str(root), annotations=str(tmp_path))
    (tmp_path / "testTrainMulti_7030_splits").mkdir()
    (tmp_path / "testTrainMulti_7030_splits" / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 3\n")
    with pytest.raises(UserError, match=r"brush_hair_test_split1\.txt:2: expected"):
        build_dataset(name="hmdb51", root=str(root))
    with pytest.raises(UserError, match=r"brush_hair_test_split2\.txt.*fold="):
        build_dataset(name="hmdb51", root=str(root), fold=2)


def test_hmdb_clip_decodes_with_its_label(tree):
    test = hmdb(tree, split="test", fold=2)  # fold 2 tests on April_09 (3 clips per class)
    sample = test[len(test) - 1]
    video, label = sample["video"], sample["label"]
    assert video.shape == (3, 4, 16, 16) and video.min() >= -1 and video.max() <= 1
    assert label == 2 == HMDB_CLASSES.index(rels(test)[-1].split("/")[0])
    assert np.abs(video.mean(dim=(1, 2, 3)).numpy() - (np.array(COLORS[2]) / 127.5 - 1)).max() < 0.1
