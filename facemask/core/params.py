"""The settings: every key of ``params.yaml`` with its type, range, choices, meaning and default, in one place.

One pydantic model per section (`Params` is the whole file), one field per key. A field's default is the
embedded default's value (the CPU demo on the synthetic benchmark); the first paragraph of its docstring is
the comment ``params.yaml`` shows beside it. ``params.yaml`` itself is rendered from this module
(`facemask.core.paramfile.render`, ``facemask params defaults``; a test keeps the two equal), so a key, its
default and its meaning live here only; `facemask.training.engine.TrainConfig` and the model registry take
theirs from here or have none. `configs/paper.yaml` lists only the keys whose values differ
(`facemask.core.paramfile.load_overlay`).

Sections forbid unknown keys, and validation is strict (``batch_size: "16"`` or ``augment: 1`` are errors; a
float key takes an int). Loading, the one-line errors and overlays: `facemask.core.paramfile`.

Adding a key: a field here (type, default, constraints, a docstring whose first paragraph is its comment),
then ``facemask params defaults > params.yaml``, and the stages that read it in dvc.yaml.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")  # what facemask.core.devices.resolve_device takes
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return value


def _sha256(value: str | None) -> str | None:
    if value is not None and not _SHA256.match(value.strip()):
        raise ValueError("must be a SHA-256: 64 hexadecimal digits")
    return value


def _three_shares(value: list) -> list:
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if len(value) != 3 or not numbers or any(v < 0 for v in value) or sum(value) <= 0:
        raise ValueError("must be three non-negative numbers with a positive sum")
    return value


def _output_scale(v: Any) -> Union[float, str]:
    if v == "auto":
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ValueError("must be a number > 0 or auto")
    return float(v)


#: Three shares; the numbers stay as written (``[93, 9, 12]`` stays ints: the clips stage records them).
Shares = Annotated[list[Any], AfterValidator(_three_shares)]
Sha256 = Annotated[Union[str, None], AfterValidator(_sha256)]


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors; strict types (a float key takes an int)."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True, frozen=True)


# --------------------------------------------------------------------------------------------- data


class TransientMix(Section):
    """Relative frequency of each kind of transient event (facemask/data/synth/degrade.py; the rates: docs)."""

    blur: float = Field(1.0, ge=0)
    """Motion-blur bursts, focus hunts."""
    noise: float = Field(0.5, ge=0)
    """Sensor-noise bursts."""
    flash: float = Field(1.0, ge=0)
    """Flashes washing the frame out."""
    flicker: float = Field(0.5, ge=0)
    """Light flicker: frames alternately dark and bright."""
    drop: float = Field(1.0, ge=0)
    """Dropped frames: black, grey, green, frozen."""
    corrupt: float = Field(1.0, ge=0)
    """Lost, smeared or displaced macroblocks."""
    glitch: float = Field(0.5, ge=0)
    """Compression glitches: lowest JPEG quality, big blocks."""
    occluder: float = Field(1.0, ge=0)
    """A hand or an object swept across the face."""


class Synthetic(Section):
    """The embedded benchmark's generator (facemask/data/synth/generate.py)."""

    videos: int = Field(114, ge=1, le=999)
    """Number of videos (300VW has 114; 3-digit folder names)."""
    frames: int = Field(90, ge=1)
    """Frames per video (90: three 1-s clips)."""
    fps: float = Field(30.0, gt=0)
    """Frame rate of vid.avi."""
    width: int = Field(320, ge=64)
    """Frame width in pixels."""
    height: int = Field(240, ge=48)
    """Frame height in pixels."""
    categories: Shares = [0.4, 0.3, 0.3]
    """Share of 300VW categories 1 / 2 / 3."""
    degrade_strength: float = Field(1.0, ge=0)
    """Scales the camera: bad light, colour casts, noise, blur, low resolution, JPEG."""
    pose_scale: float = Field(1.0, ge=0)
    """Scales the head-pose ranges (category 3: yaw up to 45 deg)."""
    occluder_rate: float = Field(0.5, ge=0)
    """Occluders crossing the face per second in category 3 (categories 1 / 2: x0.15 / x0.3)."""
    transient_rate: float = Field(7.0, ge=0)
    """Stream of transient events per second, all kinds (x0.6 / 1 / 1.4 by category).

    Each event and the 3 clean frames after it pause the stream (facemask.data.synth.degrade.plan_transients)."""
    transient_strength: float = Field(1.3, ge=0)
    """Severity of the transient events."""
    transient_mix: TransientMix = TransientMix()
    """Relative frequency of each kind of transient event."""
    quality: int = Field(90, ge=0, le=100)
    """MJPG quality of vid.avi."""
    workers: Union[int, None] = Field(None, ge=1)
    """Generator processes (null: up to 2); the videos' bytes do not depend on it."""


