"""Synthetic talking-face video in the exact 300VW layout: the embedded benchmark.

`facemask.data.synth.generate.generate(out_dir, cfg, seed)` writes ``NNN/vid.avi`` + ``NNN/annot/NNNNNN.pts`` for a
parametric 3-D face (identity, expressions over time, head pose and motion) rendered with
skin shading, eyes, brows, lips, teeth, hair, ears, neck and a cluttered room, in three
300VW-like difficulty categories, with transient degradations that the neighbouring frames
do not share. Modules: `face` (shape + landmarks), `motion` (tracks over time), `render`
(appearance), `occluders`, `degrade` (categories, camera, transients), `generate` (driver). This file imports
nothing.
"""
__all__ = ["contours", "degrade", "face", "motion", "occluders", "generate", "render"]
