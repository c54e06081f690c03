"""Merge planning and execution.

`plan_step` runs every check before any tensor is read: the method's input contract,
architecture (config.json), tied embeddings vs a separate lm_head, tensor names, shapes,
vocabulary sizes (with tokenizer_source: pad or truncate embedding rows to one model's
vocabulary) and every parameter for every tensor. Only headers and small JSON files are read, so
a bad merge fails in seconds and each message names the model and the tensor. A chained config
is planned whole first, later steps against the planned outputs of earlier ones.

`execute` then streams: for each output tensor, read that tensor from every input, merge it
chunk by chunk and hand the chunks to a writer, so memory holds the inputs of one tensor.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from . import vocab as vocabularies
from .config import SliceSpec, StepSpec, load_config, resolve
from .errors import MergeError
from .methods import Method, TensorJob, get_method, run_job
from .tensors import DEFAULT_SHARD_BYTES, MemoryWriter, ModelReader, ShardedWriter, TensorMeta, nbytes
from .vocab import Vocabulary

log = logging.getLogger("merge")

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)
ARCHITECTURE_FIELDS = (
    "architectures",
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "n_embd",
    "n_layer",
    "n_head",
)
_HEAD = re.compile(r"(^|\.)(lm_head|embed_out)\.weight$")
_EMBEDDING = re.compile(r"(^|\.)(embed_tokens|wte|word_embeddings|embed_in)\.weight$")
_LAYER = re.compile(r"\.(\d+)\.")
_MAX_LISTED = 8
TORCH_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


@dataclass(eq=False)
class ModelInfo:
    """One merge input: a checkpoint on disk, an in-memory state dict, or an earlier step's output."""

    label: str
    path: Path | None
    config: dict
    tensors: dict[str, TensorMeta]
    state_dict: Mapping[str, torch.Tensor] | None = None
    tokenizer_dir: Path | None = None
    tokens: dict[int, str] | None = None  # id -> token when known without a tokenizer.json (a planned union)
    _reader: ModelReader | None = None

    @classmethod
    def from_dir(cls, label: str, path: Path) -> ModelInfo:
        config_file = path / "config.json"
        if not config_file.is_file():
            raise MergeError(f"model {label!r}: {path} has no config.json (is it a model directory?)")
        try:
            config = json.loads(config_file.read_text())
        except ValueError as error:
            raise MergeError(f"model {label!r}: {config_file} is not valid JSON ({error})") from None
        reader = ModelReader(path)
        return cls(label, path, config, reader.metas, tokenizer_dir=path, _reader=reader)

    @classmethod
    def from_state_dict(cls, label: str, state_dict: Mapping[str, torch.Tensor]) -> ModelInfo:
        metas = {name: TensorMeta(tuple(t.shape), t.dtype) for name, t in state_dict.items()}
        return cls(label, None, {}, metas, state_dict=state_dict)

    def read(self, name: str) -> torch.Tensor:
        if self.state_dict is not None:
            return self.state_dict[name]
        if self._reader is None:  # an earlier step's output, written since it was planned
            self._reader = ModelReader(self.path)
        return self._reader.read(name)

    @property
    def vocab_rows(self) -> int | None:
        embedding = self.embedding_name
        return self.tensors[embedding].shape[0] if embedding else None

    @property
    def embedding_name(self) -> str | None:
        return next((name for name in self.tensors if _EMBEDDING.search(name)), None)

    @property
    def head_name(self) -> str | None:
        return next((name for name in self.tensors if _HEAD.search(name)), None)


