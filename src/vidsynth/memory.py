"""Memory a request needs, estimated before it is made: a request that would not fit is refused in one line with
the estimate, instead of being killed by the OS (or swapping for an hour) after the work started."""

from __future__ import annotations

from pathlib import Path

import torch

from vidsynth.errors import UserError


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Memory a new allocation can get on ``device``: free memory of a GPU, MemAvailable of the host (page cache
    counts as available: the kernel gives it back)."""
    device = torch.device(device)
    if device.type == "cuda":  # what torch's caching allocator holds unused is free to this process too
        return torch.cuda.mem_get_info(device)[0] + torch.cuda.memory_reserved(device) - \
            torch.cuda.memory_allocated(device)
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    import os
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require(nbytes: float, what: str, hint: str, device: torch.device | str = "cpu") -> None:
    """One-line UserError when ``what`` (estimated at ``nbytes``) would not fit in the memory ``device`` has free;
    ``hint`` says what to ask for instead."""
    free = available_bytes(device)
    if nbytes > free:
        raise UserError(f"{what} needs about {gigabytes(nbytes)} of memory and {torch.device(device).type} has "
                        f"{gigabytes(free)} free: {hint}")


def gigabytes(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GB"
