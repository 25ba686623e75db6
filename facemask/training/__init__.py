"""Layer 3: the losses of the paper (cross-entropy, IoU loss, SegLoss) and the one training loop for every
phase and region, and its config made from the settings.

The modules are imported by name (``from facemask.training.X import ...``); this file imports nothing.
"""
__all__ = ["config", "distributed", "engine", "guard", "head", "losses", "loop"]
