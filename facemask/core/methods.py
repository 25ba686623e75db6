"""The methods scored on the test set, by name: what the fuse, tracker and mesh stages write and the evaluate
stage reads (one meaning per name, for both sides of that contract).

* `CLIP_METHODS`: the paper's methods on a clip — the FCN, FCN + temporal smoothing, the primary
  ConvLSTM-FCN, the cascade (primary + zoomed eye / mouth models);
* `TEMPORAL_METHODS` (not in the paper): the primary and the cascade with the ConvLSTM state carried across
  the clip's windows, and the memoryless control, the primary's weights with the state reset at every frame;
* `LANDMARK_METHODS`: masks drawn from 68 landmarks — the paper's landmark tracker (dlib) and MediaPipe's face
  mesh (not in the paper); they use no trained model;
* the memory probes: `PROBES` (what replaces the last frame of every window), `PROBED` (the methods run on
  them), `probe_frames`; `CONTROLS`: each temporal method and its memoryless control.
"""
from __future__ import annotations

__all__ = ["CLIP_METHODS", "CONTROLS", "HELD_PROBES", "LANDMARK_METHODS", "PROBED", "PROBES", "TEMPORAL_METHODS",
           "donor_clip", "probe_frames"]

#: The paper's methods on a clip.
CLIP_METHODS = ("fcn", "fcn_smooth", "primary", "cascade")
#: Beside them (not in the paper): the state carried across windows, and the memoryless control.
TEMPORAL_METHODS = ("primary_stream", "cascade_stream", "primary_reset")
#: Masks from landmarks: the paper's tracker, and the face mesh (left out where mediapipe is missing).
LANDMARK_METHODS = ("tracker", "mesh")
#: Each temporal method and its memoryless control (the same weights, the state reset at every frame).
CONTROLS = {"primary": "primary_reset", "primary_stream": "primary_reset"}
#: What replaces the last frame of every window in the memory probes. ``black`` and ``noise`` are the training
#: corruptions (`facemask.data.clips.loaders.corrupt_window`); ``bars`` (colour bars) and ``checker`` (a checkerboard)
#: appear in no training step and no benchmark event; ``cut`` is the frame at the same place of another subject's
#: test clip (`donor_clip`): a cut in the video, which a model should follow, not hold.
PROBES = ("black", "noise", "bars", "checker", "cut")
#: The probes a memory should hold the face through (the rest, a cut, it should follow).
HELD_PROBES = ("black", "noise", "bars", "checker")
#: The methods run on the probes.
PROBED = ("fcn", "primary", "primary_stream", "primary_reset")


def probe_frames(n: int, T: int) -> list[int]:
    """The frames replaced in an n-frame clip: the last of every full T-frame window (T-1, 2T-1, ...)."""
    return [s + T - 1 for s in range(0, n - T + 1, T)]


def donor_clip(videos: list[str], k: int) -> int:
    """The clip whose frames the ``cut`` probe puts into clip `k`: the next clip (cyclically) of another subject
    (`videos`: each clip's subject); `k` itself when every clip is of one subject."""
    n = len(videos)
    return next(((k + j) % n for j in range(1, n) if videos[(k + j) % n] != videos[k]), k)
