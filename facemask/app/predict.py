"""`facemask predict`: face masks for any video, a folder of frames or a folder of face crops.

The video is streamed: frames are decoded one at a time (`cv2.VideoCapture`), the face is found
in each by a landmarker (`facemask.app.locate`: MediaPipe's face mesh by default, or dlib's landmark
tracker), its box smoothed over time with a bounded delay, squared and cropped
like the training crops, and the crops of consecutive frames go to the cascade in T-frame windows,
up to `batch` windows per forward pass. At most about ``(2·batch + 1)·T + delay`` frames are held at any
time, whatever the video's length.

Threads: decoding (`facemask.app.sources.Prefetch`), the network (`facemask.app.segmenters.WindowQueue`)
and writing (`facemask.app.outputs.Writer`) each run in a thread of their own beside the landmarker's, so
that on two cores MediaPipe's graph, the encoders and the PNG / video encoders overlap; the learned methods'
encoders run in ONNX Runtime where `facemask export` has exported them (`facemask.app.runtime`).

Windows. A window holds T consecutive frames of one face segment (frames with a face, without a
gap); a segment that ends inside a window (a frame without a face, or the end of the video) leaves a
shorter window, filled up to T by repeating its last crop. The ConvLSTM is causal, so the padding
does not change the primary model's labels of the real frames (the cascade's eye and mouth boxes,
found over the whole window, weigh the last frame a little more). With ``state="stream"`` (the default)
the primary ConvLSTM's state is carried from window to window of a segment and starts at zero on its
first; with ``"window"`` it starts at zero in every window, as in training.

Outputs, in ``--out DIR`` (written in a temporary folder next to it and renamed at the end, so a
run that fails leaves no DIR behind):

* ``labels/<frame>.png`` — one single-channel palette PNG per frame at the frame's size: pixel values
  are class ids (0 background, 1 skin, 2 eyes, 3 lips, 4 inner mouth), shown in the paper's colours.
  A frame without a face gets an all-background PNG, and is listed in the summary.
* ``boxes.csv`` — per frame the crop box (x0, y0, x1, y1; empty: no face) and whether the detector
  found the face in that frame (0: bridged by interpolation, or no face).
* ``overlay.mp4`` (or ``.avi``) — the frames with the masks blended in and the crop box drawn.
* ``summary.json`` — frames, faces found, frames without a face, the landmarker (its licence, the faces
  it saw per frame, its smoothing), where the encoders ran (``runtime``), timings per phase (each phase's
  own thread's wall time), CPU time (``cpu_s``: the whole process's setup and total, and the main, decoding,
  network and writing threads' own; the rest is the landmarker's and the runtimes' threads), frames/s.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import cv2
import torch
from tqdm import tqdm

from facemask.app.locate import FaceLocator, make_landmarker
from facemask.app.outputs import FrameItem, Writer, check_out, estimate_bytes, write_errors
from facemask.app.segmenters import (LEARNED_METHODS, STATES, WindowQueue, choose_method, load_segmenter, models_data,
                                     models_warning)
from facemask.app.runtime import RUNTIMES, usable_cores
from facemask.app.sources import FrameSource, Prefetch, open_source
from facemask.core.errors import PredictError
from facemask.core.io import atomic_dir
from facemask.data.labels import CLASS_NAMES
from facemask.inference.detect import DETECTORS
from facemask.inference.landmarker import LANDMARKERS, DlibLandmarker, Landmarker

#: ``--detector`` and ``--detect-every`` defaults (the dlib landmarker), chosen by measurement (README
#: "Speed", DESIGN.md)
DEFAULT_DETECTOR, DEFAULT_DETECT_EVERY = "hog", 10


def default_threads() -> int:
    """Every core this process may use but one: decoding and writing run in threads of their own and
    take the last one. (Measured, 2 cores: one torch thread made the FCN method 15.4 frames/s, two 7.1,
    with other work on the machine; README, "Speed".)"""

    return max(1, usable_cores() - 1)



def predict(input: str | Path, out: str | Path, models: str | Path = "models", cropped: bool = False,
            device: str = "auto", batch: int = 4, video: bool = True, video_format: str = "mp4",
            fps: float = 30.0, overwrite: bool = False, max_gap: int = 5, smooth: int = 3,
            progress: bool = True, threads: int | None = None, segmenter=None, method: str = "auto",
            detector: str = DEFAULT_DETECTOR, detect_every: int = DEFAULT_DETECT_EVERY,
            landmarker: str | None = None, face: int | None = None, landmark_smoothing: bool = False,
            state: str = "stream", runtime: str = "auto") -> dict:
    """Masks for every frame of `input`, written to `out`; returns the summary (also in summary.json).

    Args:
        input: a video file, a folder of frames, or with `cropped` a folder of face crops.
        out: output folder, created atomically (it must not exist or be empty; with `overwrite` it may
            hold the outputs of an earlier `predict`, and nothing else).
        models: folder with ``{face,eyes,mouth}/convlstm.pt``.
        cropped: the images are face crops already (made like the training crops): no detection.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch: T-frame windows per forward pass.
        video: write the overlay video; `video_format` ``mp4`` (mp4v) or ``avi`` (MJPG).
        fps: frame rate of the overlay for folder input (a video keeps its own).
        max_gap: learned methods: frames without a face between two found faces that are bridged by
            interpolating the box.
        smooth: learned methods: the face box is the median over ±`smooth` frames.
        progress: show a tqdm bar on stderr.
        threads: torch's and OpenCV's CPU threads (None: `default_threads`; ONNX Runtime: one more, `onnx_threads`).
        method: ``auto`` (`choose_method`), ``landmarks`` (masks from the 68 landmarks of each frame),
            ``cascade`` (the paper's final model), ``primary`` (the face ConvLSTM-FCN alone) or ``fcn`` (the
            per-frame baseline FCN).
        landmarker: ``mediapipe`` or ``dlib`` (`facemask.app.locate.make_landmarker`); None: mediapipe where
            it is installed, else dlib with a warning.
        face: None: the most prominent whole face (`facemask.inference.landmarker.pick_face`); N: the N-th from
            the left (0-based) when the face is acquired; a warning when fewer than N + 1 faces are ever in view.
        landmark_smoothing: the One-Euro filter on the landmarks (`facemask.inference.landmarker.ONE_EURO`); off by
            default: it lags moving faces (less mask mIoU on moving real faces, `bench/bench_realface.py`).
        state: ``stream`` (the primary ConvLSTM-FCN carries its state across the windows of a face segment,
            `facemask.app.segmenters.WindowQueue`; scored better in every seed, README) or ``window`` (the
            paper's: every T-frame window from the zero state). No effect on ``fcn`` and ``landmarks``.
        detector: the dlib landmarker's ``hog``, ``cnn`` or ``haar`` (`facemask.inference.detect`): finds the
            face on the first frame, whenever the track is lost, and every `detect_every` frames.
        detect_every: re-detect every this many frames (0: only when the track is lost).
        runtime: where the learned methods' encoders run on the CPU (`facemask.app.runtime`): ``auto`` (ONNX
            Runtime where `facemask export` has written an up-to-date export beside each model, else torch),
            ``torch``, ``onnx`` (an error when an export is missing or stale).
        segmenter: instead of loading `models`: any callable taking windows (lists of T RGB uint8 crops)
            and returning their label maps, with an attribute ``T`` (as `facemask.inference.fusion.Cascade`).

    Raises:
        PredictError: bad input or models; OutputError: an output folder that cannot or must not be
            written (`check_out`, checked before the models load). Nothing is left at `out`.
    """
    check_arguments(batch=batch, max_gap=max_gap, smooth=smooth, detect_every=detect_every, fps=fps,
                    method=method, detector=detector, threads=threads, landmarker=landmarker, face=face, state=state,
                    runtime=runtime)
    threads = threads or default_threads()
    cv2.setNumThreads(threads)
    t_start, c_start = time.perf_counter(), time.process_time()
    out = Path(out)
    source = open_source(input, cropped, fps)
    given = segmenter is not None
    check_out(out, overwrite, {"input": source.path, **({} if given else {"models": Path(models)})},
              estimate_bytes(source, video))
    method, reason, data = pick_method(method, models, given)
    lm, lm_warning = (None, None) if cropped and method != "landmarks" else make_landmarker(
        landmarker, face=face, detector=detector, detect_every=detect_every, fps=source.fps,
        smoothing=landmark_smoothing)
    with contextlib.closing(lm) if lm is not None else contextlib.nullcontext():  # MediaPipe's graphs
        if not given and method != "landmarks":
            torch.set_num_threads(threads)
            segmenter = load_segmenter(models, method, device, batch, state, runtime)
        run = _PredictRun(source, segmenter, method, lm, batch=batch, cropped=cropped, detector=detector,
                          detect_every=detect_every, smooth=smooth, max_gap=max_gap)
        t_setup, run.cpu_setup = time.perf_counter() - t_start, time.process_time() - c_start
        with write_errors(out), atomic_dir(os.path.abspath(out)) as tmp:
            run.segment(tmp, video, video_format, progress)
            warnings = [w for w in [None if given else models_warning(method, data), lm_warning] if w] + run.warnings
            warnings += runtime_warnings(segmenter)
            run.cpu_total = time.process_time() - c_start
            summary = run.summary(time.perf_counter() - t_start, t_setup, reason=reason, data=data, threads=threads,
                                  models=None if given or method == "landmarks" else str(models), warnings=warnings)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def check_arguments(*, batch: int, max_gap: int, smooth: int, detect_every: int, fps: float, method: str,
                    detector: str, threads: int | None, landmarker: str | None = None,
                    face: int | None = None, state: str = "stream", runtime: str = "auto") -> None:
    """`predict`'s settings, before anything is read. Raises PredictError naming the option."""
    for name, value, least in (("--batch", batch, 1), ("--max-gap", max_gap, 0), ("--smooth", smooth, 0),
                               ("--detect-every", detect_every, 0)):
        if value < least:
            raise PredictError(f"{name} {value}: must be at least {least}")
    if not fps > 0:
        raise PredictError(f"--fps {fps}: must be positive")
    if method not in ("auto", "landmarks", *LEARNED_METHODS):
        raise PredictError(f"--method {method!r}: valid: auto, landmarks, {', '.join(LEARNED_METHODS)}")
    if detector not in DETECTORS:
        raise PredictError(f"--detector {detector!r}: valid: {', '.join(DETECTORS)}")
    if threads is not None and threads < 1:
        raise PredictError(f"--threads {threads}: must be at least 1")
    if landmarker is not None and landmarker not in LANDMARKERS:
        raise PredictError(f"--landmarker {landmarker!r}: valid: {', '.join(LANDMARKERS)}")
    if face is not None and face < 0:
        raise PredictError(f"--face {face}: must be at least 0 (0 is the leftmost face)")
    if state not in STATES:
        raise PredictError(f"--state {state!r}: valid: {', '.join(STATES)}")
    if runtime not in RUNTIMES:
        raise PredictError(f"--runtime {runtime!r}: valid: {', '.join(RUNTIMES)}")


