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

__all__ = ["CLIP_METHODS", "CONTROLS", "LANDMARK_METHODS", "PROBED", "PROBES", "TEMPORAL_METHODS", "probe_frames"]

#: The paper's methods on a clip.
CLIP_METHODS = ("fcn", "fcn_smooth", "primary", "cascade")
#: Beside them (not in the paper): the state carried across windows, and the memoryless control.
TEMPORAL_METHODS = ("primary_stream", "cascade_stream", "primary_reset")
#: Masks from landmarks: the paper's tracker, and the face mesh (left out where mediapipe is missing).
LANDMARK_METHODS = ("tracker", "mesh")
#: Each temporal method and its memoryless control (the same weights, the state reset at every frame).
CONTROLS = {"primary": "primary_reset", "primary_stream": "primary_reset"}
#: The frames that replace the last frame of every window in the memory probes.
PROBES = ("black", "noise")
#: The methods run on the probes.
PROBED = ("fcn", "primary", "primary_stream", "primary_reset")


def probe_frames(n: int, T: int) -> list[int]:
    """The frames replaced in an n-frame clip: the last of every full T-frame window (T-1, 2T-1, ...)."""
    return [s + T - 1 for s in range(0, n - T + 1, T)]
