"""mergekit-style merge configs: parsing, validation and per-tensor parameter resolution.

A single merge is written as mergekit writes it::

    merge_method: ties
    base_model: path/to/base
    models:
      - model: path/to/math
        parameters: {weight: 0.6, density: 0.5}
      - model: path/to/code
        parameters: {weight: 0.4, density: 0.5}
    parameters: {normalize: true, lambda: 1.0}
    dtype: bfloat16          # inputs are cast to this before merging
    out_dtype: bfloat16      # dtype written (default: dtype, else each tensor's input dtype)
    tokenizer_source: base   # or a model; other vocabularies are padded/truncated to it

`slices:` builds the output from layer ranges, as in mergekit: each slice lists `sources`
(a model and a `layer_range: [start, end)`, all of one length), merged with the step's method
layer by layer, and the slices' layers are stacked in order. So one slice of every model's
layers is the same as `models:`, and a passthrough of several slices stacks, cuts or repeats
layers (a "frankenmerge"). Tensors outside the layers come from the first slice's sources
(embeddings) or the last slice's (final norm, lm_head). A slice may set its own `parameters`
and `base_model`. `modules:` (multimodal models) is not supported.

Chained merges list such blocks under `steps:`; each step has a `name`, and a later step may
name an earlier step wherever it would name a model (TinyR1's Branch-Merge is two steps).

Distillery extensions: `seed` (for DARE masks and sampled quantiles, default 0) and
`untie_embeddings: true` (merge models that tie lm_head to the embeddings with models that do not).

Parameter values follow mergekit: a scalar; a list of numbers, interpolated linearly from the
first layer to the last (a "gradient"); or a list of `{filter, value}` where the first entry
whose filter is a substring of the tensor name (or is missing, or is "*") wins. A model's own
`parameters` take precedence over the slice's, which take precedence over the global ones.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import MergeError

log = logging.getLogger("merge")

STEP_KEYS = {
    "name",
    "merge_method",
    "base_model",
    "models",
    "slices",
    "parameters",
    "dtype",
    "out_dtype",
    "tokenizer_source",
    "tokenizer",
    "chat_template",
    "seed",
    "untie_embeddings",
}
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float64": "float64",
    "fp64": "float64",
}


@dataclass(frozen=True)
class ModelSpec:
    """One input model as the config names it: a directory or an earlier step's name."""

    ref: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceSpec:
    """One model's layer range [start, end) in a slice."""

    ref: str
    start: int
    end: int
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SliceSpec:
    """One output slice: the same number of layers from each source, merged layer by layer."""

    sources: list[SourceSpec]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    base_model: str | None = None

    @property
    def length(self) -> int:
        return self.sources[0].end - self.sources[0].start


@dataclass
class StepSpec:
    """One merge: what mergekit calls a merge configuration."""

    name: str
    method: str
    models: list[ModelSpec]
    base_model: str | None = None
    # Shared settings, highest precedence first (the global ones; a slice's come before them).
    parameters: list[Mapping[str, Any]] = field(default_factory=list)
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    untie_embeddings: bool = False
    seed: int = 0
    # With slices: the output's layers, slice by slice (models then lists every model once).
    slices: list[SliceSpec] | None = None
    where: str = "config"
    raw: dict = field(default_factory=dict)

    def model_layers(self, ref: str) -> list[Mapping[str, Any]]:
        """Settings that apply to one model, highest precedence first."""
        own = [spec.parameters for spec in self.models if spec.ref == ref]
        return own[:1] + self.parameters


