"""``torchrun --nproc_per_node N -m vidsynth.train [vidsynth train options]``: one process per rank, each running
``vidsynth train`` with the same arguments."""

import sys

from vidsynth.cli import main


def main_distributed(argv=None) -> None:
    main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main_distributed()
