"""The schema of ``params.yaml``: every key's type, range and choices, checked once when a stage loads it.

One pydantic model per section of ``params.yaml`` (`Params` is the whole file), one field per key,
documented where it is declared. Sections forbid unknown keys, so a misspelled key is an error, not
a setting silently ignored. Validation is strict: ``batch_size: "16"`` or ``augment: 1`` are errors
(a float key takes an int). `load_params` reads a file, validates it and returns the plain nested
dict that the stages index (``params["train"]["fcn"]["lr"]``): the file's own values, untouched,
with the defaults of optional keys filled in. Every problem becomes one line that names the file,
the dotted key, the reason and the value::

    params.yaml: masks.crop_scale: must be > 0, got -1
    params.yaml: data.synthetic.lenght: unknown key (did you mean 'length'?)

Adding a key: add a field (type, default if optional, constraints) with a docstring to its
section, and the key to ``params.yaml`` and ``configs/paper.yaml``.
"""
from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      field_validator)

from facemask.core.errors import ParamsError

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
    if len(value) != 3 or any(v < 0 for v in value) or sum(value) <= 0:
        raise ValueError("must be three non-negative numbers with a positive sum")
    return value


def _output_scale(v: Any) -> Union[float, str]:
    if v == "auto":
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ValueError("must be a number > 0 or auto")
    return float(v)


Shares = Annotated[list[float], AfterValidator(_three_shares)]
Sha256 = Annotated[Union[str, None], AfterValidator(_sha256)]


class Section(BaseModel):
    """A section of params.yaml: unknown keys are errors; strict types (a float key takes an int).

    `load_params` returns the file's own values, not the model's (93 stays an int where the model
    holds 93.0), so validation never changes what reaches a stage's outputs.
    """

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


# --------------------------------------------------------------------------------------------- data


class TransientMix(Section):
    """``data.synthetic.transient_mix``: relative frequency of each kind of transient event (normalised to shares
    of ``transient_rate``; `facemask.data.synth.degrade.TRANSIENTS` describes the kinds)."""

    blur: float = Field(1.0, ge=0)
    """Motion-blur bursts and focus hunts."""
    noise: float = Field(0.5, ge=0)
    """Sensor-noise bursts."""
    flash: float = Field(1.0, ge=0)
    """Flashes washing the frame out."""
    flicker: float = Field(0.5, ge=0)
    """Light flicker: frames alternately dark and bright."""
    drop: float = Field(1.0, ge=0)
    """Dropped frames: black, grey, green, or frozen (the last frame again)."""
    corrupt: float = Field(1.0, ge=0)
    """Damaged frames: lost, smeared or displaced macroblocks."""
    glitch: float = Field(0.5, ge=0)
    """Compression glitches: a frame at the lowest JPEG quality, or in big blocks."""
    occluder: float = Field(1.0, ge=0)
    """A hand or an object swept across the face within a few frames."""


class Synthetic(Section):
    """``data.synthetic``: the embedded benchmark's generator (`facemask.data.synth.generate.generate`)."""

    videos: int = Field(ge=1, le=999)
    """Number of videos (3-digit folder names, as in 300VW)."""
    frames: int = Field(ge=1)
    """Frames per video."""
    fps: float = Field(gt=0)
    """Frame rate of vid.avi."""
    width: int = Field(ge=64)
    """Frame width in pixels."""
    height: int = Field(ge=48)
    """Frame height in pixels."""
    categories: Shares
    """Share of 300VW categories 1 / 2 / 3."""
    degrade_strength: float = Field(1.0, ge=0)
    """Scales the camera: bad light, colour casts, noise, blur, low resolution, JPEG."""
    pose_scale: float = Field(1.0, ge=0)
    """Scales the head-pose ranges."""
    occluder_rate: float = Field(0.5, ge=0)
    """Occluders crossing the face per second in category 3."""
    transient_rate: float = Field(7.0, ge=0)
    """Rate of the stream of transient events, all kinds together (category 1 / 2 / 3: x0.6 / 1 / 1.4); each
    event and the 3 clean frames after it pause it (`facemask.data.synth.degrade.plan_transients`)."""
    transient_strength: float = Field(1.3, ge=0)
    """Severity of the transient events."""
    transient_mix: TransientMix = Field(default_factory=TransientMix)
    """Relative frequency of each kind of transient event."""
    quality: int = Field(90, ge=0, le=100)
    """MJPG quality of vid.avi."""
    workers: Union[int, None] = Field(None, ge=1)
    """Generator processes (null: up to 2)."""


