"""Shared fixtures."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from _archive import TINY_300VW, make_zip, write_300vw

from facemask.data.layout import DATASET_DIR


@pytest.fixture
def tiny_300vw(tmp_path):
    """A two-video ``300VW_Dataset_2015_12_14/`` folder in the real layout."""
    return write_300vw(tmp_path / "src" / DATASET_DIR, TINY_300VW)


@pytest.fixture
def tiny_300vw_zip(tiny_300vw, tmp_path):
    """`tiny_300vw` zipped as the official archive (entries under ``300VW_Dataset_2015_12_14/``)."""
    return make_zip(tiny_300vw, tmp_path / f"{DATASET_DIR}.zip")


@contextmanager
def _torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.fixture
def one_thread():
    """Tiny tensors, many small ops: one thread (OpenMP barriers cost more than they save, the more so
    on a busy machine)."""
    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_thread_per_module():
    """`one_thread` for a whole module, its module-scoped fixtures included:
    ``pytestmark = pytest.mark.usefixtures("one_thread_per_module")``."""
    with _torch_threads(1):
        yield
