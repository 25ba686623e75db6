"""What segments the face crops in `facemask predict`: the learned methods, and `--method auto`'s choice.
"""
from __future__ import annotations

import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import torch

from facemask.app.outputs import FrameItem, Writer
from facemask.app.runtime import Swap, use_exported
from facemask.core import devices
from facemask.core.errors import PredictError
from facemask.data.labels import REGION_CLASS_IDS, REGIONS
from facemask.inference.fusion import Cascade, Stream, prepare_model, window_labels
from facemask.models.registry import load_checkpoint, load_model


def load_facemask_model(path: Path, hint: str):
    """The facemask model at `path`, or a PredictError saying it is missing (with `hint`) or unreadable."""
    if not path.is_file():
        raise PredictError(f"{path}: model missing ({hint})")
    with warnings.catch_warnings(record=True) as caught:  # torch warns about a bad file before it fails
        warnings.simplefilter("always")
        try:
            model = load_model(path)
        except Exception:  # torch and pickle raise many kinds, with advice that is not for users
            raise PredictError(f"not a facemask model file (or corrupted): {path}") from None
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return model


def load_cascade(models_dir: str | Path, device: str = "auto", batch: int = 4, runtime: str = "auto"):
    """The cascade of ``models_dir/{face,eyes,mouth}/convlstm.pt`` (`facemask.inference.fusion.Cascade`), checked.

    Each model must be a facemask checkpoint trained for its region's classes: face 5 (background,
    skin, eyes, lips, inner mouth), eyes 2 (background, eye), mouth 3 (background, lips, inner mouth).
    `runtime`: where the encoders run (`facemask.app.runtime.use_exported`); the cascade's ``runtimes``
    attribute says per region which did, and why not ONNX Runtime.

    Raises:
        PredictError: naming the folder or file and what is wrong.
    """

    device = predict_device(device)
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise PredictError(f"{models_dir}: models folder not found (train them with `dvc repro`, "
                           "or pass --models DIR)")
    models, runtimes = {}, {}
    for region in REGIONS:
        classes = len(REGION_CLASS_IDS[region])
        path = models_dir / region / "convlstm.pt"
        model = load_facemask_model(path, f"{models_dir} needs face/, eyes/ and mouth/convlstm.pt")
        if model.classes != classes:
            raise PredictError(f"{path}: this {region} model was trained for {model.classes} classes; "
                               f"the cascade needs {classes}")
        models[region] = model
        runtimes[region] = use_exported(model, path, runtime, device)
    try:
        cascade = Cascade(models["face"], models["eyes"], models["mouth"], device=device, batch=batch)
    except ValueError as e:
        raise PredictError(f"{models_dir}: {e}") from None
    cascade.runtimes = runtimes
    return cascade


#: The learned methods of ``--method`` (``landmarks`` and ``auto`` need no models).
LEARNED_METHODS = ("cascade", "primary", "fcn")
#: ``--state``: ``window``, the paper's (every T-frame window from the zero state), or ``stream`` (the
#: ConvLSTM state carried from window to window of a face segment; `facemask.inference.fusion.Stream`).
STATES = ("window", "stream")


class SingleModel:
    """One face model behind the segmenter interface of `predict`: the primary ConvLSTM-FCN alone
    (``--method primary``) or the per-frame FCN (``--method fcn``), on T-frame windows of face crops.
    With `stream` the ConvLSTM carries its state from one call's windows to the next's until `reset`."""

    def __init__(self, model, device: str = "auto", batch: int = 4, stream: bool = False):
        self.device = devices.resolve_device(device, what="train.device")
        self.runtimes: dict[str, Swap] = {}
        self.model = prepare_model(model, self.device)
        self.size = int(model.config["input_size"])
        self.T = int(model.config.get("T") or 5)
        self.batch = int(batch)
        self.stream = Stream() if stream else None

    def reset(self) -> None:
        """Start a new stream (a new face segment)."""
        if self.stream is not None:
            self.stream.reset()

    def __call__(self, windows):
        return window_labels(self.model, windows, self.size, self.batch, self.device, stream=self.stream)