class Data(Section):
    """``data``: where the raw videos come from (the download stage)."""

    seed: int = Field(0, ge=0)
    """Benchmark seed: the synthetic videos, the sampled clips and the split (top-level ``seed`` trains)."""
    source: Literal["synthetic", "300vw", "300vw-mask"]
    """synthetic (the embedded benchmark), 300vw (the official archive) or 300vw-mask (the authors' release)."""
    url: Union[str, None] = None
    """300vw: where to download the official archive."""
    archive: Union[str, None] = None
    """300vw: a local copy of the official archive (skips the download)."""
    sha256: Sha256 = None
    """300vw: the archive's SHA-256, verified when given."""
    mask_url: Union[str, None] = None
    """300vw-mask: where to download the authors' release."""
    mask_archive: Union[str, None] = None
    """300vw-mask: a local copy of the authors' release."""
    mask_sha256: Sha256 = None
    """300vw-mask: the release's SHA-256, verified when given."""
    synthetic: Synthetic
    """The synthetic generator (used with source: synthetic)."""


# ------------------------------------------------------------------------------------ masks, clips


class Masks(Section):
    """``masks``: landmarks -> face crops and label masks (`facemask.data.masks.build.build_masks`)."""

    crop_scale: float = Field(gt=0)
    """Square crop side = crop_scale x mean(w, h) of the landmark box (the authors: 1.3)."""
    jpeg_quality: int = Field(ge=0, le=100)
    """JPEG quality of the crops."""
    workers: int = Field(ge=1)
    """Process pool size."""
    outside_tol: float = Field(0.0, ge=0)
    """Pixels a landmark may lie outside the frame before the frame is dropped."""
    max_drop_share: float = Field(0.5, ge=0, le=1)
    """The stage fails when more than this share of the frames is dropped (it always fails when none is kept)."""
    frames: Literal["all", "sampled"] = "all"
    """all: every usable frame; sampled: only the frames of the 1-s clips the clips stage will use (drawn here
    with clips.length, clips.fraction, data.seed; 10 % of 300VW's 218,595), listed in clips.csv."""


class Zoom(Section):
    """``clips.zoom.<eyes|mouth>``: the zoom box of one part."""

    margin: float = Field(ge=0)
    """The box grows by this share of its size on each side."""
    noise: float = Field(0.0, ge=0)
    """Random shift / scale of the box when building the training sub-datasets, as a share of its size."""
    aspect: Union[float, None] = Field(None, gt=0)
    """Width / height of the box (null: eyes 2, mouth 1)."""


class ZoomParts(Section):
    eyes: Zoom
    """The eye box."""
    mouth: Zoom
    """The mouth box."""


class InputSizes(Section):
    """``clips.input_size`` per region."""

    face: int = Field(ge=32)
    """Face crops: face x face pixels."""
    eyes: int = Field(ge=32)
    """Eye crops."""
    mouth: int = Field(ge=32)
    """Mouth crops."""


def _int_or_mapping(value: Any) -> str:
    return "<mapping>" if isinstance(value, dict) else "<int>"


#: An int for every region, or one per region. The tags (dropped from error keys) pick the branch.
InputSize = Annotated[Union[Annotated[Annotated[int, Field(ge=32)], Tag("<int>")],
                            Annotated[InputSizes, Tag("<mapping>")]], Discriminator(_int_or_mapping)]


class Clips(Section):
    """``clips``: 1-s sequences, the split by video, packed arrays and zoomed sub-datasets."""

    length: int = Field(ge=1)
    """Frames per 1-s sequence."""
    fraction: float = Field(gt=0, le=1)
    """Share of a video's 1-s sequences that are sampled (paper: 0.1)."""
    split: Shares
    """Train / val / test videos, as proportions (paper: 93 / 9 / 12)."""
    official_split: bool
    """With data.source 300vw-mask: use the authors' split_1 files as they are."""
    input_size: InputSize
    """Packed frames are input_size x input_size pixels (paper: 320); an int, or {face, eyes, mouth}."""
    window: int = Field(ge=1)
    """Zoom boxes are held fixed over this many consecutive frames (= train.convlstm.T)."""
    zoom: ZoomParts
    """Zoom boxes of the eye and mouth models."""
    storage: Literal["arrays", "crops"] = "arrays"
    """arrays: every region's frames packed at S x S (images.npy, labels.npy; 28 GB at the paper's size);
    crops: each frame's face crop once, as the masks stage encoded it, cut and resized when the loader reads
    it (facemask.data.clips.store; the same arrays, byte for byte, in a fraction of the disk)."""