class Data(Section):
    """Where the raw videos come from (the download stage)."""

    seed: int = Field(0, ge=0)
    """Benchmark seed: the synthetic videos, the sampled clips and the split."""
    source: Literal["synthetic", "300vw", "300vw-mask"] = "synthetic"
    """synthetic | 300vw (the official archive) | 300vw-mask (the authors' derived release)."""
    url: Union[str, None] = "https://ibug.doc.ic.ac.uk/download/300VW_Dataset_2015_12_14.zip"
    """300vw: where the official archive is downloaded from (with resume and retries)."""
    archive: Union[str, None] = None
    """300vw: local path to an already downloaded archive (skips the download)."""
    sha256: Sha256 = None
    """300vw: the archive's SHA-256, verified when given."""
    mask_url: Union[str, None] = None
    """300vw-mask: where to download the authors' release (300VW-Mask-Dataset.zip)."""
    mask_archive: Union[str, None] = None
    """300vw-mask: a local copy of the authors' release."""
    mask_sha256: Sha256 = None
    """300vw-mask: the release's SHA-256, verified when given."""
    synthetic: Synthetic = Synthetic()
    """The synthetic generator (data.source synthetic)."""


# ------------------------------------------------------------------------------------ masks, clips


class Masks(Section):
    """Landmarks -> face crops and label masks (facemask/data/masks/build.py)."""

    crop_scale: float = Field(1.3, gt=0)
    """Square crop side = crop_scale x mean(w, h) of the landmark box (the authors: 1.3)."""
    jpeg_quality: int = Field(95, ge=0, le=100)
    """JPEG quality of the crops."""
    workers: int = Field(2, ge=1)
    """Process pool size."""
    outside_tol: float = Field(0.0, ge=0)
    """Pixels a landmark may lie outside the frame before the frame is dropped."""
    max_drop_share: float = Field(0.5, ge=0, le=1)
    """Fail when more than this share of the frames is dropped (always when none is kept)."""
    frames: Literal["all", "sampled"] = "all"
    """all: every usable frame | sampled: only the frames of the 1-s clips the clips stage uses (configs/paper.yaml).

    The clips are drawn here with clips.length, clips.fraction and data.seed (10 % of 300VW's 218,595 frames) and
    listed in clips.csv."""


class Zoom(Section):
    """The zoom box of one part."""

    margin: float = Field(ge=0)
    """The box grows by this share of its size on each side."""
    noise: float = Field(0.1, ge=0)
    """Random shift / scale of the box in the training sub-datasets, as a share of its size."""
    aspect: Union[float, None] = Field(None, gt=0)
    """Width / height of the box (null: eyes 2, mouth 1)."""


class ZoomParts(Section):
    """Zoom boxes of the eye and mouth models."""

    eyes: Zoom = Zoom(margin=0.35)
    """The eye box."""
    mouth: Zoom = Zoom(margin=0.3)
    """The mouth box."""


class InputSizes(Section):
    """Packed frames, side in pixels, per region (paper: 320 for all)."""

    face: int = Field(128, ge=32)
    """128 / output stride 8 = 16 score cells across the face (paper: 320 / 16 = 20)."""
    eyes: int = Field(64, ge=32)
    """About the eye box's own size in the face crop."""
    mouth: int = Field(64, ge=32)
    """Mouth crops."""


def _int_or_mapping(value: Any) -> str:
    return "<mapping>" if isinstance(value, (dict, InputSizes)) else "<int>"


#: An int for every region, or one per region. The tags (dropped from error keys) pick the branch.
InputSize = Annotated[Union[Annotated[Annotated[int, Field(ge=32)], Tag("<int>")],
                            Annotated[InputSizes, Tag("<mapping>")]], Discriminator(_int_or_mapping)]


