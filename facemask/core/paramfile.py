"""Params files: read and check ``params.yaml`` (`load_params`), apply an overlay such as ``configs/paper.yaml``
(`load_overlay`), and write ``params.yaml`` from the schema (`render`).

* ``params.yaml`` is complete: every key of `facemask.core.params.Params` is in it, because DVC tracks the keys
  a file holds (a key left out would change results with no stage knowing). `load_params` checks it and
  returns the validated `Params`, which is what every stage receives.
* An overlay lists only the keys whose values differ from a base file (``configs/paper.yaml``: the paper's
  configuration). DVC reads params.yaml alone, so an overlay is applied by writing it into params.yaml
  (``facemask params apply configs/paper.yaml``), or passed to one experiment as ``-S`` overrides
  (``dvc exp run $(facemask params overrides configs/paper.yaml)``).
* Every problem becomes one line that names the file, the dotted key, the reason and the value::

      params.yaml: masks.crop_scale: must be > 0, got -1
      params.yaml: data.synthetic.lenght: unknown key (did you mean 'length'?)
"""
from __future__ import annotations

import copy
import difflib
import json
import re
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from facemask.core.errors import ParamsError
from facemask.core.params import DEFAULTS, Params, cross_checks

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


def section_at(loc: tuple) -> type[BaseModel] | None:
    """The model class of the section at `loc` (``()``: `Params`), or None when `loc` is not a section."""
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
        section = section_at(tuple(str(k) for k in err["loc"][:-1]))
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


def missing_keys(raw: dict, loc: tuple = ()) -> list[str]:
    """The dotted keys of the schema that the mapping `raw` (a whole file, or the section at `loc`) leaves out."""
    cls = section_at(loc)
    out = []
    for name in cls.model_fields:
        key = (*loc, name)
        if name not in raw:
            out.append(_key(key))
        elif isinstance(raw[name], dict) and section_at(key) is not None:
            out += missing_keys(raw[name], key)
    return out


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


def validate(raw: Any, source: str = "params.yaml", complete: bool = True) -> Params:
    """Check a parsed params mapping against `Params`; `complete`: every key must be there.

    Raises:
        ParamsError: one line per problem (`error_lines`).
    """
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: must be a mapping of sections (data, masks, clips, ...), got "
                          f"{'an empty file' if raw is None else _show(raw)}")
    missing = [f"{source}: {key}: missing (required)" for key in (missing_keys(raw) if complete else [])]
    try:
        params = Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError("\n".join(missing + error_lines(e, source))) from None
    if missing:
        raise ParamsError("\n".join(missing))
    problems = cross_checks(params)
    if problems:
        raise ParamsError("\n".join(f"{source}: {key}: {reason}" + ("" if value is None else f", got {_show(value)}")
                                    for key, reason, value in problems))
    return params


def read_yaml(path: str | Path) -> Any:
    """A params file parsed (duplicate keys are errors); one line naming the file when it cannot be."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file (run from the project's root, or set FACEMASK_PARAMS)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot read ({e})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ParamsError(f"{path}: {where}{getattr(e, 'problem', None) or e}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check a complete params file (``params.yaml``); the validated settings.

    Raises:
        ParamsError: the file is missing or not YAML, or a key is unknown, missing, of the wrong type or out
            of range; one line per problem, each naming the file and the key.
    """
    return validate(read_yaml(path), str(path))


def merge(base: dict, overlay: dict) -> dict:
    """`base` with the keys of `overlay` replaced, section by section (a copy)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_overlay(path: str | Path, base: str | Path | None = None) -> Params:
    """The settings of an overlay (``configs/paper.yaml``: only the keys that differ) applied to `base`
    (a complete params file; None: the schema's defaults). Errors name the overlay's keys."""
    overlay = read_yaml(path)
    if not isinstance(overlay, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {_show(overlay)}")
    start = DEFAULTS if base is None else load_params(base)
    return validate(merge(start.model_dump(), overlay), str(path))


def overlay_of(params: Params, base: Params = DEFAULTS) -> dict:
    """The keys of `params` whose values differ from `base`, nested as in the file."""
    def diff(a: dict, b: dict) -> dict:
        out = {}
        for k, v in a.items():
            if isinstance(v, dict) and isinstance(b.get(k), dict):
                sub = diff(v, b[k])
                if sub:
                    out[k] = sub
            elif v != b.get(k) or type(v) is not type(b.get(k)):
                out[k] = v
        return out
    return diff(params.model_dump(), base.model_dump())


def overrides(params: Params, base: Params = DEFAULTS) -> list[str]:
    """`overlay_of` as DVC's ``-S key=value`` arguments (Hydra syntax; lists and null in YAML flow style)."""
    def flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
        out = []
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else k
            out += flat(v, key) if isinstance(v, dict) else [(key, v)]
        return out
    out = [f"{k}={_flow(v).replace(', ', ',')}" for k, v in flat(overlay_of(params, base))]
    spaced = [o for o in out if " " in o]
    if spaced:
        raise ParamsError(f"{spaced[0]}: a value with spaces cannot be passed as one -S argument; use "
                          "`facemask params apply` instead")
    return out


# ------------------------------------------------------------------------------------------ rendering

HEADER = ("# The embedded default: a CPU demo on the synthetic benchmark in the exact 300VW layout.\n"
          "# Written from the schema (facemask/core/params.py: every key's type, range, default and meaning) by\n"
          "# `facemask params defaults`; the paper's configuration: `facemask params apply configs/paper.yaml`.\n")
COMMENT_COLUMN = 29


def _flow(value: Any) -> str:
    """A value in YAML flow style, as params.yaml writes it."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return yaml.safe_dump(value, width=10_000).strip().removesuffix("...").strip()  # a plain scalar ends the document


def _comment(cls: type[BaseModel], name: str) -> str:
    """The first paragraph of a field's docstring, on one line."""
    doc = cls.model_fields[name].description or ""
    return " ".join(doc.split("\n\n")[0].split())


def _lines(model: BaseModel, indent: int = 0) -> list[str]:
    cls, pad, out = type(model), "  " * indent, []
    for name in cls.model_fields:
        value, comment = getattr(model, name), _comment(cls, name)
        if isinstance(value, BaseModel):
            out += ([""] if indent == 0 else []) + [_with_comment(f"{pad}{name}:", comment)] + _lines(value, indent + 1)
        else:
            out.append(_with_comment(f"{pad}{name}: {_flow(value)}", comment))
    return out


def _with_comment(text: str, comment: str) -> str:
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {comment}" if comment else text


def render(params: Params = DEFAULTS) -> str:
    """params.yaml for `params`: every key, in the schema's order, each with its docstring's first paragraph."""
    return HEADER + "\n".join(_lines(params)) + "\n"