@dataclass
class OutputTensor:
    """One tensor of the merged model and how to make it."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    inputs: list[int]  # indices into the plan's inputs (all of them, or one slice's sources)
    sources: list[str]  # the tensor to read from each of those inputs
    base: int | None  # the base's position in `inputs`
    params: dict[str, Any]
    model_params: list[dict[str, Any]]
    vocab_rows: int | None = None  # the inputs' rows are aligned to the plan's vocabulary


@dataclass
class Route:
    """Where one output tensor comes from, before its parameters are resolved."""

    name: str
    inputs: list[int]
    sources: list[str]
    base: int | None
    t: float
    shared: list[Mapping[str, Any]]  # settings layers, highest precedence first
    own: list[list[Mapping[str, Any]]]  # per input: its settings layers


@dataclass
class StepPlan:
    step: StepSpec
    method: Method
    inputs: list[ModelInfo]
    base: int | None
    config_donor: int
    tokenizer_donor: int
    tensors: list[OutputTensor]
    out_config: dict
    out_dir: Path | None
    notes: list[str] = field(default_factory=list)
    vocabulary: Vocabulary | None = None  # when the inputs' vocabulary rows are re-aligned

    @property
    def total_bytes(self) -> int:
        return sum(nbytes(t.shape, t.dtype) for t in self.tensors)

    def output_info(self) -> ModelInfo:
        """The merged model as a later step sees it before it exists."""
        metas = {t.name: TensorMeta(t.shape, t.dtype) for t in self.tensors}
        donor = self.inputs[self.tokenizer_donor]
        if self.vocabulary is not None and self.vocabulary.added:  # a new tokenizer, written with the model
            return ModelInfo(
                self.step.name, self.out_dir, self.out_config, metas, tokens=self.vocabulary.tokens
            )
        return ModelInfo(
            self.step.name,
            self.out_dir,
            self.out_config,
            metas,
            tokenizer_dir=donor.tokenizer_dir,
            tokens=donor.tokens,
        )


@dataclass
class StepResult:
    name: str
    method: str
    inputs: list[str]
    tensors: int
    bytes: int
    seconds: float
    out_dir: Path | None
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# Planning and checks


def plan_step(step: StepSpec, find: Callable[[str], ModelInfo], out_dir: Path | None) -> StepPlan:
    """Resolve a step's inputs and check that they can be merged; raises MergeError listing every problem."""
    method = get_method(step.method)
    refs = [spec.ref for spec in step.models]
    uses_base = method.needs_base or (method.optional_base and step.base_model is not None)
    slice_bases = [piece.base_model for piece in step.slices or [] if piece.base_model]
    if method.needs_base and step.base_model is None and not slice_bases:
        raise MergeError(f"{step.where}: {method.name} needs base_model")
    if uses_base and step.slices is None and step.base_model not in refs:
        refs.append(step.base_model)  # mergekit adds an unlisted base as an input too
    inputs = [find(ref) for ref in refs]
    base = refs.index(step.base_model) if uses_base and step.base_model in refs else None
    _check_method_inputs(step, method, refs, base)
    notes = []
    if step.base_model is not None and base is None and step.base_model not in refs:
        notes.append(f"base_model {step.base_model} is not used by {method.name}")
    # config.json comes from the base, else from base_model when listed, else from the first model.
    if base is not None:
        config_donor = base
    elif step.base_model in refs:
        config_donor = refs.index(step.base_model)
    else:
        config_donor = 0
    tokenizer_donor = _tokenizer_donor(step, refs, base, config_donor)
    if out_dir is not None:
        for info in inputs:
            if info.path is not None and info.path.resolve() == out_dir.resolve():
                raise MergeError(f"{step.where}: the output folder {out_dir} is an input ({info.label})")

    problems: list[str] = []
    reference = inputs[config_donor]
    _check_architecture(inputs, reference, step, problems)
    head, untied = _head_plan(inputs, step, problems)
    if step.slices is None:
        routes = _model_routes(inputs, refs, base, reference, step, head, untied, problems)
        layer_sources = None
    else:
        routes, layer_sources = _slice_routes(
            inputs, refs, uses_base, reference, step, head, untied, problems
        )
    prefer = refs.index(step.base_model) if step.base_model in refs else None
    vocabulary = _check_vocabulary(inputs, tokenizer_donor, prefer, step, problems, notes)
    vocab_rows = vocabulary.size if vocabulary is not None else None
    vocab_differs = len({info.vocab_rows for info in inputs}) > 1
    _check_shapes(inputs, routes, vocab_differs, problems)
    if problems:
        raise MergeError(_problem_report(step, problems))

    tensors = _output_tensors(step, method, inputs, routes, reference, vocab_rows)
    out_config = dict(reference.config)
    if vocab_rows is not None and out_config:
        out_config["vocab_size"] = vocab_rows
    if layer_sources is not None and out_config:
        _restack_config(out_config, inputs, refs, layer_sources)
    if untied:
        out_config["tie_word_embeddings"] = False
        notes.append("lm_head untied from the embeddings for " + ", ".join(info.label for info in untied))
    forced = step.out_dtype or step.dtype
    if forced and out_config:
        # transformers 5 writes "dtype", earlier versions "torch_dtype": keep the donor's spelling.
        for key in [key for key in ("dtype", "torch_dtype") if key in out_config] or ["torch_dtype"]:
            out_config[key] = forced
    return StepPlan(
        step,
        method,
        inputs,
        base,
        config_donor,
        tokenizer_donor,
        tensors,
        out_config,
        out_dir,
        notes,
        vocabulary,
    )


