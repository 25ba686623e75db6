"""Shared fixtures."""
from __future__ import annotations

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


@pytest.fixture
def one_thread():
    """Tiny tensors, many small ops: one thread (OpenMP barriers cost more than they save, the more so
    on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
