"""Layer 6: the `facemask` command — `facemask predict` (sources, segmenters, face locating, outputs),
`facemask export` (`runtime`: the encoders for ONNX Runtime), `facemask check-params` and `facemask fit-mp68`
(`mp68fit`, on the annotated real faces of `realfaces`).

The modules are imported by name (``from facemask.app.X import ...``); this file imports nothing.
"""
__all__ = ["cli", "locate", "mp68fit", "outputs", "predict", "realfaces", "runtime", "segmenters", "sources"]
