"""This process's place among torchrun's processes, its device, and the process group around training.

One process (``python -m stages.train``) is rank 0 of a world of 1 and needs no group. Under
``torchrun`` every process reads RANK, WORLD_SIZE and LOCAL_RANK, takes its device
(`facemask.core.devices.resolve_device`: the local rank's GPU, or the CPU) and joins one process group
(NCCL on CUDA, gloo on the CPU) that several `facemask.training.engine.train` calls share.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from facemask.core import devices


@dataclass
class Dist:
    """A process's place: its rank, the number of processes and its rank on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block before the others (e.g. downloads pretrained weights into the cache they share)."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()


def world() -> Dist:
    """This process's place: torchrun's RANK, WORLD_SIZE, LOCAL_RANK (one process: 0, 1, 0)."""
    env = os.environ
    return Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def join(device: str) -> tuple[Dist, torch.device]:
    """The process's place and its device (``train.device``); under torchrun the process group is set up
    (once) and, on CUDA, the device made current."""
    d = world()
    dev = devices.resolve_device(device, local_rank=d.local_rank, world=d.world, what="train.device")
    if d.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels once
    return d, dev


@contextlib.contextmanager
def process_group(device: str):
    """One torchrun process group (none for one process) around several `train` calls, which then keep it:
    each call would otherwise set one up and tear it down, and a set-up after a tear-down fails (gloo
    and NCCL alike). Yields this process's `Dist`."""
    owns = not dist.is_initialized()
    d, _ = join(device)
    try:
        yield d
    finally:
        if owns and d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
