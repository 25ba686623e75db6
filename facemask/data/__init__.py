"""Layer 1: 300VW and the data stages — landmarks, videos, the download, the synthetic benchmark, labels and
masks, 1-s clips and their split, the eye / mouth zoom regions, the clip store and the training datasets.

The modules are imported by name (``from facemask.data.X import ...``); this file imports nothing.
"""
__all__ = [
    "clips", "datasets", "labels", "landmarks", "layout", "mask_dataset", "masks", "raw", "realface",
    "regions", "sampling", "sheets", "store", "video", "synth",
]