# --------------------------------------------------------------------------------- model, regions


class Model(Section):
    """``model``: the networks (`facemask.models.nets`)."""

    arch: Literal["fcn", "fcn_vgg16", "deeplab_v2"] = "fcn"
    """The per-frame network."""
    encoder: str = Field(min_length=1)
    """Any smp encoder (paper: resnet50)."""
    encoder_weights: Union[str, None]
    """null (random initialisation) or an smp weight name such as imagenet."""
    encoder_depth: int = Field(5, ge=3, le=5)
    """Encoder stages used."""
    output_stride: Literal[8, 16, 32]
    """Encoder output stride (paper: 16)."""
    peephole: bool
    """ConvLSTM Hadamard peepholes (Eq. 1)."""
    convlstm_init: Literal["conv6", "glorot"]
    """How the new ConvLSTM starts: as the FCN's classifier (conv6) or Keras's default (glorot)."""
    output_scale: Annotated[Any, AfterValidator(_output_scale)]
    """Fixed factor on the ConvLSTM-FCN's scores (paper: 1), or auto (the FCN's own score spread)."""


class Region(Section):
    gamma: float = Field(gt=0)
    """ConvLSTM-FCN: learning rate x gamma for all layers but the ConvLSTM."""


class FaceRegion(Region):
    """``regions.face``: the primary model."""

    classes: Literal[5]
    """Background, skin, eyes, lips, inner mouth."""


class EyesRegion(Region):
    """``regions.eyes``: the zoomed eye model."""

    classes: Literal[2]
    """Background, eye."""


class MouthRegion(Region):
    """``regions.mouth``: the zoomed mouth model."""

    classes: Literal[3]
    """Background, lips, inner mouth."""


class Regions(Section):
    face: FaceRegion
    """The primary model."""
    eyes: EyesRegion
    """The zoomed eye model."""
    mouth: MouthRegion
    """The zoomed mouth model."""


# ------------------------------------------------------------------------------------------- train


class Phase(Section):
    """What both training phases share."""

    epochs: int = Field(ge=1)
    """Passes over the training clips."""
    lr: float = Field(gt=0)
    """Adam / RMSprop learning rate."""
    augment: bool = True
    """Training-time augmentation."""
    accum: int = Field(1, ge=1)
    """Micro-batches accumulated per optimiser step (per process)."""
    max_steps_per_epoch: Union[int, None] = Field(None, ge=1)
    """Cap on optimiser steps per epoch (null: the whole epoch)."""


class TrainFCN(Phase):
    """``train.fcn``: the per-frame FCN."""

    batch_size: int = Field(ge=1)
    """Frames per batch (paper: 16)."""
    lr_decay: Literal["linear", "none"] = "linear"
    """linear (to 0 at the last step) or none."""


class TrainConvLSTM(Phase):
    """``train.convlstm``: the ConvLSTM-FCN fine-tuned from the FCN."""

    T: int = Field(ge=1)
    """Frames per sequence (paper: 5)."""
    N: int = Field(ge=1)
    """Sequences per batch (paper: 2)."""
    optimizer: Literal["adam", "rmsprop"]
    """Optimiser."""
    freeze_backbone: bool
    """Train the ConvLSTM alone (the paper's exploration)."""
    freeze_bn: bool = False
    """Keep the batch-norm statistics of the converted FCN fixed."""
    head_steps: int = Field(0, ge=0)
    """Head-only steps first: the ConvLSTM alone on cached features of the frozen encoder (0: none, the paper)."""
    corrupt: float = Field(0.0, ge=0, le=1)
    """Share of the training windows with one frame after the first replaced by a black or noise frame, labels
    kept (0: none, the paper)."""
    guard_drop: float = Field(0.05, ge=0)
    """A phase (the head-only phase, an epoch) whose val mIoU falls more than this below the converted start's is
    not kept (facemask.training.guard)."""
    guard_share: float = Field(0.5, ge=0, le=1)
    """A phase in which any class's val IoU falls below this share of the converted start's is not kept."""
    loss: Literal["ce", "iou", "segloss"]
    """Cross-entropy, the multi-class IoU loss (Eq. 3) or SegLoss (Eq. 7)."""
    lfun: Literal["eq8", "eq9"]
    """SegLoss: L_p / L_n of Eq. 8 or Eq. 9."""
    g: float = Field(ge=0)
    """SegLoss margin."""
    weights: Literal["hard", "soft"]
    """SegLoss: A_t from the arg-max (hard) or the softmax (soft)."""
    segloss_on: Literal["scores", "softmax"] = "scores"
    """SegLoss: on the raw scores or on their softmax."""
    lr_decay: Literal["linear", "none"] = "none"
    """linear or none (the paper names no decay for this phase)."""


