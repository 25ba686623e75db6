"""The encoders of `facemask predict` in ONNX Runtime on the CPU: `facemask export`, and the swap at load time.

Where the time goes: the three encoders' convolutions and batch norms are about three quarters of the
cascade's network time in torch on a CPU (cProfile of `facemask.inference.fusion.Cascade` on 4 windows x 5
crops, default models, 1 thread). ONNX Runtime's CPU execution provider (batch norm folded into the
convolutions, convolution + activation fused, its own kernels) runs the same encoder in less time than torch's
eager mode: the face encoder 2.9 instead of 4.1 CPU ms a 128-px crop, the cascade's whole network ~0.7 ms a
frame less (``bench/bench_predict.py --runtime torch`` against the default).

Only the encoder (`facemask.models.encoder.EncoderNet.features`) is exported: its input is a batch of frames
of one size, however many windows a call holds. The rest stays in torch: the ConvLSTM (its sequence length
changes with the windows of a call, and a stream carries its state), ``conv6``, the bilinear resize.

Files: `export_models` (``facemask export``, and the pipeline's ``export`` stage) writes
``onnx/<region>/<name>.onnx`` in a models folder for every ``<region>/<name>.pt`` of it, with the SHA-256 of
the checkpoint it was made from in its metadata; `use_exported` swaps one in only when that checksum is the
checkpoint's (a retrained model makes its export stale: predict then runs
the encoder in torch and says why).

Floating point: ONNX Runtime sums the convolutions in another order, so the scores differ from torch's in the
last digits (~1e-5) and an arg-max can flip where two classes tie to that precision; `EXPORT_ATOL` bounds
the features' difference at export, and tests/test_runtime.py compares the labels of both runtimes.

onnxruntime is needed to run an export, onnx and onnxscript (torch's exporter) to make one; both are
imported when used, so a torch-only install still predicts.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facemask.core.errors import PredictError
from facemask.core.io import atomic_file
from facemask.models.nets import FCN, ConvLSTMFCN
from facemask.models.registry import load_model

#: ``--runtime``: ``auto`` (ONNX Runtime where an up-to-date export is there, torch otherwise), ``torch``,
#: ``onnx`` (ONNX Runtime, or an error saying what is missing).
RUNTIMES = ("auto", "torch", "onnx")
#: The checkpoints a models folder may hold, relative to it (`facemask.app.segmenters`).
CHECKPOINTS = ("face/convlstm.pt", "face/fcn.pt", "eyes/convlstm.pt", "mouth/convlstm.pt")
#: The export's metadata key holding the checkpoint's SHA-256.
SOURCE_KEY = "facemask_source_sha256"
#: The networks whose forward runs `EncoderNet.features`: the paper's (Table 2's VGG-16 baselines, which a
#: ``face/fcn.pt`` may be with ``model.arch``, score their own layers and are left to torch).
EXPORTABLE = (FCN, ConvLSTMFCN)
#: Largest |ONNX Runtime - torch| allowed on the encoder's features of random frames at export.
EXPORT_ATOL = 1e-3
INSTALL = "pip install onnxruntime==1.32.0 onnx==1.22.0 onnxscript==0.7.2"


def export_path(checkpoint: Path) -> Path:
    """Where the export of a checkpoint ``<models>/<region>/<name>.pt`` goes: ``<models>/onnx/<region>/<name>.onnx``
    (a folder of its own, which the pipeline's ``export`` stage writes as one output)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent / "onnx" / checkpoint.parent.name / f"{checkpoint.stem}.onnx"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Features(nn.Module):
    """A model's encoder alone: (N, 3, S, S) RGB in [0, 1] -> its last feature map (`EncoderNet.features`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise PredictError(f"onnxruntime is not installed ({e}): `{INSTALL}`") from None
    return onnxruntime


#: The exporter's loggers, which report every rewrite pass at INFO (quieted to warnings while exporting).
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx")


@contextlib.contextmanager
def _quiet(names: tuple[str, ...]):
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_encoder(checkpoint: Path) -> float | None:
    """Export the encoder of `checkpoint` to `export_path` (atomically); returns the largest difference of its
    features from torch's on random frames (checked against `EXPORT_ATOL`), or None for a network that is not
    `EXPORTABLE` (nothing written).

    Raises:
        PredictError: onnx / onnxscript missing, or an export whose features differ from torch's.
    """
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it, and onnx)
    except ImportError as e:
        raise PredictError(f"exporting needs onnx and onnxscript ({e}): `{INSTALL}`") from None
    model = load_model(checkpoint).eval()
    if not isinstance(model, EXPORTABLE):
        return None
    size = int(model.config["input_size"])
    x = torch.rand(5, 3, size, size, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), _quiet(EXPORTER_LOGGERS):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(Features(model).eval(), (x,), dynamo=True, input_names=["frames"],
                                    output_names=["features"], dynamic_shapes={"x": {0: torch.export.Dim("n")}},
                                    verbose=False)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = SOURCE_KEY, file_sha256(checkpoint)
    data = proto.SerializeToString()
    with torch.no_grad():
        want = Features(model)(x).numpy()
    diff = float(np.abs(OnnxEncoder(data, 1)(x).numpy() - want).max())
    if not diff <= EXPORT_ATOL:
        raise PredictError(f"{checkpoint}: the ONNX export's features differ from torch's by {diff:.2g} "
                           f"(> {EXPORT_ATOL}); not written")
    export_path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(export_path(checkpoint), "wb") as f:
        f.write(data)
    return diff


def export_models(models_dir: str | Path) -> list[tuple[Path, float | None]]:
    """`export_encoder` for every checkpoint of `CHECKPOINTS` in `models_dir`: [(checkpoint, largest difference,
    or None: not exportable, left to torch)]; `export_line` says what became of each.

    Raises:
        PredictError: no such folder, or none of the checkpoints in it.
    """
    models_dir = Path(models_dir)
    found = [models_dir / c for c in CHECKPOINTS if (models_dir / c).is_file()]
    if not found:
        raise PredictError(f"{models_dir}: no model to export (looked for {', '.join(CHECKPOINTS)})")
    return [(c, export_encoder(c)) for c in found]


def export_line(checkpoint: Path, diff: float | None) -> str:
    """What `facemask export` and the ``export`` stage say of one checkpoint `export_models` went through."""
    if diff is None:
        return f"skipped {checkpoint}: a VGG-16 baseline (model.arch), which runs in torch"
    return f"wrote {export_path(checkpoint)} (largest feature difference from torch {diff:.1e})"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def onnx_threads() -> int:
    """ONNX Runtime's threads in `facemask predict`: torch's, plus one, at most every usable core.

    `predict` leaves one core to its decoding and writing threads (`facemask.app.predict.default_threads`), but
    they and the landmarker's graph leave it idle part of the time while the network thread is busy: an
    encoder's second ONNX Runtime thread (not spinning, `OnnxEncoder`) takes that time. Measured on 2 cores
    (cascade, MediaPipe, ``bench/bench_predict.py``'s video, 4 runs each, interleaved): 107 to 118 frames/s
    against 94 to 112 with one thread; a spinning second thread made it slower (76 to 81).
    """
    return min(torch.get_num_threads() + 1, usable_cores())


class OnnxEncoder:
    """An exported encoder in ONNX Runtime (CPU), called as `EncoderNet.features`: tensor in, tensor out.
    Its intra-op threads (`threads` > 1) sleep when they have nothing to do instead of spinning, so that they
    take no CPU from the landmarker's and the writing threads."""

    def __init__(self, model: Path | bytes, threads: int):
        ort = _import_ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                            providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.source = meta.get(SOURCE_KEY)
        self.version = ort.__version__

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"frames": frames})[0])


