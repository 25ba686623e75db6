"""Layer 0: what every other layer stands on — errors and signals, atomic writes, process pools, devices,
the methods scored (by name), the settings (their schema and files), CPU-independent arithmetic, confusion
matrices and IoU.

The modules are imported by name (``from facemask.core.X import ...``); this file imports nothing.
"""
__all__ = ["devices", "errors", "exact", "io", "iou", "methods", "paramfile", "params", "pool"]
