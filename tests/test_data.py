"""Datasets, augmentation and the sharded sampler of facemask.data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _clips import write_clips

from facemask.data import ClipDataset, ShardedBatchSampler, eval_batches, load_split, make_loader, train_batches


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"), clips={"train": 3, "val": 1}, length=12, size=24)


def test_frames_are_every_frame_of_every_clip(clips):
    images, labels = load_split(clips / "train")
    ds = ClipDataset(clips / "train")
    assert len(ds) == 3 * 12
    x, y = ds[12 + 7]                               # clip 1, frame 7
    assert x.dtype == torch.float32 and x.shape == (3, 24, 24) and y.dtype == torch.int64 and y.shape == (24, 24)
    assert torch.equal(x, torch.from_numpy(np.array(images[1, 7])).permute(2, 0, 1).float() / 255)
    assert torch.equal(y, torch.from_numpy(np.array(labels[1, 7])).long())


def test_windows_start_at_multiples_of_T_and_drop_the_tail(clips):
    images, labels = load_split(clips / "train")
    ds = ClipDataset(clips / "train", window=5)     # 12 frames: windows 0-4 and 5-9; 10, 11 dropped
    assert len(ds) == 3 * 2
    x, y = ds[2 * 2 + 1]                            # clip 2, second window: frames 5..9
    assert x.shape == (5, 3, 24, 24) and y.shape == (5, 24, 24)
    assert torch.equal(x, torch.from_numpy(np.array(images[2, 5:10])).permute(0, 3, 1, 2).float() / 255)
    assert torch.equal(y, torch.from_numpy(np.array(labels[2, 5:10])).long())


def test_one_draw_for_every_frame_of_a_window(tmp_path):
    # a window of one frame repeated: after augmentation the frames (and labels) must still be equal
    root = write_clips(tmp_path, clips={"train": 1}, length=1, size=32)
    for name in ("images.npy", "labels.npy"):
        a = np.load(root / "train" / name)
        np.save(root / "train" / name, np.repeat(a, 5, axis=1))
    plain = ClipDataset(root / "train", window=5)[0]
    changed = 0
    for epoch in range(4):
        ds = ClipDataset(root / "train", window=5, augment=True, seed=1)
        ds.set_epoch(epoch)
        x, y = ds[0]
        assert all(torch.equal(x[t], x[0]) and torch.equal(y[t], y[0]) for t in range(5))
        assert 0.0 <= x.min() and x.max() <= 1.0 and set(y.unique().tolist()) <= set(range(5))
        changed += not torch.equal(x, plain[0])
    assert changed >= 3  # the draws differ between epochs (p = 0.5 flip, 0.7 affine, ...)


def test_augmentation_depends_on_seed_epoch_index_only(clips):
    a, b = (ClipDataset(clips / "train", augment=True, seed=3) for _ in range(2))
    b[5], b[9]                                      # reading other items first changes nothing
    a.set_epoch(2), b.set_epoch(2)
    assert all(torch.equal(u, v) for u, v in zip(a[4], b[4]))
    b.set_epoch(3)
    assert not torch.equal(a[4][0], b[4][0])


def test_loader_workers_change_nothing(clips):
    ds = ClipDataset(clips / "train", augment=True, seed=0)
    sampler = ShardedBatchSampler(len(ds), 4, seed=0)
    got = [[torch.cat([x.flatten(), y.flatten().float()]) for x, y in make_loader(ds, sampler, workers=w)]
           for w in (0, 2)]
    assert all(torch.equal(u, v) for u, v in zip(*got)) and len(got[0]) == len(got[1]) == 9


def test_processes_and_accumulation_see_the_same_micro_batches():
    one = list(ShardedBatchSampler(40, 8, seed=5, accum=4))
    ranks = [list(ShardedBatchSampler(40, 8, seed=5, rank=r, world=2, accum=2)) for r in range(2)]
    # step s: process 0 takes micro-batches 0, 1 of the global batch, process 1 takes 2, 3
    for s in range(5):
        assert one[4 * s:4 * s + 2] == ranks[0][2 * s:2 * s + 2]
        assert one[4 * s + 2:4 * s + 4] == ranks[1][2 * s:2 * s + 2]
    assert sorted(sum(one, [])) == list(range(40))  # an epoch is a permutation
    with pytest.raises(ValueError, match="not divisible"):
        ShardedBatchSampler(40, 6, seed=0, world=4)


def test_train_batches_are_full_and_reshuffled_each_epoch():
    e0, e1 = train_batches(10, 3, seed=0, epoch=0), train_batches(10, 3, seed=0, epoch=1)
    assert [len(b) for b in e0] == [3, 3, 3]         # the partial batch is dropped
    assert len(set(np.concatenate(e0))) == 9 and not all(np.array_equal(a, b) for a, b in zip(e0, e1))
    assert len(train_batches(100, 3, seed=0, epoch=0, max_batches=2)) == 2


def test_eval_shares_cover_every_item_once():
    shares = [sum(eval_batches(11, 4, r, 3), []) for r in range(3)]
    assert sorted(sum(shares, [])) == list(range(11)) and all(shares)


def test_bad_arrays_are_named(tmp_path):
    d = tmp_path / "face" / "train"
    d.mkdir(parents=True)
    np.save(d / "images.npy", np.zeros((2, 4, 8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        load_split(d)
    np.save(d / "labels.npy", np.zeros((2, 4, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="labels.npy"):
        load_split(d)