def _check_method_inputs(step: StepSpec, method: Method, refs: list[str], base: int | None) -> None:
    """The method's input contract, for the whole step or for each slice."""
    if step.slices is None:
        problem = method.check_inputs(len(refs), base is not None)
        if problem:
            raise MergeError(f"{step.where}: {problem}")
        return
    for number, piece in enumerate(step.slices):
        members = [spec.ref for spec in piece.sources]
        slice_base = piece.base_model or step.base_model
        if method.needs_base and slice_base not in members:
            raise MergeError(
                f"{step.where}: slices[{number}]: {method.name} needs its base_model "
                f"({slice_base}) among the slice's sources {members}"
            )
        uses_base = method.needs_base or (method.optional_base and slice_base in members)
        problem = method.check_inputs(len(members), uses_base)
        if problem:
            raise MergeError(f"{step.where}: slices[{number}]: {problem}")


def _tokenizer_donor(step: StepSpec, refs: list[str], base: int | None, config_donor: int) -> int:
    source = step.tokenizer_source
    if source is None:
        return config_donor
    if source == "union":  # built on the base's tokenizer, as mergekit does
        return refs.index(step.base_model) if step.base_model in refs else config_donor
    if source == "base":
        if step.base_model is None or step.base_model not in refs:
            raise MergeError(f"{step.where}: tokenizer_source: base needs a base_model among the inputs")
        return refs.index(step.base_model)
    if source not in refs:
        raise MergeError(f"{step.where}: tokenizer_source {source!r} is not one of the merged models {refs}")
    return refs.index(source)


def _problem_report(step: StepSpec, problems: list[str]) -> str:
    shown = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return f"{step.where}: these models cannot be merged as configured:\n  - " + "\n  - ".join(shown) + more


def _check_architecture(
    inputs: list[ModelInfo], reference: ModelInfo, step: StepSpec, problems: list[str]
) -> None:
    # With slices the models may differ in depth: each layer range is checked against its model.
    skipped = {"num_hidden_layers", "n_layer"} if step.slices is not None else set()
    for info in inputs:
        if info is reference:
            continue
        for key in ARCHITECTURE_FIELDS:
            if key in skipped:
                continue
            if key in info.config and key in reference.config and info.config[key] != reference.config[key]:
                problems.append(
                    f"model {info.label}: config.json {key} is {info.config[key]!r} "
                    f"but {reference.label} has {reference.config[key]!r}"
                )


def _head_plan(
    inputs: list[ModelInfo], step: StepSpec, problems: list[str]
) -> tuple[str | None, list[ModelInfo]]:
    """The separate lm_head's name (if any input has one), and the tied inputs whose embeddings stand in for it."""
    heads = {info.head_name for info in inputs} - {None}
    tied = [info for info in inputs if info.head_name is None and info.embedding_name is not None]
    separate = [info for info in inputs if info.head_name is not None]
    head = next(iter(sorted(heads)), None)
    if tied and separate and not step.untie_embeddings:
        problems.append(
            f"tied embeddings: lm_head is tied to the input embeddings in {', '.join(i.label for i in tied)} "
            f"but is a separate {head} in {', '.join(i.label for i in separate)}; set untie_embeddings: true "
            "to use each tied model's embeddings as its lm_head and write an untied model"
        )
    return head, tied if separate else []


