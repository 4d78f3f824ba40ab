import random

import numpy as np
import pytest
import torch

from course_utils.runtime import configure_threads, default_num_threads, get_device, seed_everything


def test_seed_everything_makes_all_generators_repeat():
    seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_seed_everything_rejects_non_integers():
    with pytest.raises(TypeError, match="seed must be an integer"):
        seed_everything(1.5)


def test_course_threads_override(monkeypatch):
    monkeypatch.setenv("COURSE_THREADS", "1")
    assert default_num_threads() == 1
    assert configure_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("COURSE_THREADS", "zero")
    with pytest.raises(ValueError, match="COURSE_THREADS must be a positive integer"):
        default_num_threads()


def test_default_threads_are_one_or_two(monkeypatch):
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    assert default_num_threads() in (1, 2)


def test_get_device_honours_course_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE must be one of cpu, cuda"):
        get_device()
    monkeypatch.delenv("COURSE_DEVICE")
    assert get_device() == torch.device("cpu")  # the default, GPU or not (docs/determinism.md)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_demanding_cuda_without_gpu_fails_clearly(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        get_device()
