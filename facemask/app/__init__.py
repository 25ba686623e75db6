"""Layer 6: the `facemask` command — `facemask predict` (sources, segmenters, face locating, outputs),
`facemask params` / `facemask check-params` (the settings' files) and `facemask exp` (the paper's sweeps as DVC
experiments, their records, the tables, the hold oracle).

The modules are imported by name (``from facemask.app.X import ...``); this file imports nothing.
"""
__all__ = ["cli", "exp_command", "experiments", "hold_oracle", "locate", "outputs", "predict", "segmenters",
           "settings", "sources", "sweeps"]
