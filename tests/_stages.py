"""A stage's command line exactly as dvc.yaml gives it (`stages.command`), so tests run the stage scripts the
way `dvc repro` does, with no second copy of the paths."""
from __future__ import annotations

from stages.command import module_args


def stage_command(stage: str, region: str | None = None) -> list[str]:
    """``-m stages.<script> <args>``: what follows the launcher in dvc.yaml's cmd of `stage` (``train_fcn`` with
    `region`: ``train_fcn@<region>``)."""
    return module_args(f"{stage}@{region}" if region else stage, launcher="python")


def stage_args(stage: str, region: str | None = None) -> list[str]:
    """The words after ``-m stages.<script>``: what the stage's ``main(argv)`` takes."""
    return stage_command(stage, region)[2:]
