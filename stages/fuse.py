"""Stage `fuse`: the learned methods of the paper on the test clips -> data/predictions/learned.

Reads params ``clips.window``, ``clips.zoom`` (the zoom margins), ``train.device``, ``fuse.smooth_sigma``; the test
clips (``data/clips/index.csv``, ``data/clips/face/test``, the eye and mouth test sub-datasets, read with
`facemask.data.clips.store.load_split`), the original-resolution crops ``data/300VW-Mask/images_orig`` and the
models ``models/<region>/{fcn,convlstm}.pt``, and Table 2's VGG-16 baselines that
``models/face/baselines/archs.json`` names (stage train_baselines; none by default). Writes, atomically, into
``--out``:

* ``<method>/VVV_FFFFFF.png`` for ``fcn``, ``fcn_smooth``, ``primary``, ``cascade``, the temporal methods
  ``primary_stream``, ``cascade_stream`` (the ConvLSTM state carried across the clip's windows) and
  ``primary_reset`` (the memoryless control): label PNGs (class ids, paper palette) at each crop's original
  size; also ``<arch>`` for each baseline (frame by frame, as ``fcn``);
* ``probes/<black|noise>/<method>/VVV_FFFFFF.png``: the memory probes (`facemask.inference.probes`), labels on the
  replaced frames only;
* ``boxes.csv``: the eye and mouth boxes of every window, and the fallback used;
* ``zoomed/<eyes|mouth>/<fcn|convlstm>.npy``: the zoomed models' labels on their test sub-datasets (Tables 7, 8),
  at the packed size;
* ``info.json``: clips, frames, the methods and baselines scored, the probes, how often each box fallback was
  used (no wall-clock figures, so the output's bytes follow from its inputs; the seconds per method go to the log).

The landmark methods (the paper's tracker, the face mesh) use no model: stages `tracker` and `mesh`.
"""
from __future__ import annotations

import json
import time

import pandas as pd

from facemask.core import devices
from facemask.core.io import atomic_dir
from facemask.core.methods import CLIP_METHODS, PROBED, PROBES, TEMPORAL_METHODS
from facemask.data.clips.build import read_split_clips
from facemask.data.clips.store import load_split
from facemask.inference.fusion import Cascade, ClipPredictor
from facemask.inference.predictions import write_methods, write_probes, write_zoomed
from facemask.models.registry import load_model
from stages._common import load_params, run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("fuse", "clips", "masks", "models", "out", argv=argv)
    log = setup_logging()
    params = load_params()
    clips_dir, mask_dir, models_dir, out_dir = args.clips, args.masks, args.models, args.out
    baselines_dir = models_dir / "face" / "baselines"
    device = devices.resolve_device(params.train.device, what="train.device")
    T = params.clips.window
    t_start = time.perf_counter()

    clips = read_split_clips(clips_dir, "test")
    packed, _ = load_split(clips_dir / "face" / "test")
    if len(clips) != packed.shape[0]:
        raise ValueError(f"{clips_dir / 'index.csv'} lists {len(clips)} test clips, "
                         f"{clips_dir / 'face/test'} holds {packed.shape[0]}")
    cascade = Cascade.from_dir(models_dir, params.clips.zoom.model_dump(), device)
    if cascade.T != T:
        raise ValueError(f"the face ConvLSTM-FCN was trained on T = {cascade.T}, clips.window is {T}")
    manifest = baselines_dir / "archs.json"
    archs = json.loads(manifest.read_text())["archs"] if manifest.is_file() else []
    baselines = {arch: load_model(baselines_dir / f"{arch}.pt") for arch in archs}
    predictor = ClipPredictor(load_model(models_dir / "face" / "fcn.pt"), cascade, params.fuse.smooth_sigma, baselines)
    methods = (*CLIP_METHODS, *TEMPORAL_METHODS, *baselines)
    log.info("fuse: %d test clips, T = %d, device %s; baselines: %s", len(clips), T, device, archs or "none")

    with atomic_dir(out_dir) as out:
        frames, boxes = write_methods(out, predictor, methods, clips, packed, mask_dir)
        pd.DataFrame(boxes).to_csv(out / "boxes.csv", index=False, float_format="%.5f")
        probed = write_probes(out / "probes", predictor, clips, packed, mask_dir)
        write_zoomed(out / "zoomed", clips_dir, models_dir, T, device)
        fallbacks = pd.DataFrame(boxes)["fallback"].value_counts().to_dict() if boxes else {}
        info = {"clips": len(clips), "frames": frames, "methods": list(methods), "baselines": archs,
                "box_fallbacks": {k or "none": int(v) for k, v in fallbacks.items()},
                "probes": {"kinds": list(PROBES), "methods": list(PROBED), "frames": probed}}
        (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("fuse: wrote %s (%d frames x %d methods) in %.1f s on %s; frames/s %s", out_dir, frames, len(methods),
             time.perf_counter() - t_start, device,
             {m: round(frames / s, 1) for m, s in predictor.seconds.items() if s > 0})


if __name__ == "__main__":
    run_stage(main)