class Clips(Section):
    """1-s sequences, the split by video, packed arrays and zoomed sub-datasets (facemask/data/clips/)."""

    length: int = Field(30, ge=1)
    """Frames per 1-s sequence."""
    fraction: float = Field(1.0, gt=0, le=1)
    """Share of a video's 1-s sequences that are sampled (paper: 0.1)."""
    split: Shares = [93, 9, 12]
    """Train / val / test videos, as proportions (paper: 93 / 9 / 12)."""
    official_split: bool = True
    """With data.source 300vw-mask: use the authors' split_1 files as they are."""
    input_size: InputSize = InputSizes()
    """Packed frames, side in pixels: an int, or one per region {face, eyes, mouth}."""
    window: int = Field(5, ge=1)
    """Zoom boxes are held fixed over this many consecutive frames (= train.convlstm.T)."""
    zoom: ZoomParts = ZoomParts()
    """Zoom boxes of the eye and mouth models."""
    storage: Literal["arrays", "crops"] = "arrays"
    """arrays: packed images.npy / labels.npy | crops: each frame's crop once, encoded (configs/paper.yaml).

    crops are cut and resized when read (facemask.data.clips.store): the same arrays, byte for byte, in a fraction
    of the disk."""


# --------------------------------------------------------------------------------- model, regions


class Model(Section):
    """The networks (facemask/models/)."""

    arch: Literal["fcn", "fcn_vgg16", "deeplab_v2"] = "fcn"
    """FCN phase: fcn (the paper's FCN) | fcn_vgg16 | deeplab_v2 (Table 2's VGG-16 baselines)."""
    encoder: str = Field("resnet18", min_length=1)
    """Any smp encoder (paper: resnet50); arch fcn only."""
    encoder_weights: Union[str, None] = None
    """null | imagenet (needs the internet the first time)."""
    encoder_depth: int = Field(3, ge=3, le=5)
    """Encoder stages kept (5: all, the paper's; 3: a ResNet ends at layer2, stride 8); arch fcn only."""
    output_stride: Literal[8, 16, 32] = 8
    """Encoder output stride (paper: 16 at 320 px); arch fcn only (the VGG-16 baselines fix theirs)."""
    peephole: bool = True
    """ConvLSTM Hadamard peepholes (Eq. 1)."""
    convlstm_init: Literal["conv6", "glorot"] = "conv6"
    """conv6 | glorot: the new ConvLSTM starts as the FCN's classifier, or as Keras's default."""
    output_scale: Annotated[Any, AfterValidator(_output_scale)] = "auto"
    """Factor on the ConvLSTM-FCN's scores h in (-1, 1): a number (paper: 1) or auto (the FCN's score range)."""


class Region(Section):
    gamma: float = Field(gt=0)
    """ConvLSTM-FCN: lr x gamma for all layers but the ConvLSTM."""


class FaceRegion(Region):
    """The primary model."""

    classes: Literal[5] = 5
    """bg, skin, eyes, lips, inner mouth."""


class EyesRegion(Region):
    """The zoomed eye model."""

    classes: Literal[2] = 2
    """bg, eye."""


class MouthRegion(Region):
    """The zoomed mouth model."""

    classes: Literal[3] = 3
    """bg, lips, inner mouth."""


class Regions(Section):
    """The primary and the two zoomed models."""

    face: FaceRegion = FaceRegion(gamma=0.05)
    """The primary model."""
    eyes: EyesRegion = EyesRegion(gamma=0.02)
    """The zoomed eye model."""
    mouth: MouthRegion = MouthRegion(gamma=0.02)
    """The zoomed mouth model."""


# ------------------------------------------------------------------------------------------- train


class Phase(Section):
    """What both training phases share."""

    epochs: int = Field(ge=1)
    """Passes over the training clips."""
    lr: float = Field(0.001, gt=0)
    """Adam / RMSprop learning rate."""
    augment: bool = True
    """Training-time augmentation."""
    accum: int = Field(1, ge=1)
    """Micro-batches accumulated per optimiser step (per process)."""
    max_steps_per_epoch: Union[int, None] = Field(None, ge=1)
    """Cap on optimiser steps per epoch (null: the whole epoch)."""


class TrainFCN(Phase):
    """The per-frame FCN."""

    epochs: int = Field(4, ge=1)
    """Passes over the training frames (paper: 80)."""
    batch_size: int = Field(16, ge=1)
    """Frames per batch (paper: 16)."""
    lr: float = Field(0.001, gt=0)
    """Adam, linear decay to 0."""
    lr_decay: Literal["linear", "none"] = "linear"
    """linear (to 0 at the last step) | none."""
    max_steps_per_epoch: Union[int, None] = Field(75, ge=1)
    """Cap on optimiser steps per epoch (null: whole epoch; CPU demo: 75 of 697)."""


