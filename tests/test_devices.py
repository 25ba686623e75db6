"""Devices: ``auto | cpu | cuda | cuda:N``, the reasons CUDA is refused, and one GPU per queued experiment.

This machine has no GPU; CUDA's answers are stood in for where a case needs a GPU."""
from __future__ import annotations

import logging

import pytest
import torch

from facemask.core import devices
from facemask.core.devices import DeviceError, resolve_device

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA is not usable")


def test_cpu_and_bad_specs():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "CUDA", "cuda:0:1", ""):
        with pytest.raises(ValueError, match=r"train.device .*valid: auto, cpu, cuda, cuda:N"):
            resolve_device(bad, what="train.device")


@no_gpu
def test_cuda_without_a_usable_gpu_is_an_error_with_torchs_reason():
    with pytest.raises(DeviceError) as e:
        resolve_device("cuda", what="train.device")
    msg = str(e.value)
    # the setting, torch's version and CUDA build, and torch's own reason (here: no driver)
    assert msg.startswith("train.device cuda: torch ") and torch.__version__ in msg
    assert str(torch.version.cuda) in msg and devices.cuda_problem() in msg
    with pytest.raises(DeviceError, match="cuda:1"):
        resolve_device("cuda:1", what="train.device")


@no_gpu
def test_auto_falls_back_to_the_cpu_saying_why_once(caplog, monkeypatch):
    monkeypatch.setattr(devices, "_warned", set())  # a fresh process
    with caplog.at_level(logging.WARNING, logger="facemask.core.devices"):
        assert resolve_device("auto", what="train.device") == torch.device("cpu")
        assert resolve_device("auto", what="train.device") == torch.device("cpu")  # a stage asks twice
    assert "train.device auto: running on the CPU because" in caplog.text and devices.cuda_problem() in caplog.text
    assert caplog.text.count("running on the CPU") == 1


def test_the_reasons(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "is a CPU-only build" in devices.cuda_problem()
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)

    def old_driver():
        raise RuntimeError("The NVIDIA driver on your system is too old (found version 11040).")
    monkeypatch.setattr(torch.cuda, "init", old_driver)
    assert devices.cuda_problem() == (f"torch {torch.__version__} is built for CUDA 13.0, but CUDA does not start: "
                                      "The NVIDIA driver on your system is too old (found version 11040).")
    monkeypatch.setattr(torch.cuda, "init", lambda: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert devices.cuda_problem().endswith("sees no CUDA device (CUDA_VISIBLE_DEVICES='')")


@pytest.fixture
def three_gpus(monkeypatch, tmp_path):
    """CUDA usable with 3 devices; lock files in a temp folder of this test."""
    monkeypatch.setattr(devices, "cuda_problem", lambda: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(devices, "_gpu_key", lambda i: f"test-{i}")
    monkeypatch.setattr(devices.tempfile, "gettempdir", lambda: str(tmp_path))
    yield
    devices.release_gpus()


def test_processes_and_indices(three_gpus):
    assert resolve_device("cuda:2") == torch.device("cuda", 2)
    with pytest.raises(DeviceError, match="sees 3 GPU"):
        resolve_device("cuda:3")
    # under torchrun: cuda:LOCAL_RANK, one process per GPU
    assert resolve_device("cuda", local_rank=1, world=4) == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="LOCAL_RANK=3 but 3 GPU"):
        resolve_device("cuda", local_rank=3, world=4)
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES"):
        resolve_device("cuda:1", world=2)


def test_one_process_per_gpu_takes_a_free_one(three_gpus, caplog):
    """`dvc queue start -j 3` on 3 GPUs: each experiment's process takes a GPU no other holds. The locks are
    per open file, so within this one process each claim counts like another process's."""
    got = [resolve_device("cuda").index for _ in range(3)]
    assert got == [0, 1, 2]
    with caplog.at_level(logging.WARNING, logger="facemask.core.devices"):
        assert resolve_device("auto").index == 0              # all held: share the first, and say so
    assert "all 3 GPUs are held" in caplog.text
    devices.release_gpus()
    assert resolve_device("cuda").index == 0                  # released: free again
