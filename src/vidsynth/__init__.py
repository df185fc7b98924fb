"""vidsynth: deep generative video models (GANs, VAEs) -- data, training, sampling, evaluation."""

__version__ = "0.1.0"


def _start_threads() -> None:
    """Give every intra-op thread one small task before any real work. With torch 2.13.0's CPU build on 2 cores,
    in about one process in ten the worker thread's first task computed ``torch.sqrt`` to about 12 bits (half of
    a [16, 32, 32] tensor off by up to 3e-4 relative; later calls exact): a rendered Shapes clip, and through it
    a whole training run, then differed between invocations of the same command. After one task per thread the
    first results match in every process (70 of 70, against 4 of 40 wrong without)."""
    import torch
    torch.zeros(32768 * torch.get_num_threads()).exp_()  # 32768: torch's grain size, so each thread gets a chunk


_start_threads()


def load_pretrained(model_dir, device="cpu"):
    """An exported model (``vidsynth export``) as its family's sampler: ``load_pretrained(dir).sample([0, 1, 2])``
    -> ``[3, C, T, H, W]`` in [-1, 1], seed k the same video alone or in a batch."""
    from vidsynth.pretrained import load_pretrained as _load  # here, so `import vidsynth` stays light
    return _load(model_dir, device)
