"""``torchrun --nproc_per_node N -m vidsynth.train [vidsynth train options]``: one process per rank."""

from vidsynth.training.loop import main_distributed

if __name__ == "__main__":
    main_distributed()
