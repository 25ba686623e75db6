"""1-s clips, sampling, the subject-independent split, zoom boxes and the packed clips stage output."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from test_masks import circle_face, moving_faces, render, write_video_folder

from facemask.data.clips.build import build_clips, read_index, read_test_clips
from facemask.data.labels import EYES, INNER_MOUTH, LIPS, PALETTE, REGIONS, SKIN, read_label_png, remap_labels
from facemask.data.masks.build import build_masks
from facemask.data.masks.draw import landmarks_to_mask
from facemask.data.clips.regions import FALLBACK, crop_zoom, zoom_box
from facemask.data.clips.sampling import SPLITS, cut_clips, sample_clips, sample_count, split_sizes, split_videos
from facemask.data.clips.store import STORAGES, load_orig_labels, load_split

# ---------------------------------------------------------------------------------------------------
# Clips and sampling


def test_cut_clips_by_hand():
    # frames 1..65 without 31: runs 1..30 and 32..65 -> clips of 10 from each run's start;
    # 62..65 (4 frames) are left over
    frames = [f for f in range(1, 66) if f != 31]
    assert cut_clips(frames, 10) == [1, 11, 21, 32, 42, 52]
    assert cut_clips(range(1, 121), 30) == [1, 31, 61, 91]
    assert cut_clips([5, 3, 4], 2) == [3]
    assert cut_clips([], 30) == []


@pytest.mark.parametrize("n, fraction, expected", [
    (64, 0.1, 6),    # 6.4 -> 6
    (65, 0.1, 7),    # 6.5 -> 7 (half up)
    (15, 0.1, 2),    # 1.5 -> 2
    (4, 0.1, 1),     # 0.4 -> 0 -> at least 1
    (0, 0.1, 0),
    (4, 0.5, 2),
    (3, 0.5, 2),     # 1.5 -> 2
    (7, 1.0, 7),
])
def test_sample_count(n, fraction, expected):
    assert sample_count(n, fraction) == expected


def test_sample_clips_follow_the_fraction_and_the_seed():
    index = pd.DataFrame([(v, f, 1) for v, n in (("001", 64), ("002", 10), ("003", 3)) for f in range(1, 30 * n, 30)],
                         columns=["video", "first_frame", "category"])
    a = sample_clips(index, 0.1, seed=0)
    assert a.groupby("video").size().to_dict() == {"001": 6, "002": 1, "003": 1}
    assert a.equals(sample_clips(index, 0.1, seed=0))
    assert not a.equals(sample_clips(index, 0.1, seed=1))
    # a video's pick does not depend on the other videos
    alone = sample_clips(index[index.video == "001"], 0.1, seed=0)
    assert list(alone.first_frame) == list(a[a.video == "001"].first_frame)
    assert a.merge(index).shape[0] == len(a)  # picked clips are clips of the index


# ---------------------------------------------------------------------------------------------------
# Split


def test_split_sizes_by_hand():
    assert split_sizes(114, [93, 9, 12]) == (93, 9, 12)
    # 30 x (93, 9, 12) / 114 = 24.47, 2.37, 3.16 -> floors 24, 2, 3, the spare video to train
    assert split_sizes(30, [93, 9, 12]) == (25, 2, 3)
    assert split_sizes(30, [93, 9, 12], min_eval=3) == (24, 3, 3)
    assert split_sizes(3, [93, 9, 12]) == (1, 1, 1)
    assert split_sizes(5, [1, 0, 0]) == (3, 1, 1)  # every split non-empty
    with pytest.raises(ValueError, match="at least 3"):
        split_sizes(2, [93, 9, 12])


def test_split_videos_is_subject_independent_and_spread():
    cats = {f"{i:03d}": c for i, c in enumerate([1] * 12 + [2] * 9 + [3] * 9, start=1)}
    split = split_videos(cats, [93, 9, 12], seed=0)
    assert sorted(split) == sorted(cats)  # every video in exactly one split
    by = {s: [v for v in split if split[v] == s] for s in SPLITS}
    assert [len(by[s]) for s in SPLITS] == [24, 3, 3]
    for s in ("val", "test"):
        assert sorted(cats[v] for v in by[s]) == [1, 2, 3]
    assert split == split_videos(cats, [93, 9, 12], seed=0)
    assert split != split_videos(cats, [93, 9, 12], seed=1)


def test_split_videos_paper_proportions():
    cats = {f"{i:03d}": i % 4 for i in range(114)}
    split = split_videos(cats, [93, 9, 12], seed=3)
    counts = pd.Series(split).value_counts().to_dict()
    assert counts == {"train": 93, "val": 9, "test": 12}


# ---------------------------------------------------------------------------------------------------
# Zoom boxes


def _eyes_labels() -> np.ndarray:
    lab = np.zeros((100, 100), np.uint8)
    lab[20:90, 10:90] = SKIN
    lab[40:50, 20:80] = EYES      # one both-eye box: x 20..80, y 40..50
    lab[70:78, 40:60] = LIPS
    lab[73:75, 45:55] = INNER_MOUTH
    return lab


def test_zoom_box_by_hand():
    lab = _eyes_labels()
    # eyes: 60 x 10 at centre (50, 45); margin 0.25 -> 90 x 15; aspect 2 -> 90 x 45
    # x0 = floor(50 - 45 + 0.5) = 5, y0 = floor(45 - 22.5 + 0.5) = 23
    assert zoom_box(lab, "eyes", 0.25) == (5, 23, 95, 68)
    # own shape kept with aspect 0
    assert zoom_box(lab, "eyes", 0.25, aspect=0) == (5, 38, 95, 53)
    # mouth (lips + inner mouth): 20 x 8 at (50, 74); margin 0.5 -> 40 x 16; aspect 1 -> 40 x 40
    assert zoom_box(lab, "mouth", 0.5) == (30, 54, 70, 94)


def test_zoom_box_covers_the_window():
    a, b = _eyes_labels(), np.roll(_eyes_labels(), (6, -4), axis=(0, 1))
    # union of the eye boxes: x 16..80, y 40..56 -> centre (48, 48), 64 x 16; margin 0 -> aspect 2: 64 x 32
    assert zoom_box([a, b], "eyes", 0.0) == (16, 32, 80, 64)
    assert zoom_box(np.stack([a, b]), "eyes", 0.0) == (16, 32, 80, 64)
    # crops of different sizes in one window
    assert zoom_box([a, b[:90, :95]], "eyes", 0.0) == (16, 32, 80, 64)


def test_zoom_box_noise_bounds_and_seed():
    lab = _eyes_labels()
    cx, cy, w = 50, 45, 90  # the noiseless box (5, 23, 95, 68)
    for seed in range(20):
        x0, y0, x1, y1 = zoom_box(lab, "eyes", 0.25, noise=0.1, rng=np.random.default_rng(seed))
        assert abs((x0 + x1) / 2 - cx) <= 0.1 * w * 1.1 + 1 and abs((y0 + y1) / 2 - cy) <= 0.1 * 45 * 1.1 + 1
        assert 0.9 * w - 1 <= x1 - x0 <= 1.1 * w + 1
        assert abs((x1 - x0) / (y1 - y0) - 2) < 0.1
    assert zoom_box(lab, "eyes", 0.25, 0.1, rng=np.random.default_rng(5)) == \
        zoom_box(lab, "eyes", 0.25, 0.1, rng=np.random.default_rng(5))


def test_zoom_box_fallback_without_the_region():
    lab = np.zeros((100, 100), np.uint8)
    lab[20:90, 10:90] = SKIN  # face box x 10..90, y 20..90 (80 x 70), no eyes
    fx, fy, fw, fh = FALLBACK["eyes"]
    x0, y0, x1, y1 = zoom_box(lab, "eyes", 0.0, aspect=0)
    assert (x0 + x1) / 2 == pytest.approx(10 + fx * 80, abs=1) and (y0 + y1) / 2 == pytest.approx(20 + fy * 70, abs=1)
    assert x1 - x0 == pytest.approx(fw * 80, abs=1) and y1 - y0 == pytest.approx(fh * 70, abs=1)
    # no face at all: placed in the whole image
    x0, y0, x1, y1 = zoom_box(np.zeros((50, 100), np.uint8), "mouth", 0.0, aspect=0)
    assert (x0 + x1) / 2 == pytest.approx(50, abs=1) and (y0 + y1) / 2 == pytest.approx(50 * FALLBACK["mouth"][1], abs=1)


def test_crop_zoom_pads_outside_and_remap():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = crop_zoom(img, (-1, 2, 2, 6))
    np.testing.assert_array_equal(out, [[0, 8, 9], [0, 12, 13], [0, 0, 0], [0, 0, 0]])
    assert crop_zoom(np.zeros((10, 10, 3), np.uint8), (0, 0, 5, 3), size=8).shape == (8, 8, 3)
    lab = np.array([[0, 1, 2, 3, 4]], np.uint8)
    np.testing.assert_array_equal(remap_labels(lab, "eyes"), [[0, 0, 1, 0, 0]])
    np.testing.assert_array_equal(remap_labels(lab, "mouth"), [[0, 0, 0, 1, 2]])
    np.testing.assert_array_equal(remap_labels(lab, "face"), lab)


# ---------------------------------------------------------------------------------------------------
# The stage, end to end on a tiny set


CFG = {"length": 5, "fraction": 0.5, "split": [93, 9, 12], "official_split": True, "input_size": 24, "window": 5,
       "zoom": {"eyes": {"margin": 0.35, "noise": 0.1}, "mouth": {"margin": 0.3, "noise": 0.1}}}


@pytest.fixture(scope="module")
def mask_dir(tmp_path_factory):
    """Six videos of 20 frames (4 clips of 5 each; video 006 loses frame 8: 3 clips), through the masks stage."""
    tmp = tmp_path_factory.mktemp("clips")
    raw = tmp / "raw" / "300VW"
    for i in range(1, 7):
        v = write_video_folder(raw / f"{i:03d}", moving_faces(20, seed=i))
        if i == 6:
            (v / "annot" / "000008.pts").unlink()
    pd.DataFrame({"video": [f"{i:03d}" for i in range(1, 7)], "category": [1, 2, 3, 1, 2, 3]}).to_csv(
        raw / "metadata.csv", index=False)
    out = tmp / "300VW-Mask"
    build_masks(tmp / "raw", out, "synthetic", workers=1, progress=False)
    return out


@pytest.mark.parametrize("storage", STORAGES)
def test_build_clips(mask_dir, tmp_path, storage):
    """Both `clips.storage` forms: the same index and split files, read as the same packed arrays."""
    cfg = {**CFG, "storage": storage}
    out = tmp_path / "clips"
    meta = build_clips(mask_dir, out, cfg, seed=0, progress=False)
    index = read_index(out / "index.csv")
    # 4 clips per video (006: frames 1-7 and 9-20 -> clips 1, 9, 14), half of them: 2 per video
    assert meta["clips_available"] == 5 * 4 + 3
    assert index.groupby("video").size().to_dict() == {f"{i:03d}": 2 for i in range(1, 7)}
    assert index[index.video == "006"].first_frame.isin([1, 9, 14]).all()
    # split by video, every split non-empty, 6 x (93, 9, 12) / 114 -> 4, 1, 1
    per_split = index.groupby("split").video.unique().map(set).to_dict()
    assert [len(per_split[s]) for s in SPLITS] == [4, 1, 1]
    assert not (per_split["train"] & per_split["val"] or per_split["train"] & per_split["test"]
                or per_split["val"] & per_split["test"])
    # split files list the clips' frames in the authors' format
    lines = (out / "split" / "test_per10.txt").read_text().splitlines()
    t = index[index.split == "test"]
    assert len(lines) == 5 * len(t)
    v, f = t.iloc[0].video, int(t.iloc[0].first_frame)
    assert lines[0] == f"/images_orig/{v}_{f:06d}.jpg /labels_orig/{v}_{f:06d}.png"
    # packed arrays: shapes, dtypes, the face labels are the resized masks
    for region, classes in (("face", 5), ("eyes", 2), ("mouth", 3)):
        for s in SPLITS:
            n = int((index.split == s).sum())
            im, lb = (np.asarray(a) for a in load_split(out / region / s))
            assert im.shape == (n, 5, 24, 24, 3) and im.dtype == np.uint8
            assert lb.shape == (n, 5, 24, 24) and lb.max() < classes
    if storage == "crops":  # the frames are stored once: the same files in every region's folder
        assert (out / "eyes" / "val" / "crops_jpg.npy").samefile(out / "face" / "val" / "crops_jpg.npy")
        assert not (out / "face" / "val" / "images.npy").exists()
    else:  # dense arrays; the labels at crop resolution are kept for val only (training validates on them)
        assert (out / "eyes" / "val" / "images.npy").is_file() and not (out / "eyes" / "val" / "crops_jpg.npy").exists()
        assert load_orig_labels(out / "face" / "train") is None
    split = "train" if storage == "crops" else "val"
    row = index[index.split == split].iloc[1]
    name = f"{row.video}_{int(row.first_frame) + 2:06d}"
    lab = read_label_png(mask_dir / "labels_orig" / f"{name}.png")
    face = load_split(out / "face" / split)[1][int(row.row), 2]
    np.testing.assert_array_equal(face, cv2.resize(lab, (24, 24), interpolation=cv2.INTER_NEAREST))
    img = cv2.imread(str(mask_dir / "images_orig" / f"{name}.jpg"))
    packed = load_split(out / "face" / split)[0][int(row.row), 2]
    np.testing.assert_array_equal(packed, cv2.resize(img, (24, 24), interpolation=cv2.INTER_AREA)[..., ::-1])
    orig = load_orig_labels(out / "face" / split)              # the labels at the crop's own size
    np.testing.assert_array_equal(orig[int(row.row) * 5 + 2], lab)
    # zoom boxes: one per window of 5 frames, in the crop's pixels; eye labels are remapped crops
    boxes = np.load(out / "eyes" / split / "boxes.npy")
    assert (boxes == boxes[:, :1]).all()
    assert boxes.dtype == np.float32 and (boxes == boxes.round()).all()
    x0, y0, x1, y1 = boxes[int(row.row), 2].astype(int)
    eye = load_split(out / "eyes" / split)[1][int(row.row), 2]
    expect = crop_zoom(remap_labels(lab, "eyes"), (x0, y0, x1, y1), 24, cv2.INTER_NEAREST)
    np.testing.assert_array_equal(eye, expect)
    assert eye.max() == 1
    np.testing.assert_array_equal(load_orig_labels(out / "eyes" / split)[int(row.row) * 5 + 2],
                                  crop_zoom(remap_labels(lab, "eyes"), (x0, y0, x1, y1)))
    # what fuse / evaluate read
    test = read_test_clips(out)
    assert [c["row"] for c in test] == list(range(len(test))) and len(test[0]["names"]) == 5
    for name in ("contact_face.png", "contact_eyes.png", "contact_mouth.png", "meta.json"):
        assert (out / name).is_file()
    assert json.loads((out / "eyes" / "meta.json").read_text())["classes"] == 2
    assert json.loads((out / "meta.json").read_text())["splits"]["test"]["clips"] == len(t)
    # deterministic for the seed
    out2 = tmp_path / "clips2"
    build_clips(mask_dir, out2, cfg, seed=0, progress=False)
    assert read_index(out2 / "index.csv").equals(index)
    np.testing.assert_array_equal(np.asarray(load_split(out2 / "mouth" / "val")[0]),
                                  np.asarray(load_split(out / "mouth" / "val")[0]))


def test_masks_of_the_sampled_clips_only_give_the_same_clips(mask_dir, tmp_path):
    """`masks.frames: sampled`: the masks stage draws the clips (as the clips stage would) and writes only
    their frames; the clips stage's output is then the same as from every frame's masks."""
    sampling = {"length": 5, "fraction": 0.5, "seed": 0}
    sampled = tmp_path / "300VW-Mask"
    summary = build_masks(mask_dir.parent / "raw", sampled, "synthetic", workers=1, progress=False,
                                sampling=sampling)
    # 6 videos x 2 of their (4, 4, 4, 4, 4, 3) clips x 5 frames, of 20 x 6 - 1 usable frames
    assert summary["kept"] == 119 and summary["written"] == len(list((sampled / "labels_orig").glob("*.png"))) == 60
    assert summary["sampling"]["clips_available"] == 23 and summary["sampling"]["clips"] == 12
    a, b = tmp_path / "from_all", tmp_path / "from_sampled"
    meta_a = build_clips(mask_dir, a, {**CFG, "official_split": False}, seed=0, progress=False)
    meta_b = build_clips(sampled, b, {**CFG, "official_split": False}, seed=0, progress=False)
    assert meta_a == meta_b
    assert (a / "index.csv").read_text() == (b / "index.csv").read_text()
    for region in REGIONS:
        for s in SPLITS:
            for f in sorted(p.name for p in (a / region / s).iterdir()):
                assert (a / region / s / f).read_bytes() == (b / region / s / f).read_bytes(), (region, s, f)
    with pytest.raises(ValueError, match="rerun the masks stage"):   # sampled with other params
        build_clips(sampled, tmp_path / "other", {**CFG, "fraction": 1.0}, seed=0, progress=False)


def test_build_clips_official_split(tmp_path):
    """The authors' release: split files used as they are, clips cut from the frames they list."""
    root = tmp_path / "raw" / "300VW-Mask-Dataset"
    (root / "images_orig").mkdir(parents=True)
    (root / "labels_orig").mkdir()
    p = circle_face(30, 30, 0.6)
    rgb = np.asarray(PALETTE, np.uint8)[landmarks_to_mask(p, 60, 60)]
    listed = {"train": [("114", range(1, 11)), ("124", range(31, 36))],
              "val": [("203", range(6, 11))], "test": [("410", list(range(1, 6)) + [8])]}
    for parts in listed.values():
        for v, frames in parts:
            for f in frames:
                cv2.imwrite(str(root / "images_orig" / f"{v}_{f:06d}.jpg"), render(p, 60, 60, seed=f))
                cv2.imwrite(str(root / "labels_orig" / f"{v}_{f:06d}.png"), rgb[..., ::-1])
    split = root / "data_splits" / "split_1"
    split.mkdir(parents=True)
    texts = {s: "".join(f"/images_orig/{v}_{f:06d}.jpg /labels_orig/{v}_{f:06d}.png\n" for v, fr in parts for f in fr)
             for s, parts in listed.items()}
    for s, text in texts.items():
        (split / f"{s}_per10.txt").write_text(text)
    cv2.imwrite(str(root / "images_orig" / "114_000020.jpg"), render(p, 60, 60, seed=20))  # in no split file
    cv2.imwrite(str(root / "labels_orig" / "114_000020.png"), rgb[..., ::-1])
    every = build_masks(tmp_path / "raw", tmp_path / "all", "300vw-mask", workers=1, progress=False)
    mask_dir = tmp_path / "300VW-Mask"
    listed_only = build_masks(tmp_path / "raw", mask_dir, "300vw-mask", workers=1, progress=False,
                                    sampling={"length": 5, "fraction": 0.1, "seed": 0, "official_split": True})
    assert (every["kept"], "written" in every, listed_only["written"]) == (27, False, 26)
    assert not (mask_dir / "images_orig" / "114_000020.jpg").exists()
    out = tmp_path / "clips"
    meta = build_clips(mask_dir, out, CFG, seed=0, source="300vw-mask", progress=False)
    index = read_index(out / "index.csv")
    assert [(r.split, r.video, r.first_frame) for r in index.itertuples()] == [
        ("train", "114", 1), ("train", "114", 6), ("train", "124", 31), ("val", "203", 6), ("test", "410", 1)]
    assert list(index.category) == [1, 1, 1, 2, 3]  # the official 300VW categories of 114, 124, 203, 410
    for s, text in texts.items():
        assert (out / "split" / f"{s}_per10.txt").read_text() == text
    assert meta["official"]["test"] == {"lines": 6, "frames_in_clips": 5}
    assert load_split(out / "face" / "train")[1].shape == (3, 5, 24, 24)
