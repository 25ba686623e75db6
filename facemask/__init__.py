"""facemask: face mask extraction in video sequence (Wang et al., IJCV 2019), as a layered package.

Each layer imports only from itself and the layers listed before it (tests/test_layers.py checks it):

* `facemask.core` — errors, atomic writes, process pools, devices, the params schema, exact arithmetic, IoU;
* `facemask.data` — 300VW and its layouts: landmarks, videos, the download, the synthetic benchmark,
  labels and masks, clip sampling, zoom regions, the clip store, training datasets;
* `facemask.models` — the encoder, the FCN / ConvLSTM / ConvLSTM-FCN, Table 2's VGG-16 baselines, the
  registry of networks and their checkpoints;
* `facemask.training` — the losses and the one training loop;
* `facemask.evaluation` — the paper's measures, significance and seed statistics;
* `facemask.inference` — the cascade, temporal smoothing, face detectors and the landmark tracker;
* `facemask.app` — `facemask predict` and the command line.

A subpackage's ``__init__`` imports nothing: ``import facemask.data.masks.draw`` loads that module and what it
needs, not the whole layer. DESIGN.md has the map ("where does X live").
"""
LAYERS = ("core", "data", "models", "training", "evaluation", "inference", "app")

__all__ = list(LAYERS)
