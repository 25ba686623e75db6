"""A stage's command line exactly as dvc.yaml gives it (`stages.command`), so tests run the stage scripts the
way `dvc repro` does, with no second copy of the paths."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stages.command import module_args

ROOT = Path(__file__).resolve().parent.parent


def stage_command(stage: str, region: str | None = None) -> list[str]:
    """``-m stages.<script> <args>``: what follows the launcher in dvc.yaml's cmd of `stage` (``train_fcn`` with
    `region`: ``train_fcn@<region>``)."""
    return module_args(f"{stage}@{region}" if region else stage, launcher="python")


def stage_args(stage: str, region: str | None = None) -> list[str]:
    """The words after ``-m stages.<script>``: what the stage's ``main(argv)`` takes."""
    return stage_command(stage, region)[2:]


def torchrun(work: Path, n: int, target: list[str], timeout: float = 300) -> tuple[int, str]:
    """``torchrun --standalone --nproc_per_node n <target>`` in `work` (`target`: `stage_command`'s
    ``-m stages.<script> <args>``, or a script and its args), one OpenMP thread per process, the project on
    PYTHONPATH: its exit status and output (stdout and stderr together). The whole process group is killed
    when it outlives `timeout` or the test stops: no worker is left behind."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n), *target]
    with subprocess.Popen(cmd, cwd=work, env=env, start_new_session=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out
