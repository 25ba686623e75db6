"""Layer 2: the networks — the encoder, the paper's FCN / ConvLSTM / ConvLSTM-FCN, Table 2's VGG-16
baselines, and the registry that builds, saves and loads them by name.

The modules are imported by name (``from facemask.models.X import ...``); this file imports nothing.
"""
__all__ = ["baselines", "encoder", "nets", "registry"]