def runtime_warnings(segmenter) -> list[str]:
    """Why an encoder ran in torch although an export is there (stale, or onnxruntime missing)."""
    return [f"{region} encoder in torch: {swap.reason}" for region, swap in getattr(segmenter, "runtimes", {}).items()
            if swap.warn]


def pick_method(method: str, models: str | Path, segmenter_given: bool) -> tuple[str, str, dict | None]:
    """(method, why, the models' training data): ``--method auto`` resolved by `choose_method`."""
    if segmenter_given:
        return (method if method != "auto" else "cascade"), "a segmenter was given", None
    if method == "auto":
        method, reason, data = choose_method(models)
        return method, f"auto: {reason}", data
    return method, "--method", models_data(models)


class _PredictRun:
    """One `predict` run after the checks: frames decoded, located, segmented and written in order."""

    def __init__(self, source: FrameSource, segmenter, method: str, landmarker: Landmarker | None, *, batch: int,
                 cropped: bool, detector: str, detect_every: int, smooth: int, max_gap: int):
        self.source, self.segmenter, self.method, self.batch = source, segmenter, method, batch
        self.landmarks_only = method == "landmarks"
        self.detector, self.detect_every, self.cropped = detector, detect_every, cropped
        self.smooth, self.max_gap = smooth, max_gap
        self.timings = {"decode": 0.0, "detection": 0.0, "landmarks": 0.0, "network": 0.0, "writing": 0.0}
        self.windows: WindowQueue | None = None
        self.locator = FaceLocator(None, self.landmarks_only, cropped, landmarker, smooth, max_gap, self.timings)
        self.frames, self.warnings = 0, []
        self.cpu_setup = self.cpu_total = 0.0  # CPU seconds of the whole process (every thread)
        self.cpu = {"main": 0.0, "decode": 0.0, "network": 0.0, "writing": 0.0}  # ... and of our own threads

    def segment(self, tmp: Path, video: bool, video_format: str, progress: bool) -> None:
        """Every frame through the locator, the network and the writer into `tmp`."""
        source = self.source
        self.writer = Writer(tmp, source, video, video_format)
        bar = tqdm(total=source.count, unit="frame", desc="predict", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)
        self.windows = self.locator.windows = WindowQueue(self.segmenter, self.batch, self.writer, self.timings, bar)
        decoder = Prefetch(source)
        c0 = time.thread_time()
        try:
            for name, frame in decoder:
                self.frames += 1
                self.locator.add(FrameItem(name, frame))
            self.locator.finish()
            self.windows.finish()
        finally:
            self.cpu["main"] = time.thread_time() - c0
            self.windows.close()
            decoder.close()
            self.writer.close()
            bar.close()
        self.cpu.update(decode=decoder.cpu_seconds, network=self.windows.cpu_seconds,
                        writing=self.writer.cpu_seconds)
        self.timings["decode"] = decoder.seconds
        self.timings["writing"] = self.writer.seconds - self.writer.mask_seconds
        self.timings["landmarks"] += self.writer.mask_seconds
        if self.frames == 0:
            raise PredictError(f"{source.path}: no frame could be decoded")
        warning = self.locator.face_warning()
        if warning:
            self.warnings.append(warning)
        if source.kind == "video" and self.frames != source.count:
            self.warnings.append(f"{source.path}: the header announces {source.count} frames, {self.frames} could "
                                 "be decoded (a truncated or damaged file?)")

    def summary(self, total: float, t_setup: float, *, reason: str, data: dict | None, threads: int,
                models: str | None, warnings: list[str]) -> dict:
        """What ``summary.json`` says about the run."""
        source, counts, lm = self.source, self.writer.counts, self.locator.landmarker
        learned = not self.landmarks_only
        dlib = isinstance(lm, DlibLandmarker) and not self.cropped
        return {
            "input": str(source.path), "kind": source.kind, "frames": self.frames, "frames_announced": source.count,
            "frame_size": list(source.size), "fps": source.fps, "method": self.method, "method_reason": reason,
            "models_data": data, "faces_found": self.windows.with_face, "frames_detected": counts["detected"],
            "frames_tracked": counts["tracked"], "frames_bridged": counts["bridged"], "frames_lost": counts["lost"],
            "frames_without_face": self.windows.no_face, "classes": list(CLASS_NAMES),
            "outputs": {"labels": "labels/<frame>.png", "boxes": "boxes.csv",
                        "overlay": self.writer.video_path.name if self.writer.video_path else None},
            "models": models,
            "device": (str(getattr(self.segmenter, "device", "")) or None) if learned else None,
            "window": self.segmenter.T if learned else None,
            "state": ("stream" if getattr(self.segmenter, "stream", None) is not None else "window")
            if learned and self.method != "fcn" else None,
            "batch": self.batch if learned else None,
            "runtime": {k: v.runtime for k, v in getattr(self.segmenter, "runtimes", {}).items()} if learned else None,
            "threads": threads,
            "detector": None if not dlib else {
                "name": self.detector, "detect_every": self.detect_every, "min_score": lm.tracker.min_score,
                **({"max_gap": self.max_gap, "smooth_radius": self.smooth} if learned else {})},
            "landmarks": None if lm is None else lm.licence,
            "landmarker": None if lm is None else self.landmarker_summary(),
            "timings_s": {k: round(v, 3) for k, v in {**self.timings, "setup": t_setup, "total": total}.items()},
            "cpu_s": {k: round(v, 3) for k, v in
                      {"setup": self.cpu_setup, "total": self.cpu_total, **self.cpu}.items()},
            "frames_per_s": round(self.frames / total, 2) if total > 0 else None,
            "warnings": warnings,
        }

    def landmarker_summary(self) -> dict:
        """``summary.json``'s ``landmarker``: which, its licence, the faces it saw per frame, its smoothing."""
        lm = self.locator.landmarker
        chosen = "most prominent whole" if lm.name == "mediapipe" else "largest"
        return {"name": lm.name, "licence": lm.licence, "face": chosen if lm.face is None else lm.face,
                "frames_by_faces_seen": None if self.cropped else dict(self.locator.faces),
                "most_faces_seen": None if self.cropped else self.locator.most_faces,
                "smoothing": None if lm.smoothing is None else lm.smoothing.settings()}
