"""The clips stage: 1-s clips and the split by subject (`sampling`), the eye / mouth zoom regions (`regions`),
the packed clips on disk (`store`), the stage itself (`build`), and the datasets and loaders training reads
(`loaders`).

This file imports nothing.
"""
__all__ = ["build", "loaders", "regions", "sampling", "store"]