class TrainConvLSTM(Phase):
    """The ConvLSTM-FCN fine-tuned from the FCN."""

    epochs: int = Field(2, ge=1)
    """Passes over the training windows (paper: 60)."""
    T: int = Field(5, ge=1)
    """Frames per sequence (paper: 5)."""
    N: int = Field(2, ge=1)
    """Sequences per batch (paper: 2)."""
    lr: float = Field(0.0003, gt=0)
    """ConvLSTM layer; other layers lr x regions.<r>.gamma (paper: 0.001; the conv6 start's scale needs less).

    The `conv6` start holds the classifier in weights 1/(6 std) of the FCN's, and Adam moves a weight by about lr a
    step whatever its scale: at 0.001 a small class can be pushed to 0 where the IoU loss cannot bring it back.
    0.0003 was chosen on the validation split of data.seed 0, 1 and 10 (bench/bench_convlstm_lr.py)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """adam | rmsprop."""
    freeze_backbone: bool = True
    """Train the ConvLSTM alone (the paper's Tables 3-5; the paper's final recipe: false)."""
    freeze_bn: bool = True
    """Keep the encoder's batch-norm statistics the FCN's (N x T correlated frames)."""
    head_steps: int = Field(1500, ge=0)
    """Head-only steps first: the ConvLSTM alone on cached features of the frozen encoder (0: the paper's recipe)."""
    corrupt: float = Field(0.5, ge=0, le=1)
    """Share of training windows with one frame after the first blacked / noised, labels kept (0: the paper)."""
    guard_drop: float = Field(0.05, ge=0)
    """A phase (head-only, an epoch) whose val mIoU falls more than this below the converted start's is not kept."""
    guard_share: float = Field(0.5, ge=0, le=1)
    """A phase in which any class's val IoU falls below this share of the converted start's is not kept."""
    loss: Literal["ce", "iou", "segloss"] = "iou"
    """ce | iou (Eq. 3) | segloss (Eq. 7; the paper's)."""
    lfun: Literal["eq8", "eq9"] = "eq9"
    """SegLoss: L_p / L_n of Eq. 8 or Eq. 9."""
    g: float = Field(0.0, ge=0)
    """SegLoss margin."""
    weights: Literal["hard", "soft"] = "hard"
    """SegLoss: A_t from the arg-max (hard) or the softmax (soft)."""
    segloss_on: Literal["scores", "softmax"] = "scores"
    """SegLoss: on the raw scores (the paper's Eq. 8 example) or on their softmax (PR as in Eq. 3)."""
    lr_decay: Literal["linear", "none"] = "none"
    """linear | none (the paper names no decay for this phase)."""
    max_steps_per_epoch: Union[int, None] = Field(60, ge=1)
    """Cap on optimiser steps per epoch (null: whole epoch; CPU demo: 60 of 144)."""


class Train(Section):
    """How the six models are trained (facemask/training/)."""

    launcher: str = Field("python", min_length=1)
    """python | "torchrun --nproc_per_node N" (DDP)."""
    device: Annotated[str, AfterValidator(_device)] = "auto"
    """auto | cpu | cuda | cuda:N (cuda: an error naming the reason when CUDA is not usable; auto: warns)."""
    workers: int = Field(0, ge=0)
    """Data-loader worker processes (persistent across epochs)."""
    sync_bn: bool = False
    """DDP on CUDA: batch norm over all processes' micro-batches (SyncBatchNorm)."""
    compile: bool = False
    """torch.compile the training forward."""
    fcn: TrainFCN = TrainFCN()
    """The FCN phase."""
    convlstm: TrainConvLSTM = TrainConvLSTM()
    """The ConvLSTM-FCN phase."""


# ----------------------------------------------------------------------------------- fuse, evaluate


class Tracker(Section):
    """The paper's landmark-tracker baseline (Table 2, row 1; facemask/inference/tracker.py)."""

    detector: Literal["hog", "cnn", "haar"] = "hog"
    """hog | cnn | haar: finds the face on the first frame and when the track is lost."""
    detect_every: int = Field(0, ge=0)
    """Also re-detect every k frames and re-anchor the track (0: never)."""


class OneEuro(Section):
    """One-Euro filter on the 68 points over time: its settings (facemask predict --landmark-smoothing uses these)."""

    min_cutoff: float = Field(4.0, gt=0)
    """Hz: the cutoff at rest."""
    beta: float = Field(16.0, ge=0)
    """Cutoff gained per face size per second of speed."""
    d_cutoff: float = Field(4.0, gt=0)
    """Hz: the speed estimate's cutoff."""


class Mesh(Section):
    """The face-mesh landmark method (MediaPipe; facemask/inference/mesh.py), scored as `mesh`."""

    refine: bool = True
    """The attention mesh: refined eyes and lips (478 points)."""
    one_euro: Union[OneEuro, None] = None
    """One-Euro filter on the 68 points over time (null: none, as facemask predict's default)."""


class Fuse(Section):
    """Every method on the test clips (the fuse stages)."""

    smooth_sigma: float = Field(0.6, gt=0)
    """FCN + temporal smoothing: Gaussian weights over a T-frame window."""
    tracker: Tracker = Tracker()
    """The paper's landmark-tracker baseline (Table 2, row 1; facemask/inference/tracker.py)."""
    mesh: Mesh = Mesh()
    """The face-mesh landmark method (MediaPipe; facemask/inference/mesh.py), scored as `mesh`."""


class Evaluate(Section):
    """Metrics, significance and figures (facemask/evaluation/)."""

    located: bool = True
    """Score the learned methods also as facemask predict runs them (stage located; false: skipped, for sweeps)."""
    draws: int = Field(25_000, ge=100)
    """Bootstrap draws over training seeds and test subjects, for every interval and P value."""
    stats_seed: int = Field(0, ge=0)
    """Seed of the bootstrap's draws (the same draws for every method, run and table)."""
    examples: int = Field(6, ge=1)
    """Frames in the side-by-side figure."""


class Baselines(Section):
    """Table 2's VGG-16 baselines: face FCNs trained beside the pipeline (stage train_baselines)."""

    archs: list[Literal["fcn_vgg16", "deeplab_v2"]] = []
    """fcn_vgg16 | deeplab_v2, e.g. `dvc exp run -S 'baselines.archs=[fcn_vgg16]'` (none by default: 5-25x the FCN)."""
    batch_norm: bool = True
    """VGG-16-BN: trains from scratch (the papers' plain VGG-16 starts from ImageNet; false: it)."""

    @field_validator("archs")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError("must not name an arch twice")
        return v


class Params(Section):
    """The whole params.yaml."""

    seed: int = Field(0, ge=0)
    """Training seed (initialisation, data order, augmentation): `dvc exp run -S seed=N`."""
    data: Data = Data()
    """Where the raw videos come from (the download stage)."""
    masks: Masks = Masks()
    """Landmarks -> face crops and label masks (facemask/data/masks/build.py)."""
    clips: Clips = Clips()
    """1-s sequences, the split by video, packed arrays and zoomed sub-datasets (facemask/data/clips/)."""
    model: Model = Model()
    """The networks (facemask/models/)."""
    regions: Regions = Regions()
    """The primary and the two zoomed models."""
    train: Train = Train()
    """How the six models are trained (facemask/training/)."""
    baselines: Baselines = Baselines()
    """Table 2's VGG-16 baselines: face FCNs trained beside the pipeline (stage train_baselines)."""
    fuse: Fuse = Fuse()
    """Every method on the test clips (the fuse stages)."""
    evaluate: Evaluate = Evaluate()
    """Metrics, significance and figures (facemask/evaluation/)."""

    def region(self, name: str) -> Region:
        """``regions.<name>``."""
        return getattr(self.regions, name)

    def input_size(self, region: str) -> int:
        """``clips.input_size`` of `region` (one int for all, or per region)."""
        size = self.clips.input_size
        return size if isinstance(size, int) else getattr(size, region)


#: The embedded default: params.yaml's values.
DEFAULTS = Params()


def cross_checks(p: Params) -> list[tuple[str, str, Any]]:
    """(key, reason, value) for rules that join several keys."""
    out = []
    if p.clips.window != p.train.convlstm.T:
        out.append(("clips.window", f"must equal train.convlstm.T ({p.train.convlstm.T}), the ConvLSTM's window",
                    p.clips.window))
    for source, prefix in (("300vw", ""), ("300vw-mask", "mask_")):
        d = p.data
        if d.source == source and not (getattr(d, f"{prefix}archive") or getattr(d, f"{prefix}url")):
            out.append((f"data.{prefix}archive", f"data.source {source} needs data.{prefix}archive (a local file) "
                                                 f"or data.{prefix}url", None))
    return out
