"""``HMDB51`` with its official three splits (Kuehne et al. 2011, "HMDB: A Large Video Database for Human Motion
Recognition").

Layout::

    root/                               one folder per class
      brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi
      ...
    testTrainMulti_7030_splits/         annotations=...; default: root/testTrainMulti_7030_splits,
      brush_hair_test_split1.txt ...3     root/../testTrainMulti_7030_splits, root
                                        lines "<name>.avi 1|2|0": 1 = train, 2 = test, 0 = unused in that split

``class_names`` are the classes that have split files, sorted; ``fold`` picks the split number. ``split=test`` is
the videos marked 2; ``split=train``/``val`` the videos marked 1, with ``val_fraction`` of each class's source
movies held out as val. Videos marked 0 are in neither.

Split unit: the source movie. HMDB names are ``<movie>_<class>_<body part>_<camera motion>_<people>_<viewpoint>
_<quality>_<counter>``; clips of one movie with different tags (``..._u_nm_np1_ba_goo_4``, ``..._u_nm_np1_ri_med_3``)
are one group, so dropping only the trailing counter would not be enough. Names without these tags fall back to
the stem minus its trailing ``_<digits>``.
"""

from __future__ import annotations

import re

from vidsynth.data.annotations import find_annotations, read_lines
from vidsynth.data.base import FileDataset, VideoEntry, register_dataset
from vidsynth.errors import UserError

# meta tags + clip counter at the end of an HMDB file stem
_CLIP_SUFFIX = re.compile(r"(_[fhul]_(cm|nm)_np\d+_(fr|ba|le|ri)_(bad|med|goo))?_\d+$")


def movie_group(class_name: str, stem: str) -> str:
    """The source movie of a clip, the unit that never straddles train and val."""
    return f"{class_name}/{_CLIP_SUFFIX.sub('', stem)}"


@register_dataset("hmdb51")
class HMDB51(FileDataset):
    description = ("HMDB51: root/<class>/<clip>.avi with the official splits (testTrainMulti_7030_splits); "
                   "fold=1-3; val carved from train by val_fraction without splitting a source movie")
    options = FileDataset.options + ("annotations", "fold", "val_fraction")

    def discover(self):
        ann = find_annotations(self.cfg.annotations, self.root, "testTrainMulti_7030_splits",
                               "*_test_split[123].txt", "folder with <class>_test_split1.txt files")
        class_names = sorted({p.name.rsplit("_test_split", 1)[0] for p in ann.glob("*_test_split[123].txt")
                              if not p.name.startswith(".")})
        wanted = "2" if self.cfg.split == "test" else "1"
        entries = []
        for label, cls in enumerate(class_names):
            listed = ann / f"{cls}_test_split{self.cfg.fold}.txt"
            for n, line in read_lines(listed):
                fields = line.rsplit(maxsplit=1)
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise UserError(f"{listed}:{n}: expected '<name>.avi 0|1|2', got {line!r}")
                if fields[1] == wanted:
                    path = self.root / cls / fields[0]
                    entries.append(VideoEntry(path, label, movie_group(cls, path.stem)))
        if self.cfg.split == "test":
            return class_names, entries
        return class_names, self.carve(entries, ("val",))
