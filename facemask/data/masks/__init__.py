"""The masks stage: landmarks -> label masks and the authors' crop (`draw`); the 300VW-Mask dataset (`build`).

This file imports nothing.
"""
__all__ = ["build", "draw"]
