"""Layer 5: running the models and the baselines on video — the cascade, temporal smoothing, face detectors
and the landmark tracker.

The modules are imported by name (``from facemask.inference.X import ...``); this file imports nothing.
"""
__all__ = ["detect", "fusion", "probes", "smoothing", "tracker"]