class _Mapping(dict):
    """A YAML mapping that remembers the line it started on (for error messages)."""

    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config(path: str | Path) -> list[StepSpec]:
    """Read a merge config file; returns its steps in order (one step for a plain merge)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MergeError(f"cannot read merge config {path}: {error.strerror}") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        raise MergeError(f"{path}: not valid YAML: {error}") from None
    return parse_config(data, str(path))


def parse_config(data: Any, source: str = "config") -> list[StepSpec]:
    """Validate a parsed config (a mapping) and turn it into steps."""
    if not isinstance(data, Mapping):
        raise MergeError(f"{source}: a merge config must be a mapping with merge_method and models")
    if "steps" not in data:
        return [_parse_step(data, source, default_name="merge")]
    extra = sorted(set(data) - {"steps"})
    if extra:
        raise MergeError(f"{_at(source, data)}: with steps:, every key belongs inside a step (found {extra})")
    steps_data = data["steps"]
    if not isinstance(steps_data, list) or not steps_data:
        raise MergeError(f"{_at(source, data)}: steps must be a non-empty list of merges")
    steps: list[StepSpec] = []
    for index, step_data in enumerate(steps_data):
        if not isinstance(step_data, Mapping) or not isinstance(step_data.get("name"), str):
            raise MergeError(f"{_at(source, step_data)}: steps[{index}] needs a name (a string)")
        step = _parse_step(step_data, source, default_name=step_data["name"])
        if any(earlier.name == step.name for earlier in steps):
            raise MergeError(f"{_at(source, step_data)}: two steps are named {step.name!r}")
        steps.append(step)
    return steps


def _at(source: str, node: Any) -> str:
    line = getattr(node, "line", None)
    return f"{source}:{line}" if line else source


def _parse_step(data: Mapping, source: str, default_name: str) -> StepSpec:
    name = str(data.get("name") or default_name)
    where = f"{source} (step {name!r})" if "name" in data else source
    here = _at(source, data)
    unknown = sorted(set(data) - STEP_KEYS - {"modules"})
    for key in unknown:
        hint = difflib.get_close_matches(key, STEP_KEYS, n=1)
        log.warning(
            "%s: unknown key %r ignored%s", here, key, f" (did you mean {hint[0]!r}?)" if hint else ""
        )
    if "modules" in data:
        raise MergeError(f"{here}: modules: (per-module merges of multimodal models) is not supported")
    method = data.get("merge_method")
    if not isinstance(method, str):
        raise MergeError(f"{here}: merge_method is required (for example linear, ties, arcee_fusion)")

    global_params = _parameters(data.get("parameters"), f"{here}: parameters")
    layers = [global_params]
    if "models" in data and "slices" in data:
        raise MergeError(f"{here}: give either models: or slices:, not both")
    slices = None
    if "slices" in data:
        slices = _slices(data["slices"], source)
        models = list(
            {
                spec.ref: ModelSpec(spec.ref, spec.parameters) for piece in slices for spec in piece.sources
            }.values()
        )
    elif "models" in data:
        models = _models(data["models"], source, here)
    else:
        raise MergeError(f"{here}: models: is required (the models to merge)")

    tokenizer_source = data.get("tokenizer_source")
    tokenizer = data.get("tokenizer")
    if tokenizer is not None:
        if tokenizer_source is not None:
            raise MergeError(f"{here}: give either tokenizer_source or tokenizer, not both")
        if not isinstance(tokenizer, Mapping) or set(tokenizer) - {"source"}:
            raise MergeError(
                f"{_at(source, tokenizer)}: only tokenizer: {{source: ...}} is supported "
                "(adding tokens and pad_to_multiple_of are not)"
            )
        tokenizer_source = tokenizer.get("source")
    if tokenizer_source is not None and not isinstance(tokenizer_source, str):
        raise MergeError(f"{here}: tokenizer_source must be 'base' or a model")
    if data.get("chat_template") is not None:
        log.warning("%s: chat_template is ignored; the tokenizer files are copied as they are", here)

    base_model = data.get("base_model")
    if base_model is not None and not isinstance(base_model, str):
        raise MergeError(f"{here}: base_model must be a model path or an earlier step's name")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MergeError(f"{here}: seed must be an integer")
    untie = data.get("untie_embeddings", False)
    if not isinstance(untie, bool):
        raise MergeError(f"{here}: untie_embeddings must be true or false")
    return StepSpec(
        name=name,
        method=method,
        models=models,
        base_model=base_model,
        parameters=layers,
        dtype=_dtype(data.get("dtype"), here, "dtype"),
        out_dtype=_dtype(data.get("out_dtype"), here, "out_dtype"),
        tokenizer_source=tokenizer_source,
        untie_embeddings=untie,
        seed=seed,
        slices=slices,
        where=where,
        raw=_plain(data),
    )


def _plain(value: Any) -> Any:
    """The config as plain dicts and lists (for writing it next to the merged model)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _dtype(value: Any, here: str, key: str) -> str | None:
    if value is None:
        return None
    canonical = DTYPE_NAMES.get(str(value).lower())
    if canonical is None:
        raise MergeError(f"{here}: {key} {value!r} is not one of float32, bfloat16, float16, float64")
    return canonical


