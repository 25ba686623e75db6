"""Layer 4: the paper's measures on a test set — IoU reports, significance over groups of sequences, seeds,
per-subject and per-time-step tables, temporal stability, figures, and the paper's experiment tables from the
records of finished runs.

The modules are imported by name (``from facemask.evaluation.X import ...``); this file imports nothing.
"""
__all__ = ["conditions", "memory", "metrics", "tables"]
