"""Layer 5: running the models and the baselines on video — the cascade, temporal smoothing, face detectors,
the landmark tracker and the landmarkers (dlib's tracker, MediaPipe's face mesh), every method's predictions
on the test clips.

The modules are imported by name (``from facemask.inference.X import ...``); this file imports nothing.
"""
__all__ = ["detect", "fusion", "landmarker", "mesh", "mp68", "predictions", "probes", "smoothing", "tracker"]
