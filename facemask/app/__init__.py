"""Layer 6: the `facemask` command — `facemask predict` (sources, segmenters, face locating, outputs),
`facemask export` (`runtime`: the encoders for ONNX Runtime), the test videos as `facemask predict` runs them
(`located`), `facemask params` / `facemask check-params` (the settings' files), `facemask exp` (the paper's
sweeps as DVC experiments, their records, the tables, the hold oracle) and `facemask fit-mp68` (`mp68fit`, on
the annotated real faces of `realfaces`).

The modules are imported by name (``from facemask.app.X import ...``); this file imports nothing.
"""
__all__ = ["cli", "exp_command", "experiments", "hold_oracle", "locate", "located", "mp68fit", "outputs", "predict",
           "realfaces", "runtime", "segmenters", "settings", "sources", "sweeps"]