def _source_name(info: ModelInfo, name: str, head: str | None, untied: list[ModelInfo]) -> str:
    """The tensor to read from `info` for the output tensor `name` (its embeddings for an untied lm_head)."""
    return info.embedding_name if (name == head and info in untied) else name


def _model_routes(
    inputs: list[ModelInfo],
    refs: list[str],
    base: int | None,
    reference: ModelInfo,
    step: StepSpec,
    head: str | None,
    untied: list[ModelInfo],
    problems: list[str],
) -> list[Route]:
    """models: every output tensor merges the same-named tensor of every input."""
    names = list(reference.tensors)
    if untied and head not in names:
        names.append(head)
    sources = {name: [_source_name(info, name, head, untied) for info in inputs] for name in names}
    for index, info in enumerate(inputs):
        own = set(info.tensors)
        wanted = {per_input[index] for per_input in sources.values()}
        missing = sorted(wanted - own)
        extra = sorted(own - wanted)
        if missing:
            problems.append(
                f"model {info.label}: lacks {len(missing)} tensor(s) that {reference.label} has: "
                + _listing(missing)
            )
        if extra:
            problems.append(
                f"model {info.label}: has {len(extra)} tensor(s) that {reference.label} lacks: "
                + _listing(extra)
            )
    layers = _layer_count(sources)
    own_layers = [step.model_layers(ref) for ref in refs]
    return [
        Route(
            name,
            list(range(len(inputs))),
            per_input,
            base,
            _layer_position(name, layers),
            step.parameters,
            own_layers,
        )
        for name, per_input in sources.items()
    ]


def _slice_routes(
    inputs: list[ModelInfo],
    refs: list[str],
    uses_base: bool,
    reference: ModelInfo,
    step: StepSpec,
    head: str | None,
    untied: list[ModelInfo],
    problems: list[str],
) -> tuple[list[Route], list[tuple[int, int]]]:
    """slices: layers slice by slice, numbered on from 0; embeddings from the first slice, the rest from the last.

    Also returns, per output layer, the (input, layer) its first source read, for the output's config.
    """
    outside = [name for name in reference.tensors if not _LAYER.search(name)]
    if untied and head not in outside:
        outside.append(head)
    first = [name for name in outside if _EMBEDDING.search(name)]
    last = [name for name in outside if not _EMBEDDING.search(name)]
    names_by_layer = [_names_by_layer(info) for info in inputs]
    routes: list[Route] = []
    layer_sources: list[tuple[int, int]] = []

    def members_of(piece: SliceSpec) -> tuple[list[int], int | None]:
        members = [refs.index(spec.ref) for spec in piece.sources]
        slice_base = piece.base_model or step.base_model
        own_refs = [spec.ref for spec in piece.sources]
        return members, (own_refs.index(slice_base) if uses_base and slice_base in own_refs else None)

    def outside_routes(names: list[str], piece: SliceSpec) -> None:
        members, base = members_of(piece)
        for name in names:
            per = [_source_name(inputs[i], name, head, untied) for i in members]
            for i, source in zip(members, per, strict=True):
                if source not in inputs[i].tensors:
                    problems.append(f"model {inputs[i].label}: lacks {source}, which {reference.label} has")
            shared = [piece.parameters, *step.parameters]
            routes.append(
                Route(
                    name,
                    members,
                    per,
                    base,
                    0.0,
                    shared,
                    [[spec.parameters, *shared] for spec in piece.sources],
                )
            )

    outside_routes(first, step.slices[0])
    for number, piece in enumerate(step.slices):
        members, base = members_of(piece)
        short = False
        for i, spec in zip(members, piece.sources, strict=True):
            count = len(names_by_layer[i])
            if spec.end > count:
                problems.append(
                    f"slices[{number}]: model {inputs[i].label} has {count} layers, so layer_range "
                    f"[{spec.start}, {spec.end}] reaches past its last layer ({count - 1})"
                )
                short = True
        if short:
            continue
        shared = [piece.parameters, *step.parameters]
        own = [[spec.parameters, *shared] for spec in piece.sources]
        for offset in range(piece.length):
            t = offset / (piece.length - 1) if piece.length > 1 else 1.0
            out_layer = len(layer_sources)
            leader = piece.sources[0].start + offset
            for name in names_by_layer[members[0]][leader]:
                per = [_with_layer(name, spec.start + offset) for spec in piece.sources]
                for i, source in zip(members, per, strict=True):
                    if source not in inputs[i].tensors:
                        problems.append(
                            f"model {inputs[i].label}: lacks {source}, which {inputs[members[0]].label} has"
                        )
                routes.append(Route(_with_layer(name, out_layer), members, per, base, t, shared, own))
            layer_sources.append((members[0], leader))
    outside_routes(last, step.slices[-1])
    return routes, layer_sources


