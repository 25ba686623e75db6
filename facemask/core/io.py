"""Atomic file and directory writes: a stage never leaves half-written outputs.

Everything is written under a temporary name next to its destination and renamed into
place at the end (a rename within one file system is atomic on POSIX). The temporary names
are hidden siblings, ``.<name>.tmp-<pid>-<random>`` (and ``.<name>.old-<pid>`` for the moment
an old folder is swapped out). A run that fails, or is stopped by Ctrl-C, SIGTERM or SIGHUP
(`facemask.core.errors`), removes its own; one killed outright (SIGKILL, power loss) cannot, so
every write first removes the siblings that a process no longer running left behind.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_siblings(path: str | Path) -> list[Path]:
    """Remove the temporary siblings of `path` that an interrupted run left behind; return them.

    A sibling whose name carries the id of a running process is kept (another run is writing);
    one without an id is from before ids were added (``.<name>.tmp-<random>``,
    ``.<name>.<random>.tmp``) and is removed too. Only names made from `path`'s own name match.
    """
    path = Path(path)
    if not path.name or not path.parent.is_dir():
        return []
    own = re.compile(rf"^\.{re.escape(path.name)}\.(?:(?:tmp|old)-(\d+)(?:-\w+)?|tmp-\w{{8}}|\w{{8}}\.tmp)$")
    removed = []
    with os.scandir(path.parent) as entries:
        stale = [(e.path, e.is_dir(follow_symlinks=False), m) for e in entries if (m := own.match(e.name))]
    for p, is_dir, m in stale:
        if m.group(1) and (int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1)))):
            continue
        if is_dir:
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        log.warning("removed %s, left by an interrupted run", p)
        removed.append(Path(p))
    return removed


def _tmp_prefix(path: Path, kind: str = "tmp") -> str:
    return f".{path.name}.{kind}-{os.getpid()}-"


def _tmp_sibling(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path, kind), dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
    return tmp


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` only if the block succeeds.

    On error the temporary directory is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = _tmp_sibling(path, "tmp")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists() or path.is_symlink():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")  # see remove_stale_siblings
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """Open a temporary file that replaces `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | Path, obj, indent: int = 2) -> None:
    with atomic_file(path, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=False)
        f.write("\n")


def save_ragged(path: str | Path, arrays: list[np.ndarray]) -> None:
    """2-D uint8 arrays of different shapes as ``<path>`` (their values, flat) and ``<path stem>_shapes.npy``
    ((n, 2) int64): the clips stage's ``labels_orig.npy``, every frame's labels at its crop's own size.
    Plain ``.npy`` files, not ``.npz``: a zip member carries the time it was written."""
    path = Path(path)
    shapes = np.array([a.shape for a in arrays], dtype=np.int64).reshape(-1, 2)
    flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.uint8)
    np.save(path, flat.astype(np.uint8))
    np.save(_shapes_path(path), shapes)


def _shapes_path(path: Path) -> Path:
    return path.with_name(path.stem + "_shapes.npy")


def load_ragged(path: str | Path) -> list[np.ndarray]:
    """The arrays written by `save_ragged`, in order."""
    path = Path(path)
    flat, shapes = np.load(path), np.load(_shapes_path(path))
    ends = np.cumsum(shapes.prod(axis=1))
    if (ends[-1] if len(ends) else 0) != flat.size:
        raise ValueError(f"{path}: {flat.size} values for shapes that need {ends[-1] if len(ends) else 0}")
    return [flat[e - h * w:e].reshape(h, w) for (h, w), e in zip(shapes, ends)]