def _parameters(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MergeError(f"{where} must be a mapping of parameter names to values")
    for name, setting in value.items():
        _check_setting(setting, f"{where}.{name}")
    return value


def _check_setting(setting: Any, where: str) -> None:
    if isinstance(setting, (bool, int, float, str)):
        return
    if isinstance(setting, Mapping):
        setting = [setting]
    if isinstance(setting, list) and setting:
        if all(isinstance(item, (bool, int, float, str)) for item in setting):
            return
        for item in setting:
            if not isinstance(item, Mapping) or "value" not in item or set(item) - {"filter", "value"}:
                raise MergeError(
                    f"{where}: each entry of a filtered list needs a value (and optional filter)"
                )
            if item.get("filter") is not None and not isinstance(item["filter"], str):
                raise MergeError(f"{where}: filter must be a string")
            _check_setting(item["value"], where)
        return
    raise MergeError(f"{where}: expected a number, a list of numbers or a list of {{filter, value}}")


def _model_ref(entry: Any, where: str) -> str:
    ref = entry.get("model") if isinstance(entry, Mapping) else None
    if not isinstance(ref, str) or not ref:
        raise MergeError(f"{where}: each model needs model: <directory or earlier step>")
    if "+" in ref and not Path(ref).exists():
        raise MergeError(f"{where}: model {ref!r} looks like a model+LoRA reference, which is not supported")
    return ref


def _models(value: Any, source: str, here: str) -> list[ModelSpec]:
    if not isinstance(value, list) or not value:
        raise MergeError(f"{here}: models must be a non-empty list")
    models = []
    for index, entry in enumerate(value):
        where = f"{_at(source, entry)}: models[{index}]"
        ref = _model_ref(entry, where)
        unknown = set(entry) - {"model", "parameters"}
        if unknown:
            raise MergeError(f"{where}: unknown keys {sorted(unknown)} (expected model, parameters)")
        if any(spec.ref == ref for spec in models):
            raise MergeError(f"{where}: model {ref!r} is listed twice")
        models.append(ModelSpec(ref, _parameters(entry.get("parameters"), f"{where}.parameters")))
    return models


def _slices(value: Any, source: str) -> list[SliceSpec]:
    if not isinstance(value, list) or not value:
        raise MergeError(f"{_at(source, value)}: slices must be a non-empty list of {{sources: [...]}}")
    slices = []
    for number, out_slice in enumerate(value):
        where = f"{_at(source, out_slice)}: slices[{number}]"
        if (
            not isinstance(out_slice, Mapping)
            or not isinstance(out_slice.get("sources"), list)
            or not out_slice["sources"]
        ):
            raise MergeError(f"{where}: a slice needs sources: (a list of model and layer_range)")
        unknown = set(out_slice) - {"sources", "parameters", "base_model", "residual_weight"}
        if unknown:
            raise MergeError(
                f"{where}: unknown keys {sorted(unknown)} (expected sources, parameters, base_model)"
            )
        if out_slice.get("residual_weight") is not None:
            raise MergeError(f"{where}: residual_weight is not supported (mergekit does not use it either)")
        base_model = out_slice.get("base_model")
        if base_model is not None and not isinstance(base_model, str):
            raise MergeError(f"{where}: base_model must be a model path")
        sources = []
        for index, entry in enumerate(out_slice["sources"]):
            here = f"{_at(source, entry)}: slices[{number}].sources[{index}]"
            ref = _model_ref(entry, here)
            unknown = set(entry) - {"model", "layer_range", "parameters"}
            if unknown:
                raise MergeError(
                    f"{here}: unknown keys {sorted(unknown)} (expected model, layer_range, parameters)"
                )
            layer_range = entry.get("layer_range")
            if not (
                isinstance(layer_range, list)
                and len(layer_range) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in layer_range)
                and 0 <= layer_range[0] < layer_range[1]
            ):
                raise MergeError(
                    f"{here}: layer_range must be [start, end] with 0 <= start < end (layers start..end-1)"
                )
            if any(spec.ref == ref for spec in sources):
                raise MergeError(f"{here}: model {ref!r} is listed twice in one slice")
            sources.append(
                SourceSpec(
                    ref,
                    layer_range[0],
                    layer_range[1],
                    _parameters(entry.get("parameters"), f"{here}.parameters"),
                )
            )
        lengths = {spec.end - spec.start for spec in sources}
        if len(lengths) != 1:
            raise MergeError(
                f"{where}: every source of a slice needs the same number of layers "
                f"(layer_ranges give {sorted(lengths)})"
            )
        slices.append(
            SliceSpec(sources, _parameters(out_slice.get("parameters"), f"{where}.parameters"), base_model)
        )
    return slices


