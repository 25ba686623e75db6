"""Layer 4: the paper's measures on a test set — scoring the predictions, IoU reports, significance over groups
of sequences, seeds, per-subject and per-time-step tables, temporal stability, figures, the frame conditions and
memory checks, the reports the evaluate stage writes, and the paper's experiment tables from the records of
finished runs.

The modules are imported by name (``from facemask.evaluation.X import ...``); this file imports nothing.
"""
__all__ = ["conditions", "memory", "metrics", "report", "run", "scoring", "tables"]
