"""Layer 6: the `facemask` command — `facemask predict` (sources, segmenters, face locating, outputs) and
`facemask check-params`.

The modules are imported by name (``from facemask.app.X import ...``); this file imports nothing.
"""
__all__ = ["cli", "locate", "outputs", "predict", "segmenters", "sources"]