def load_segmenter(models_dir: str | Path, method: str = "cascade", device: str = "auto", batch: int = 4,
                   state: str = "stream", runtime: str = "auto"):
    """What `predict` runs: the cascade (`load_cascade`), or with `method` ``primary`` / ``fcn`` the face
    model ``models_dir/face/{convlstm,fcn}.pt`` alone (`SingleModel`). `state` ``stream``: the primary
    ConvLSTM-FCN carries its state across the windows of a face segment (`STATES`; the FCN has none).
    `runtime`: `facemask.app.runtime.RUNTIMES` (the encoders in ONNX Runtime, from `facemask export`'s files);
    the segmenter's ``runtimes`` says per model which ran them.

    Raises:
        PredictError: an unknown method or state, or a missing, unreadable or wrong-class model file.
    """
    if method not in LEARNED_METHODS:
        raise PredictError(f"--method {method!r}: valid: {', '.join(LEARNED_METHODS)}")
    if state not in STATES:
        raise PredictError(f"--state {state!r}: valid: {', '.join(STATES)}")
    if method == "cascade":
        cascade = load_cascade(models_dir, device, batch, runtime)
        if state != "stream":
            return cascade
        streaming = cascade.streaming()
        streaming.runtimes = cascade.runtimes
        return streaming
    path = Path(models_dir) / "face" / ("convlstm.pt" if method == "primary" else "fcn.pt")
    model = load_facemask_model(path, "train it with `dvc repro`, or pass --models DIR")
    if model.classes != 5 or "input_size" not in model.config:
        raise PredictError(f"{path}: a face model needs 5 classes and its input size; this one has "
                           f"{model.classes} classes")
    single = SingleModel(model, device, batch, stream=state == "stream" and method == "primary")
    single.runtimes = {"face": use_exported(model, path, runtime, single.device)}
    return single


#: ``data.source`` values that are real video: models trained on them are used on real faces.
REAL_SOURCES = ("300vw", "300vw-mask")


def models_data(models_dir: str | Path) -> dict | None:
    """What the face model in `models_dir` was trained on: its ``config["data"]`` (``source``, ``videos``),
    ``{}`` for a model file from before this was recorded, None when there is no readable face model."""

    for name in ("convlstm.pt", "fcn.pt"):
        path = Path(models_dir) / "face" / name
        if path.is_file():
            try:
                return dict(load_checkpoint(path)["config"].get("data") or {})
            except Exception:  # unreadable: load_segmenter names the problem if a learned method is asked for
                return None
    return None


def choose_method(models_dir: str | Path) -> tuple[str, str, dict | None]:
    """``--method auto``: (method, why, the models' training data).

    The learned cascade when the face model was trained on real video (`REAL_SOURCES`); the landmark
    method when it was trained on the synthetic benchmark (such models do not transfer to real faces:
    README) or when there is no face model. A model file that does not record its training data
    (written before this was recorded) keeps the cascade, which is what `predict` did before, with a warning.
    """
    data = models_data(models_dir)
    if data is None:
        return "landmarks", f"no readable face model in {models_dir}", None
    source, videos = data.get("source"), data.get("videos")
    if source is None:
        return "cascade", f"the models in {models_dir} do not record what they were trained on (older files)", data
    if source in REAL_SOURCES:
        return "cascade", f"the models were trained on real video ({source}, {videos} videos)", data
    return "landmarks", (f"the models were trained on {source} data ({videos} videos), which does not transfer "
                         "to real faces"), data


def models_warning(method: str, data: dict | None) -> str | None:
    """The warning for a learned method whose models were not trained on real video."""
    if method == "landmarks" or data is None:
        return None
    source = data.get("source")
    if source is None:
        return ("the models do not record what they were trained on; if they were trained on the synthetic "
                "benchmark they will not work on real faces (try --method landmarks)")
    if source not in REAL_SOURCES:
        return (f"the models were trained on {source} data ({data.get('videos')} videos): on real video they "
                "do not transfer (16.5 % mIoU measured on real faces, README); use --method landmarks for real video")
    return None


def predict_device(device: str):
    """``--device``: ``auto``/``cpu``/``cuda``/``cuda:N`` -> a torch.device (`facemask.core.devices.resolve_device`),
    or a PredictError saying why not."""
    try:
        return devices.resolve_device(device, what="--device")
    except (RuntimeError, ValueError) as e:
        raise PredictError(str(e)) from None


