"""Layer 6: the `facemask` command — `facemask predict` (sources, segmenters, face locating, outputs) and
`facemask params` / `facemask check-params` (the settings' files).

The modules are imported by name (``from facemask.app.X import ...``); this file imports nothing.
"""
__all__ = ["cli", "locate", "outputs", "predict", "segmenters", "settings", "sources"]
