"""Where a model runs: ``auto | cpu | cuda | cuda:N``, and, when CUDA cannot be used, why.

* ``cpu``: the CPU.
* ``cuda`` / ``cuda:N``: a GPU, or a `DeviceError` naming the reason — a CPU-only build of torch, no
  driver, a driver older than the CUDA version torch was built for (torch's own message, which gives the
  driver's version), no visible device, fewer devices than N. Never a silent fallback: the paper's
  configuration asks for ``cuda`` so that a broken CUDA set-up stops the run instead of training for days
  on the CPU.
* ``auto``: CUDA when it is usable, else the CPU with a warning that gives the reason.

Processes and GPUs:

* Under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes ``cuda:LOCAL_RANK``, one process per GPU;
  ``cuda:N`` is then an error (choose the GPUs with ``CUDA_VISIBLE_DEVICES``).
* A single process asking for ``cuda`` on a machine with several GPUs takes the first GPU that no other
  facemask process on the machine holds (an advisory lock file per GPU in the temp folder, held until the
  process exits; all taken: it shares the first one, with a warning). So ``dvc queue start -j N`` spreads
  N queued experiments over N GPUs without a setting; ``cuda:N`` pins one GPU.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import torch

from facemask.core.errors import FacemaskError

log = logging.getLogger(__name__)

SPEC = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")
VALID = "auto, cpu, cuda, cuda:N"

_claimed: dict[int, int] = {}  # GPU index -> the open file descriptor of its lock (held while the process lives)


class DeviceError(FacemaskError, RuntimeError):
    """The device asked for cannot be used; the message says which setting and why (a stage prints it as
    one ``error:`` line, `facemask.core.errors.run`)."""


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here (None when it can): the torch build, the driver, the devices."""
    if not torch.backends.cuda.is_built() or torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)"
    try:
        torch.cuda.init()
    except Exception as e:  # torch says which: no driver, a driver too old for this build, no device ...
        return f"torch {torch.__version__} is built for CUDA {torch.version.cuda}, but CUDA does not start: {e}"
    if torch.cuda.device_count() == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"
                + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""))
    return None


def _gpu_key(index: int) -> str:
    """A name for GPU `index` that is the same in every process, whatever its CUDA_VISIBLE_DEVICES."""
    try:
        return str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # an old driver without UUIDs: the index
        return f"index{index}"


def claim_gpu(count: int) -> int:
    """The first of `count` GPUs that no other facemask process holds, now held by this one (see above)."""
    import fcntl

    for i in range(count):
        if i in _claimed:
            continue
        path = Path(tempfile.gettempdir()) / f"facemask-gpu-{_gpu_key(i)}.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _claimed[i] = fd
        return i
    log.warning("all %d GPUs are held by other facemask processes; sharing cuda:0", count)
    return 0


def release_gpus() -> None:
    """Let go of the GPUs this process claimed (they are also released when it exits)."""
    for fd in _claimed.values():
        os.close(fd)
    _claimed.clear()


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log `message` the first time this process meets it (a stage resolves its device more than once)."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def resolve_device(spec: str | torch.device, *, local_rank: int = 0, world: int = 1,
                   what: str = "device") -> torch.device:
    """The torch device for `spec` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).

    Args:
        spec: the setting, or a torch.device (returned as it is).
        local_rank, world: this process's place under torchrun (LOCAL_RANK, WORLD_SIZE).
        what: the setting's name for the messages (``train.device``, ``--device``).

    Raises:
        ValueError: `spec` is none of the valid forms.
        DeviceError: CUDA asked for and not usable (the reason), or a GPU that is not there.
    """
    if isinstance(spec, torch.device):
        return spec
    m = SPEC.match(str(spec))
    if not m:
        raise ValueError(f"{what} {spec!r}; valid: {VALID}")
    if spec == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if spec == "auto":
        if problem:
            _warn_once(f"{what} auto: running on the CPU because {problem}")
            return torch.device("cpu")
        spec = "cuda"
    elif problem:
        raise DeviceError(f"{what} {spec}: {problem}")
    count = torch.cuda.device_count()
    index = None if m.group(2) is None else int(m.group(2))
    if world > 1:
        if index is not None:
            raise DeviceError(f"{what} {spec} with {world} processes: each process takes cuda:LOCAL_RANK; "
                              f"set {what} to cuda and choose the GPUs with CUDA_VISIBLE_DEVICES")
        if local_rank >= count:
            raise DeviceError(f"{what} {spec}: process LOCAL_RANK={local_rank} but {count} GPU(s) visible; "
                              f"start at most {count} processes per node (torchrun --nproc_per_node)")
        return torch.device("cuda", local_rank)
    if index is not None:
        if index >= count:
            raise DeviceError(f"{what} {spec}: torch sees {count} GPU(s) (cuda:0 .. cuda:{count - 1})")
        return torch.device("cuda", index)
    return torch.device("cuda", claim_gpu(count) if count > 1 else 0)
