"""Layer 0: what every other layer stands on — errors and signals, atomic writes, process pools, devices,
the params.yaml schema, CPU-independent arithmetic, confusion matrices and IoU.

The modules are imported by name (``from facemask.core.X import ...``); this file imports nothing.
"""
__all__ = ["devices", "errors", "exact", "io", "iou", "params", "pool"]