class WindowQueue:
    """Located frames -> T-frame windows of one face segment -> the network, up to `batch` windows at a time
    -> the writer, in frame order.

    A face segment is a run of frames with a face whose boxes overlap from frame to frame: a frame without a
    face, or a box that jumps (no overlap with the previous one: the face was lost and another found), starts a
    new one. A window never spans two segments, and the segmenter's ``reset`` (when it has one: the cascade's
    box memory, a streaming ConvLSTM's state) is called before the first window of each.

    The network runs in a thread of its own (torch releases the GIL while it computes), so the segmenter works
    on one batch of windows while the caller locates the faces of the next: with MediaPipe's graph and the
    network on two cores, the cascade's frame time is the slower of the two instead of their sum. One batch
    runs at a time, in order (the segmenter's state and box memory follow the stream). An idle network thread
    gets each window as soon as it is closed; a busy one finds the windows closed meanwhile, up to `batch`,
    when it is done, and the caller waits when `batch` windows are ready before that. (Handing windows over
    only `batch` at a time left the network idle while the first batch filled and alone while the last ran:
    on 2 cores, `bench/bench_predict.py`'s cascade, 4 interleaved runs each, the hand-over when idle was 5 to
    9 % faster in every pair.) The grouping changes no label but where two classes tie to float precision
    (`tests/test_runtime.py`). Frames held: the running batch, the one being filled and the frames
    without a face among them, at most about ``2·batch·T`` (`hold`) plus the open window.
    """

    def __init__(self, segmenter, batch: int, writer: Writer, timings: dict, bar):
        self.segmenter, self.T, self.batch = segmenter, getattr(segmenter, "T", 1), batch
        self.writer, self.timings, self.bar = writer, timings, bar
        self.hold = 2 * batch * self.T  # frames queued beyond which the network is waited for
        self.queue: deque[FrameItem] = deque()  # every frame not yet written, in order
        self.window: list[FrameItem] = []       # the open window of the current face segment
        self.ready: list[tuple[list[FrameItem], bool]] = []  # closed windows waiting, and whether each starts a segment
        self.starts, self.last_box = True, None  # the open window starts a segment; the last frame's box
        self.no_face: list[str] = []
        self.with_face = 0
        # torch's thread count is the calling thread's own (OpenMP): a new thread would run a team of one per
        # core, whose spinning workers cost as much CPU again as the work on a busy 2-core machine
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="facemask-network", initializer=torch.set_num_threads,
                                        initargs=(torch.get_num_threads(),))
        self._running: Future | None = None     # the batch the network thread is on
        self.cpu_seconds = 0.0                  # the network thread's CPU time

    def add(self, item: FrameItem, box) -> None:
        """Queue a located frame: `box` is its crop box in frame pixels, or None (no face). A frame whose
        label is already there or drawn by the writer (``--method landmarks``) goes straight to the writer."""
        item.box = box
        if box is None or (self.last_box is not None and not _overlap(box, self.last_box)):
            self._close()
            self.starts = True
        self.last_box = box
        if box is None:
            self.no_face.append(item.name)
        elif item.done:
            self.with_face += 1
        else:
            self.with_face += 1
            x0, y0, x1, y1 = box
            item.crop = cv2.cvtColor(item.frame[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
            self.window.append(item)
            if len(self.window) == self.T:
                self._close()
        self.queue.append(item)
        # an idle network thread takes what is ready; a long stretch without a face behind a waiting window must
        # not pile up frames
        if self.ready and (len(self.ready) >= self.batch or len(self.queue) > self.hold or self._idle()):
            self._network()
        if len(self.queue) > self.hold:
            self._wait()
        self._write()

    def finish(self) -> None:
        """Segment what is left, wait for the network and write every frame."""
        self._close()
        if self.ready:
            self._network()
        self._wait()
        self._write()

    def close(self) -> None:
        """Stop the network thread (after the batch it is on); `finish` first to keep the results."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _close(self) -> None:
        if self.window:
            self.ready.append((self.window, self.starts))
            self.window, self.starts = [], False

    def _network(self) -> None:
        """Hand the ready windows to the network thread, once it is done with the previous batch."""
        self._wait()
        self._running = self._pool.submit(self._segment, self.ready)
        self.ready = []

    def _idle(self) -> bool:
        """The network thread has no batch, or is done with it."""
        return self._running is None or self._running.done()

    def _wait(self) -> None:
        """Until the network thread's batch is done; re-raises its error."""
        if self._running is not None:
            running, self._running = self._running, None
            running.result()

    def _segment(self, ready: list) -> None:
        """The network thread: labels for the crops of `ready`, one segmenter call per run of windows of one
        segment, in order."""
        t0, c0 = time.perf_counter(), time.thread_time()
        T, reset = self.T, getattr(self.segmenter, "reset", None)
        for run in _segment_runs(ready):
            if run[0][1] and reset is not None:
                reset()
            # a short window (a segment's last) is filled up with its last crop; the ConvLSTM is causal
            labels = self.segmenter([[it.crop for it in w] + [w[-1].crop] * (T - len(w)) for w, _ in run])
            for (w, _), lw in zip(run, labels):
                for it, lab in zip(w, lw):
                    it.crop = None
                    it.label = lab
        self.timings["network"] += time.perf_counter() - t0
        self.cpu_seconds += time.thread_time() - c0

    def _write(self) -> None:
        if self._running is not None and self._running.done():
            self._wait()
        while self.queue and self.queue[0].done:
            self.writer.write(self.queue.popleft())
            self.bar.update(1)


def _overlap(a, b) -> bool:
    """Whether two boxes (x0, y0, x1, y1) share any pixel."""
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _segment_runs(ready: list) -> list[list]:
    """`ready` ((window, starts a segment) pairs) cut before every window that starts a segment."""
    runs: list[list] = []
    for item in ready:
        if item[1] or not runs:
            runs.append([])
        runs[-1].append(item)
    return runs