def _names_by_layer(info: ModelInfo) -> list[list[str]]:
    """The tensor names of each layer, in checkpoint order."""
    layers: list[list[str]] = [[] for _ in range(_layer_count(info.tensors))]
    for name in info.tensors:
        match = _LAYER.search(name)
        if match:
            layers[int(match.group(1))].append(name)
    return layers


def _with_layer(name: str, layer: int) -> str:
    return _LAYER.sub(f".{layer}.", name, count=1)


def _restack_config(
    config: dict, inputs: list[ModelInfo], refs: list[str], layer_sources: list[tuple[int, int]]
) -> None:
    """The output's layer count, and per-layer settings (such as layer_types) from each layer's source."""
    count = len(layer_sources)
    for key in ("num_hidden_layers", "n_layer"):
        if key in config:
            config[key] = count
    for key, value in list(config.items()):
        if key != "layer_types" or not isinstance(value, list):
            continue
        per_layer = []
        for index, layer in layer_sources:
            own = inputs[index].config.get(key)
            per_layer.append(
                own[layer]
                if isinstance(own, list) and layer < len(own)
                else value[min(layer, len(value) - 1)]
            )
        config[key] = per_layer


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def _check_vocabulary(
    inputs: list[ModelInfo],
    donor: int,
    prefer: int | None,
    step: StepSpec,
    problems: list[str],
    notes: list[str],
) -> Vocabulary | None:
    """The output vocabulary when tokenizer_source asks for one and it changes any input's rows, else None."""
    rows = {info.label: info.vocab_rows for info in inputs if info.vocab_rows is not None}
    tables = [
        info.tokens if info.tokens is not None else vocabularies.token_table(info.tokenizer_dir)
        for info in inputs
    ]
    sizes = ", ".join(f"{label}: {size}" for label, size in rows.items())
    if step.tokenizer_source is None:
        _compare_tokens(inputs, donor, tables, notes)
        if len(set(rows.values())) > 1:
            problems.append(
                f"vocabulary sizes differ ({sizes} rows in {inputs[0].embedding_name}); set tokenizer_source "
                "to the model whose tokenizer the merge keeps (rows are then matched by token), or to union"
            )
        return None
    if len(rows) != len(inputs):
        return None  # no embeddings to align (problems with missing tensors are reported elsewhere)
    counts = [info.vocab_rows for info in inputs]
    union = step.tokenizer_source == "union"
    added = [vocabularies.added_tokens(info.tokenizer_dir) for info in inputs]
    try:
        layout = vocabularies.build(tables, added, counts, donor, union, [info.label for info in inputs])
    except MergeError as error:
        problems.append(str(error))
        return None
    layout.prefer = prefer
    if layout.identity(counts):
        return None
    how = "by token" if layout.by_token else "by id (no tokenizer.json to match tokens)"
    source = (
        f"the union of the tokenizers ({len(layout.added)} tokens added to {inputs[donor].label}'s)"
        if union
        else f"{inputs[donor].label}'s tokenizer"
    )
    notes.append(f"vocabulary: {layout.size} rows from {source}, each input's rows matched {how} ({sizes})")
    return layout


def _compare_tokens(
    inputs: list[ModelInfo], donor: int, tables: list[dict[int, str] | None], notes: list[str]
) -> None:
    reference = tables[donor]
    if not reference:
        return
    for info, table in zip(inputs, tables, strict=True):
        if not table or info is inputs[donor]:
            continue
        for token_id in sorted(set(table) & set(reference)):
            if table[token_id] != reference[token_id]:
                notes.append(
                    f"warning: token id {token_id} is {table[token_id]!r} in {info.label} but "
                    f"{reference[token_id]!r} in {inputs[donor].label}; rows are merged by id "
                    "(set tokenizer_source to match them by token)"
                )
                break


