"""Datasets, augmentation and the sharded sampler of facemask.data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _clips import write_clips

from facemask.data.clips.loaders import (ClipDataset, ShardedBatchSampler, batch_to_device, check_split, eval_batches,
                                    make_loader, micro_sizes, train_batches)
from facemask.data.clips.store import load_split


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"), clips={"train": 3, "val": 1}, length=12, size=24)


def test_frames_are_every_frame_of_every_clip(clips):
    images, labels = load_split(clips / "train")
    ds = ClipDataset(clips / "train")
    assert len(ds) == 3 * 12
    x, y = ds[12 + 7]                               # clip 1, frame 7: uint8 as stored
    assert x.dtype == torch.uint8 and x.shape == (3, 24, 24) and y.dtype == torch.uint8 and y.shape == (24, 24)
    assert torch.equal(x, torch.from_numpy(np.array(images[1, 7])).permute(2, 0, 1))
    assert torch.equal(y, torch.from_numpy(np.array(labels[1, 7])))
    xf, yl = batch_to_device(x[None], y[None], torch.device("cpu"))   # as the models take them, made on the device
    assert xf.dtype == torch.float32 and yl.dtype == torch.int64
    assert torch.equal(xf[0], torch.from_numpy(np.array(images[1, 7])).permute(2, 0, 1).float() / 255)
    assert torch.equal(yl[0], torch.from_numpy(np.array(labels[1, 7])).long())


def test_windows_start_at_multiples_of_T_and_drop_the_tail(clips):
    images, labels = load_split(clips / "train")
    ds = ClipDataset(clips / "train", window=5)     # 12 frames: windows 0-4 and 5-9; 10, 11 dropped
    assert len(ds) == 3 * 2
    x, y = ds[2 * 2 + 1]                            # clip 2, second window: frames 5..9
    assert x.shape == (5, 3, 24, 24) and y.shape == (5, 24, 24)
    assert torch.equal(x, torch.from_numpy(np.array(images[2, 5:10])).permute(0, 3, 1, 2))
    assert torch.equal(y, torch.from_numpy(np.array(labels[2, 5:10])))


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
        assert x.dtype == torch.uint8 and set(y.unique().tolist()) <= set(range(5))
        changed += not torch.equal(x, plain[0])
    assert changed >= 3  # the draws differ between epochs (p = 0.5 flip, 0.7 affine, ...)


def test_augmentation_depends_on_seed_epoch_index_only(clips):
    a, b = (ClipDataset(clips / "train", augment=True, seed=3) for _ in range(2))
    b[5], b[9]                                      # reading other items first changes nothing
    a.set_epoch(2), b.set_epoch(2)
    assert all(torch.equal(u, v) for u, v in zip(a[4], b[4]))
    b.set_epoch(3)
    assert not torch.equal(a[4][0], b[4][0])
    c = ClipDataset(clips / "train", augment=True, seed=3)  # the epoch can come with the index instead
    assert all(torch.equal(u, v) for u, v in zip(a[4], c[(2, 4)])) and torch.equal(b[4][0], c[(3, 4)][0])


def test_loader_workers_change_nothing(clips):
    """Two epochs through one loader whose two workers persist = two epochs read in the main process."""
    ds = ClipDataset(clips / "train", augment=True, seed=0)
    got = []
    for w in (0, 2):
        sampler = ShardedBatchSampler(len(ds), 4, seed=0)
        loader = make_loader(ds, sampler, workers=w)
        assert loader.persistent_workers == (w > 0)
        epochs = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            epochs.append([torch.cat([x.flatten(), y.flatten()]) for x, y in loader])
        got.append(epochs)
    for e in (0, 1):
        assert len(got[0][e]) == len(got[1][e]) == 9 and all(torch.equal(u, v) for u, v in zip(got[0][e], got[1][e]))
    assert not all(torch.equal(u, v) for u, v in zip(got[1][0], got[1][1]))  # epoch 1: new order and draws


def test_processes_and_accumulation_see_the_same_micro_batches():
    one = list(ShardedBatchSampler(40, 8, seed=5, accum=4))
    ranks = [list(ShardedBatchSampler(40, 8, seed=5, rank=r, world=2, accum=2)) for r in range(2)]
    # step s: process 0 takes micro-batches 0, 1 of the global batch, process 1 takes 2, 3
    for s in range(5):
        assert one[4 * s:4 * s + 2] == ranks[0][2 * s:2 * s + 2]
        assert one[4 * s + 2:4 * s + 4] == ranks[1][2 * s:2 * s + 2]
    assert sorted(i for _, i in sum(one, [])) == list(range(40))  # an epoch is a permutation
    assert {e for e, _ in sum(one, [])} == {0}                     # items carry their epoch


def test_any_process_count_cuts_the_global_batch():
    assert micro_sizes(16, 3) == [6, 5, 5] and micro_sizes(2, 4) == [1, 1, 0, 0] and micro_sizes(8, 4) == [2] * 4
    # the paper's N = 2 sequences on 4 processes: two take one sequence each (loss x 2/(4*1) ... i.e.
    # divided by 0.5, so DDP's mean over 4 processes is the mean over the 2 sequences); two take the
    # batch's first sequence with weight 0
    ranks = [ShardedBatchSampler(10, 2, seed=1, rank=r, world=4) for r in range(4)]
    assert [s.divisors for s in ranks] == [[0.5], [0.5], [0.0], [0.0]]
    for step, batch in enumerate(train_batches(10, 2, seed=1, epoch=0)):
        got = [list(s)[step] for s in ranks]
        assert [i for _, i in got[0] + got[1]] == batch.tolist()       # the real items: the global batch
        assert got[2] == got[3] == [(0, int(batch[0]))]                # padding
    # 16 frames on 3 processes: 6 / 5 / 5, each loss weighted by its share (divisor 16 / (3 * size))
    three = [ShardedBatchSampler(32, 16, seed=0, rank=r, world=3) for r in range(3)]
    assert [len(next(iter(s))) for s in three] == [6, 5, 5]
    assert sum(1 / s.divisors[0] for s in three) / 3 == pytest.approx(1.0)   # DDP's mean of the weights
    assert sorted(i for s in three for _, i in next(iter(s))) == sorted(train_batches(32, 16, 0, 0)[0].tolist())


def test_bad_combinations_fail_with_a_reason():
    assert check_split(2, world=4) == 2                          # two idle processes: allowed
    with pytest.raises(ValueError, match="accum <= 1"):
        check_split(2, world=2, accum=2)                       # 4 micro-batches for 2 items
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        check_split(2, world=4, sync_bn=True)                  # padding would enter the statistics
    with pytest.raises(ValueError, match="at least 1"):
        check_split(0)


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