class Train(Section):
    """``train``: how the six models are trained (`facemask.training.engine`)."""

    launcher: str = Field(min_length=1)
    """python, or "torchrun --nproc_per_node N" (DDP)."""
    device: Annotated[str, AfterValidator(_device)]
    """auto (CUDA when usable, else the CPU with a warning), cpu, cuda or cuda:N (an error naming the reason
    when CUDA is not usable: never a silent fallback; facemask.core.devices)."""
    workers: int = Field(ge=0)
    """Data-loader worker processes (persistent across epochs)."""
    sync_bn: bool = False
    """DDP on CUDA: batch norm over all processes' micro-batches (SyncBatchNorm); an error on CPU processes."""
    compile: bool = False
    """torch.compile the training forward."""
    fcn: TrainFCN
    """The FCN phase."""
    convlstm: TrainConvLSTM
    """The ConvLSTM-FCN phase."""


# ----------------------------------------------------------------------------------- fuse, evaluate


class Tracker(Section):
    """``fuse.tracker``: the paper's landmark-tracker baseline (Table 2, row 1; `facemask.inference.tracker`)."""

    detector: Literal["hog", "cnn", "haar"]
    """Finds the face on the first frame and whenever the track is lost."""
    detect_every: int = Field(ge=0)
    """Also re-detect every k frames and re-anchor the track (0: never)."""


class OneEuro(Section):
    """``fuse.mesh.one_euro``: the One-Euro filter on the 68 points over time
    (`facemask.inference.landmarker.OneEuroFilter`; `facemask predict` uses the same values, ``ONE_EURO``)."""

    min_cutoff: float = Field(gt=0)
    """Hz: the cutoff at rest; lower is steadier at rest and lags more."""
    beta: float = Field(ge=0)
    """Cutoff gained per face size per second of speed; higher lags less when the face moves."""
    d_cutoff: float = Field(gt=0)
    """Hz: the cutoff of the speed estimate."""


class Mesh(Section):
    """``fuse.mesh``: the face-mesh landmark method (MediaPipe's face mesh -> 68 points, `facemask.inference.mesh`),
    scored as method ``mesh`` beside the paper's ``tracker``."""

    refine: bool
    """The attention mesh (``refine_landmarks``: refined eyes and lips, 478 points)."""
    one_euro: Union[OneEuro, None]
    """Smoothing over time (null: none)."""


class Fuse(Section):
    """``fuse``: every method on the test clips."""

    smooth_sigma: float = Field(gt=0)
    """FCN + temporal smoothing: sigma of the Gaussian weights over a T-frame window."""
    tracker: Tracker
    mesh: Mesh


class Evaluate(Section):
    """``evaluate``: metrics, significance and figures."""

    groups: int = Field(ge=2)
    """Significance: test sequences in this many groups for the paired tests (at least 2)."""
    examples: int = Field(ge=1)
    """Frames in the side-by-side figure."""


class Baselines(Section):
    """``baselines``: the paper's Table 2 VGG-16 baselines, face FCNs trained beside the pipeline (stage
    ``train_baselines``) and scored by fuse / evaluate as methods of their own."""

    archs: list[Literal["fcn_vgg16", "deeplab_v2"]] = []
    """Archs to train with train.fcn's recipe (none by default: a VGG-16 costs 5-25x the ResNet FCN here)."""
    batch_norm: bool = True
    """Build them on VGG-16-BN (batch norm after each convolution) instead of VGG-16: how a VGG-16 trains
    from scratch; the papers' VGG-16 has none but starts from ImageNet (model.encoder_weights)."""

    @field_validator("archs")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError("must not name an arch twice")
        return v