def _check_shapes(
    inputs: list[ModelInfo], routes: list[Route], vocab_differs: bool, problems: list[str]
) -> None:
    """Every tensor has one shape across its inputs (vocabulary rows aside: _check_vocabulary's)."""
    for route in routes:
        pairs = [
            (inputs[i], inputs[i].tensors[source].shape)
            for i, source in zip(route.inputs, route.sources, strict=True)
            if source in inputs[i].tensors
        ]
        if len(pairs) != len(route.inputs) or len(pairs) < 2:
            continue  # a missing tensor is already reported
        resized = vocab_differs and _is_vocab(route.name)
        first, expected = pairs[0]
        for info, shape in pairs[1:]:
            if (shape[1:] != expected[1:]) if resized else (shape != expected):
                problems.append(
                    f"tensor {route.name}: model {info.label} has shape {list(shape)} "
                    f"but {first.label} has {list(expected)}"
                )


def _is_vocab(name: str) -> bool:
    return bool(_HEAD.search(name) or _EMBEDDING.search(name))


def _layer_count(names: Sequence[str] | Mapping[str, Any]) -> int:
    indices = [int(m.group(1)) for name in names if (m := _LAYER.search(name))]
    return max(indices) + 1 if indices else 0


def _layer_position(name: str, layers: int) -> float:
    """mergekit's t: 0 for tensors outside the layers, i / (layers - 1) for layer i (1 with one layer)."""
    match = _LAYER.search(name)
    if not match:
        return 0.0
    return int(match.group(1)) / (layers - 1) if layers > 1 else 1.0


def _output_tensors(
    step: StepSpec,
    method: Method,
    inputs: list[ModelInfo],
    routes: list[Route],
    reference: ModelInfo,
    vocab_rows: int | None,
) -> list[OutputTensor]:
    _warn_unknown_parameters(step, method)
    forced = TORCH_DTYPES.get(step.out_dtype or step.dtype or "")
    reference_index = inputs.index(reference)
    tensors = []
    for route in routes:
        position = route.inputs.index(reference_index) if reference_index in route.inputs else 0
        meta = inputs[route.inputs[position]].tensors[route.sources[position]]
        try:
            params = {
                key: resolve(key, route.shared, route.name, route.t, default)
                for key, default in method.shared_params.items()
            }
            model_params = []
            for slot, source in enumerate(route.sources):
                if slot == route.base and not method.base_gets_model_params:
                    model_params.append({})
                    continue
                model_params.append(
                    {
                        key: resolve(key, route.own[slot], source, route.t, default)
                        for key, default in method.model_params.items()
                    }
                )
            problem = method.check_parameters(params, model_params)
            if problem:
                raise MergeError(problem)
        except MergeError as error:
            raise MergeError(f"{step.where}: tensor {route.name}: {error}") from None
        shape = meta.shape
        vocab = vocab_rows is not None and _is_vocab(route.name)
        if vocab:
            shape = (vocab_rows, *shape[1:])
        dtype = forced if forced is not None and meta.dtype.is_floating_point else meta.dtype
        tensors.append(
            OutputTensor(
                route.name,
                shape,
                dtype,
                route.inputs,
                route.sources,
                route.base,
                params,
                model_params,
                vocab_rows if vocab else None,
            )
        )
    return tensors


def _warn_unknown_parameters(step: StepSpec, method: Method) -> None:
    known = set(method.shared_params) | set(method.model_params)
    given = {key for layer in step.parameters for key in layer}
    given |= {key for spec in step.models for key in spec.parameters}
    for piece in step.slices or []:
        given |= set(piece.parameters) | {key for spec in piece.sources for key in spec.parameters}
    for key in sorted(given - known):
        log.warning("%s: parameter %r is not used by %s", step.where, key, method.name)


# ---------------------------------------------------------------------------------------------
# Chained configs