@dataclass
class Swap:
    """What `use_exported` did with one checkpoint: ``onnxruntime <version>`` or ``torch``, why not ONNX
    Runtime, and whether to warn about it (an export is there but stale, or onnxruntime is missing)."""
    runtime: str
    reason: str | None = None
    warn: bool = False


def use_exported(model: nn.Module, checkpoint: Path, runtime: str, device: torch.device) -> Swap:
    """Run `model`'s encoder from the export of `checkpoint` where `runtime` asks for it and it is usable.

    ``torch``: never. ``auto``: when the device is the CPU, onnxruntime is installed and the export is there
    and made from this very checkpoint (its SHA-256). ``onnx``: the same, or a PredictError naming what is
    missing. The model's ``features`` is replaced by the `OnnxEncoder` (an attribute of this instance only).
    """
    if runtime not in RUNTIMES:
        raise PredictError(f"--runtime {runtime!r}: valid: {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return Swap("torch")
    path = export_path(checkpoint)
    why, warn = None, False
    if not isinstance(model, EXPORTABLE):
        why = f"{type(model).__name__} is not exported (its forward does not run the encoder alone)"
    elif torch.device(device).type != "cpu":
        why = f"the device is {device} (ONNX Runtime runs the encoders on the CPU only)"
    elif not path.is_file():
        why = f"{path} is missing (`facemask export --models {checkpoint.parent.parent}` makes it)"
    else:
        try:
            encoder = OnnxEncoder(path, onnx_threads())
        except PredictError as e:  # onnxruntime missing
            why, warn = str(e), True
        except Exception as e:  # onnxruntime's own errors: a damaged file
            raise PredictError(f"{path}: not a readable ONNX export ({type(e).__name__}); "
                               f"`facemask export` writes it again") from None
        else:
            if encoder.source == file_sha256(checkpoint):
                model.features = encoder
                return Swap(f"onnxruntime {encoder.version}")
            why = (f"{path} was exported from another {checkpoint.name} (retrained since?): "
                   f"`facemask export --models {checkpoint.parent.parent}` updates it")
            warn = True
    if runtime == "onnx":
        raise PredictError(f"--runtime onnx: {why}")
    return Swap("torch", why, warn=warn)