class Params(Section):
    """The whole ``params.yaml``."""

    seed: int = Field(ge=0)
    """Training seed (initialisation, data order, augmentation)."""
    data: Data
    masks: Masks
    clips: Clips
    model: Model
    regions: Regions
    train: Train
    baselines: Baselines = Baselines()
    fuse: Fuse
    evaluate: Evaluate


def _cross_checks(p: Params) -> list[tuple[str, str, Any]]:
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


# ------------------------------------------------------------------------------------------ errors

_REASONS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a text",
    "string_too_short": "must not be empty",
    "list_type": "must be a list",
    "model_type": "must be a section (a mapping of keys)",
    "dict_type": "must be a section (a mapping of keys)",
    "missing": "missing (required)",
}


def _show(value: Any) -> str:
    """A value as the YAML file spells it."""
    if isinstance(value, dict):
        return "a mapping"
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _bound(value: Any) -> str:
    """A range's bound: 0.0 of a float key as 0."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else _show(value)


def _section_at(loc: tuple) -> type[BaseModel] | None:
    """The model class of the section at `loc` (to list its valid keys)."""
    cls: Any = Params
    for name in loc:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or name not in cls.model_fields:
            return None
        ann, cls = cls.model_fields[name].annotation, None
        todo = [ann]
        while todo:  # the first model class inside Optional / Union / Annotated
            t = todo.pop(0)
            if isinstance(t, type) and issubclass(t, BaseModel):
                cls = t
                break
            todo += list(get_args(t))
    return cls


def _reason(err: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        section = _section_at(tuple(str(k) for k in err["loc"][:-1]))
        valid = sorted(section.model_fields) if section else []
        close = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else
                                f" (valid: {', '.join(valid)})" if valid else "")
    if kind == "literal_error":
        reason = f"must be {ctx['expected'].replace(chr(39), '')}"
    elif kind == "value_error":
        reason = str(ctx.get("error", err["msg"]))
    elif kind in _REASONS:
        reason = _REASONS[kind].format(**{k: _bound(v) for k, v in ctx.items()})
    else:
        reason = err["msg"][0].lower() + err["msg"][1:]
    if kind == "missing":
        return reason
    return f"{reason}, got {_show(value)}"


def _key(loc: tuple) -> str:
    """('clips', 'split', 1) -> 'clips.split[1]'; union tags such as '<int>' are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("<"):
            out += f".{part}" if out else str(part)
    return out


def error_lines(err: ValidationError, source: str) -> list[str]:
    """One ``<source>: <key>: <reason>, got <value>`` line per problem."""
    return [f"{source}: {_key(e['loc'])}: {_reason(e)}" for e in err.errors()]


# ------------------------------------------------------------------------------------------ loading


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but duplicate keys are errors and ``1e-3`` is a float (YAML 1.2)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d[\d_]*(\.[\d_]*)?|\.[\d_]+)[eE][-+]?\d+$"),
    list("-+0123456789."))


def _fill_defaults(raw: dict, model: BaseModel) -> dict:
    """`raw` with every optional key it leaves out set to the model's default (nested sections too)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name not in raw:
            raw[name] = value.model_dump() if isinstance(value, BaseModel) else copy.deepcopy(value)
        elif isinstance(value, BaseModel) and isinstance(raw[name], dict):
            _fill_defaults(raw[name], value)
    return raw


def validate(raw: Any, source: str = "params.yaml") -> dict:
    """Check a parsed params mapping against `Params`; return it with the defaults filled in.

    Raises:
        ParamsError: one line per problem (`error_lines`).
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: must be a mapping of sections (data, masks, clips, ...), got "
                          f"{'an empty file' if raw is None else _show(raw)}")
    try:
        model = Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError("\n".join(error_lines(e, source))) from None
    problems = _cross_checks(model)
    if problems:
        raise ParamsError("\n".join(f"{source}: {key}: {reason}" + ("" if value is None else f", got {_show(value)}")
                                    for key, reason, value in problems))
    return _fill_defaults(copy.deepcopy(raw), model)


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read, check and return a params file (``params.yaml``, ``configs/paper.yaml``) as a nested dict.

    Raises:
        ParamsError: the file is missing or not YAML, or a key is unknown, missing, of the wrong
            type or out of range; one line per problem, each naming the file and the key.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file (run from the project's root, or set FACEMASK_PARAMS)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot read ({e})") from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ParamsError(f"{path}: {where}{getattr(e, 'problem', None) or e}") from None
    return validate(raw, str(path))