def plan_config(
    path: str | Path, out: str | Path, *, steps_dir: str | Path | None = None, seed: int | None = None
) -> list[StepPlan]:
    """Plan every step of a config file; the last step writes to `out`, earlier ones to steps_dir/NAME."""
    path = Path(path)
    out = Path(out)
    steps = load_config(path)
    steps_dir = Path(steps_dir) if steps_dir is not None else out / "steps"
    outputs: dict[str, ModelInfo] = {}
    cache: dict[Path, ModelInfo] = {}

    def find(ref: str) -> ModelInfo:
        if ref in outputs:
            return outputs[ref]
        directory = _locate(ref, path.parent)
        if directory not in cache:
            cache[directory] = ModelInfo.from_dir(ref, directory)
        return cache[directory]

    plans = []
    for index, step in enumerate(steps):
        if seed is not None:
            step.seed = seed
        last = index == len(steps) - 1
        plan = plan_step(step, find, out if last else steps_dir / step.name)
        outputs[step.name] = plan.output_info()
        plans.append(plan)
    return plans


def _locate(ref: str, config_dir: Path) -> Path:
    """A model directory: as given (absolute or relative to the working directory), else next to the config."""
    given = Path(ref).expanduser()
    for candidate in (given, config_dir / given):
        if candidate.is_dir():
            return candidate
    raise MergeError(
        f"model {ref!r} not found (looked in {Path.cwd()} and {config_dir.resolve()}); distillery merges "
        "local checkpoints, so download hub models first (huggingface-cli download REPO --local-dir DIR)"
    )


# ---------------------------------------------------------------------------------------------
# Execution


def execute(plan: StepPlan, writer: ShardedWriter | MemoryWriter, progress: bool = False) -> None:
    """Merge every output tensor of a plan into `writer`, one tensor name at a time."""
    dtype = TORCH_DTYPES.get(plan.step.dtype or "")
    with tqdm(
        total=plan.total_bytes,
        unit="B",
        unit_scale=True,
        desc=plan.step.name,
        disable=not progress,
        leave=False,
    ) as bar:
        for out in plan.tensors:
            inputs = [
                plan.inputs[index].read(source) for index, source in zip(out.inputs, out.sources, strict=True)
            ]
            if out.vocab_rows is not None and plan.vocabulary is not None:
                layout = plan.vocabulary
                prefer = out.inputs.index(layout.prefer) if layout.prefer in out.inputs else None
                inputs = vocabularies.align(inputs, [layout.rows[index] for index in out.inputs], prefer)
            if dtype is not None:
                inputs = [t.to(dtype) if t.is_floating_point() and t.dtype != dtype else t for t in inputs]
            job = TensorJob(out.name, inputs, out.base, out.params, out.model_params, plan.step.seed)
            for rows, values in run_job(plan.method, job):
                writer.write(out.name, rows, values.to(out.dtype))
            del inputs, job
            bar.update(nbytes(out.shape, out.dtype))


def run_plan(plan: StepPlan, shard_bytes: int = DEFAULT_SHARD_BYTES, progress: bool = False) -> StepResult:
    """Execute a planned step to its output folder, with config, tokenizer and generation config."""
    started = time.perf_counter()
    out_dir = plan.out_dir
    writer = ShardedWriter(out_dir, [(t.name, t.shape, t.dtype) for t in plan.tensors], shard_bytes)
    try:
        execute(plan, writer, progress)
    except BaseException:
        writer.abort()
        raise
    writer.finalize()
    if plan.out_config:
        (out_dir / "config.json").write_text(json.dumps(plan.out_config, indent=2) + "\n")
    donor = plan.inputs[plan.tokenizer_donor].tokenizer_dir
    if donor is not None:
        for name in TOKENIZER_FILES:
            if (donor / name).is_file():
                shutil.copyfile(donor / name, out_dir / name)
        if plan.vocabulary is not None and plan.vocabulary.added:
            vocabularies.write_union_tokenizer(donor, out_dir, plan.vocabulary.added)
    (out_dir / "merge_config.yaml").write_text(yaml.safe_dump(plan.step.raw, sort_keys=False))
    return StepResult(
        plan.step.name,
        plan.method.name,
        [i.label for i in plan.inputs],
        len(plan.tensors),
        plan.total_bytes,
        time.perf_counter() - started,
        out_dir,
        plan.notes,
    )
