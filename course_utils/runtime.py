"""Seeding, device choice and thread defaults shared by every chapter.

Small networks on small machines run fastest on one or two threads: more threads
spend their time synchronising. Set ``COURSE_THREADS`` to override the default
(the test suite sets it to 1 when several workers share the machine).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = [
    "configure_threads",
    "default_num_threads",
    "describe_environment",
    "get_device",
    "seed_everything",
]

_DEVICE_CHOICES = ("cpu", "cuda")


def default_num_threads() -> int:
    """Threads for torch: ``COURSE_THREADS`` if set, else min(2, number of cores)."""
    value = os.environ.get("COURSE_THREADS")
    if value is None:
        return max(1, min(2, os.cpu_count() or 1))
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"COURSE_THREADS must be a positive integer, got {value!r}") from None
    if threads < 1:
        raise ValueError(f"COURSE_THREADS must be a positive integer, got {value!r}")
    return threads


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count (default: :func:`default_num_threads`)."""
    threads = default_num_threads() if num_threads is None else int(num_threads)
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's (CPU and CUDA) random generators.

    Also configures torch's thread count, so that one call at the top of a
    notebook gives reproducible results on CPU.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # seeds CUDA too when it is available
    configure_threads()


def get_device() -> torch.device:
    """The device to train on: the CPU, unless ``COURSE_DEVICE=cuda`` asks for the GPU.

    Every network of the course is small (MLPs of 2 x 64 units, batches of 256, one gradient
    step per environment step), so a step costs less than the GPU's kernel launches and the
    host-device copies around it: on an H100 machine, chapter 07 took 124 s on CUDA against 78 s
    on the same machine's CPU. The CPU is therefore the default even where a GPU exists;
    ``COURSE_DEVICE=cuda`` demands a GPU and fails clearly when there is none, and
    ``COURSE_DEVICE=cpu`` (or unset) gives the CPU.
    """
    choice = os.environ.get("COURSE_DEVICE", "").strip().lower()
    if choice and choice not in _DEVICE_CHOICES:
        raise ValueError(
            f"COURSE_DEVICE must be one of {', '.join(_DEVICE_CHOICES)} (or unset), got {choice!r}"
        )
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "COURSE_DEVICE=cuda but torch sees no CUDA device "
            f"(torch {torch.__version__}); unset COURSE_DEVICE to run on the CPU"
        )
    return torch.device(choice or "cpu")


def describe_environment() -> str:
    """A few lines naming the versions, device and threads this notebook runs with."""
    import platform

    import gymnasium
    import ipywidgets
    import matplotlib

    device = get_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    lines = [
        f"python      {platform.python_version()}",
        f"numpy       {np.__version__}",
        f"torch       {torch.__version__}",
        f"gymnasium   {gymnasium.__version__}",
        f"matplotlib  {matplotlib.__version__}",
        f"ipywidgets  {ipywidgets.__version__}",
        f"device      {device}{gpu}",
        f"threads     {torch.get_num_threads()} (of {os.cpu_count()} cores)",
    ]
    return "\n".join(lines)
