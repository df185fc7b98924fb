"""``UCF101`` with its official train/test folds (Soomro et al. 2012, "UCF101: A Dataset of 101 Human Actions
Classes From Videos in The Wild").

Layout::

    root/                       the UCF-101 folder: one folder per class
      ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi
      ...
    ucfTrainTestlist/           annotations=...; default: root/ucfTrainTestlist, root/../ucfTrainTestlist, root
      classInd.txt              "1 ApplyEyeMakeup": 1-based class ids; labels are id - 1, class_names in id order
      trainlist01.txt ...03     "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1": path relative to root, class id
      testlist01.txt ...03      "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": label from the folder via classInd

Splits: ``fold`` picks the list number. ``split=test`` is the testlist; ``split=train``/``val`` is the trainlist,
with ``val_fraction`` of each class's groups held out as val. A group (``_gNN_`` in the file name: clips with the
same actors and background) never straddles train and val. Listed paths are used as written (the real lists
keep quirks like ``HandstandPushups/v_HandStandPushups_g01_c01.avi``); listed files missing on disk are
reported and skipped by ``FileDataset``.
"""

from __future__ import annotations

import re

from vidsynth.data.annotations import find_annotations, read_lines
from vidsynth.data.base import FileDataset, VideoEntry, register_dataset
from vidsynth.errors import UserError


@register_dataset("ucf101")
class UCF101(FileDataset):
    description = ("UCF101: root/<Class>/v_<Class>_gNN_cMM.avi with the official lists (ucfTrainTestlist); "
                   "fold=1-3; val carved from train by val_fraction without splitting a gNN group")
    options = FileDataset.options + ("annotations", "fold", "val_fraction")

    def discover(self):
        ann = find_annotations(self.cfg.annotations, self.root, "ucfTrainTestlist", "classInd.txt",
                               "folder with classInd.txt and trainlist01.txt")
        ids = {}  # class name -> 1-based id
        for n, line in read_lines(ann / "classInd.txt"):
            fields = line.split()
            if len(fields) != 2 or not fields[0].isdigit():
                raise UserError(f"{ann / 'classInd.txt'}:{n}: expected '<id> <ClassName>', got {line!r}")
            ids[fields[1]] = int(fields[0])
        if sorted(ids.values()) != list(range(1, len(ids) + 1)):
            raise UserError(f"{ann / 'classInd.txt'}: class ids must be 1..{len(ids)}, each once")
        class_names = sorted(ids, key=ids.get)

        listed = ann / f"{'test' if self.cfg.split == 'test' else 'train'}list0{self.cfg.fold}.txt"
        entries = []
        for n, line in read_lines(listed):
            fields = line.split()
            rel = fields[0]
            cls = rel.split("/")[0]
            if cls not in ids or "/" not in rel or len(fields) > 2:
                raise UserError(f"{listed}:{n}: expected '<Class>/<file>.avi [class id]' with a class of "
                                f"classInd.txt, got {line!r}")
            if len(fields) == 2 and (not fields[1].isdigit() or int(fields[1]) != ids[cls]):
                raise UserError(f"{listed}:{n}: class id {fields[1]} does not match {cls} (id {ids[cls]} in "
                                f"classInd.txt): {line!r}")
            match = re.search(r"_(g\d+)_c\d+", rel.rsplit("/", 1)[1])
            # clips of one gNN share actors and background: they form the split unit
            group = f"{cls}_{match.group(1)}" if match else rel
            entries.append(VideoEntry(self.root / rel, ids[cls] - 1, group))
        if self.cfg.split == "test":
            return class_names, entries
        return class_names, self.carve(entries, ("val",))
