"""Names in the 300VW and 300VW-Mask layouts that several stages read and write, and 300VW's official split.

* 300VW: ``300VW_Dataset_2015_12_14/NNN/{vid.avi, annot/NNNNNN.pts}`` (`DATASET_DIR`; written under
  ``data/raw/300VW``); the authors' 300VW-Mask release unpacks to `MASK_DATASET_DIR`.
* 300VW-Mask (the masks stage's output): ``images_orig/VVV_FFFFFF.jpg`` and ``labels_orig/VVV_FFFFFF.png``,
  one pair per frame, named by `frame_stem`; ``frames.csv`` with `FRAME_COLUMNS`; `SAMPLED_CLIPS` when
  only the sampled 1-s clips' frames were written.
"""
from __future__ import annotations

#: ``data/raw``'s folder of 300VW videos (``NNN/vid.avi``, ``NNN/annot/``), downloaded or synthetic.
VIDEOS_DIR = "300VW"
#: The folder the official archive unpacks to, and the one of the authors' release.
DATASET_DIR = "300VW_Dataset_2015_12_14"
MASK_DATASET_DIR = "300VW-Mask-Dataset"

#: Columns of ``frames.csv``: one row per written frame; the crop box (x0, y0, x1, y1) in frame
#: pixels, end-exclusive (empty for the authors' release, whose images are crops already); (w, h)
#: the crop's size; image / label the files relative to the dataset folder; (frame_w, frame_h)
#: the video frame's size.
FRAME_COLUMNS = ("video", "frame", "category", "x0", "y0", "x1", "y1", "w", "h",
                 "image", "label", "frame_w", "frame_h")

#: The masks stage's list of the clips it sampled (when it wrote only their frames: ``masks.frames: sampled``).
SAMPLED_CLIPS = "clips.csv"


def frame_stem(video: str, frame: int) -> str:
    """``VVV_FFFFFF``: the authors' file name of frame `frame` (1-based) of video `video`."""
    return f"{video}_{int(frame):06d}"


def parse_stem(stem: str) -> tuple[str, int]:
    """``VVV_FFFFFF`` -> (video, frame): the inverse of `frame_stem`."""
    video, _, frame = str(stem).rpartition("_")
    if not video or not frame.isdigit():
        raise ValueError(f"{stem!r} is not a VVV_FFFFFF frame name")
    return video, int(frame)


# The official split of the 114 videos (300VW page): training videos and test categories 1-3.
TRAIN = tuple(
    "001 002 003 004 007 009 010 011 013 015 016 017 018 019 020 022 025 027 028 029 031 033 034 "
    "035 037 039 041 043 044 046 047 048 049 053 057 059 112 113 115 119 120 123 138 143 144 160 "
    "204 205 223 225".split()
)
CATEGORY_1 = tuple(
    "114 124 125 126 150 158 401 402 505 506 507 508 509 510 511 514 515 518 519 520 521 522 524 "
    "525 537 538 540 541 546 547 548".split()
)
CATEGORY_2 = tuple("203 208 211 212 213 214 218 224 403 404 405 406 407 408 409 412 550 551 553".split())
CATEGORY_3 = tuple("410 411 516 517 526 528 529 530 531 533 557 558 559 562".split())
#: category id -> videos; 0 is the official training set (it has no test category).
CATEGORIES: dict[int, tuple[str, ...]] = {0: TRAIN, 1: CATEGORY_1, 2: CATEGORY_2, 3: CATEGORY_3}
_CATEGORY_OF = {v: c for c, videos in CATEGORIES.items() for v in videos}


def category_of(video: str | int) -> int:
    """The official 300VW category of a video: 0 training set, 1-3 test categories.

    Raises:
        ValueError: the video is not one of the 114 300VW videos.
    """
    name = f"{int(video):03d}" if str(video).isdigit() else str(video)
    try:
        return _CATEGORY_OF[name]
    except KeyError:
        raise ValueError(f"video {video!r} is not one of the 114 300VW videos") from None
