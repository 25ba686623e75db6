"""Stage `export`: the trained models' encoders for ONNX Runtime -> models/onnx/<region>/<name>.onnx.

    python -m stages.export --models models

What `facemask export` does (`facemask.app.runtime.export_models`): each exportable checkpoint of the models
folder (``face/{convlstm,fcn}.pt``, ``{eyes,mouth}/convlstm.pt``) gets its encoder exported, checked against torch
and stamped with the checkpoint's SHA-256, so that `facemask predict` (and the `located` stage) runs the encoders in
ONNX Runtime on a CPU. Reads no params.
"""
from __future__ import annotations

from facemask.app.runtime import export_line, export_models
from stages._common import run_stage, setup_logging, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args("export", "models", argv=argv)
    log = setup_logging()
    for checkpoint, diff in export_models(args.models):
        log.info("export: %s", export_line(checkpoint, diff))


if __name__ == "__main__":
    run_stage(main)