# ---------------------------------------------------------------------------------------------
# Per-tensor parameter resolution


def evaluate(setting: Any, tensor_name: str, t: float) -> Any:
    """The value of one setting for one tensor; `t` is the layer position in [0, 1]."""
    if isinstance(setting, Mapping):
        setting = [setting]
    if not isinstance(setting, list):
        return setting
    if not setting:
        return None
    if all(isinstance(item, (bool, int, float, str)) for item in setting):
        return gradient(setting, t)
    for item in setting:
        filt = item.get("filter")
        if filt is None or filt == "*" or filt in tensor_name:
            return evaluate(item["value"], tensor_name, t)
    return None


def gradient(values: Sequence[Any], t: float) -> Any:
    """Interpolate a list of values at position t (0 = first layer, 1 = last layer)."""
    numbers = [_number(value) for value in values]
    if any(number is None for number in numbers):
        return values[int(t * (len(values) - 1))]
    scaled = t * (len(numbers) - 1)
    low = int(scaled)
    high = min(len(numbers) - 1, low + 1)
    frac = scaled - low
    return (1 - frac) * numbers[low] + frac * numbers[high]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)  # YAML reads 1e-3 (no dot) as a string
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Required:
    """The default of a parameter that has none: the config must set it."""

    kind: type


def resolve(name: str, layers: Sequence[Mapping[str, Any]], tensor_name: str, t: float, default: Any) -> Any:
    """Look a parameter up in settings layers (highest precedence first), coerced to default's type."""
    for layer in layers:
        if layer and name in layer:
            value = evaluate(layer[name], tensor_name, t)
            if value is not None:
                return coerce(value, default, name)
    if isinstance(default, Required):
        raise MergeError(f"parameter {name} is required (no value given applies to this tensor)")
    return default


def coerce(value: Any, default: Any, name: str) -> Any:
    """Convert a config value to the type of the parameter's default (bool, int or float)."""
    kind = default.kind if isinstance(default, Required) else type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MergeError(f"parameter {name} must be true or false, got {value!r}")
    number = _number(value)
    if number is None:
        raise MergeError(f"parameter {name} must be a number, got {value!r}")
    return int(number) if kind is int else number
