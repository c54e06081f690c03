"""Fitting a merge's per-tensor coefficients to the students' own outputs (the merge search's `fit`
candidate).

Two parametrisations, each with one coefficient per student and per tensor t (AdaMerging's
layer-wise coefficients, Yang et al., 2024; on TIES' trimmed, sign-elected vectors it is their
AdaMerging++):

- `task_arithmetic`: merged[t] = base[t] + sum_s c[s, t] d_s[t], with d_s = student_s - base, every
  c from `init`.
- `ties`: merged[t] = base[t] + lambda[t] * sum_s w[s, t] a_s[t] / sum_s w[s, t] n_s[t], where a_s is
  student s's task vector trimmed to `density` and kept where its sign agrees with the elected one
  (n_s: 1 there, else 0; the divisor is 1 where no student agrees): TIES with a weight per student
  and a lambda per tensor. From w = 1 and lambda = 1, the fixed TIES merge at that density. The
  trimming and the elected signs are those of the start; the fitted merge is then merged and scored
  by the real method, whose signs follow the fitted weights.

The coefficients are fitted by gradient descent so that, on each domain's validation prompts, the
merged model's next-token distribution matches that domain's student on the student's own greedy
answer: the loss is sum_d mean KL(student_d || merged) over the answer tokens of domain d's
prompts. Only the prompts are read, never a reference answer or a test, and the student's answers
come from the student itself, so the fit uses nothing the verifiers score against; the fitted
merge is then scored on the validation sets like any other candidate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitSettings:
    method: str = "task_arithmetic"  # or "ties" (the module's docstring)
    density: float = 0.5  # ties: each student's density
    prompts: int = 48  # validation prompts per domain whose student answers are fitted
    steps: int = 40  # Adam steps
    lr: float = 0.05
    batch: int = 8  # sequences per domain per step
    init: float = 0.5  # task_arithmetic: every coefficient's starting value (ties starts at 1)
    seed: int = 0

    @classmethod
    def of(cls, value: Any) -> FitSettings:
        """From a plan's `fit` value: true (the defaults) or a mapping of these settings."""
        if value is True:
            return cls()
        if not isinstance(value, Mapping) or set(value) - set(cls.__dataclass_fields__):
            raise ValueError(f"fit must be true or a mapping of {', '.join(cls.__dataclass_fields__)}")
        settings = cls(**value)
        if settings.method not in ("task_arithmetic", "ties"):
            raise ValueError(f"fit method must be task_arithmetic or ties, not {settings.method!r}")
        return settings


@dataclass
class Fitted:
    """A fitted merge's coefficients: per student, tensor name -> weight; for ties also tensor name
    -> lambda and the density."""

    method: str
    weights: list[dict[str, float]]
    scale: dict[str, float] | None = None
    density: float | None = None


@dataclass
class _Targets:
    """One domain's sequences (prompt + the student's answer), right-padded, and the student's
    log-probabilities at the positions that predict an answer token."""

    ids: Any  # [N, L] long
    mask: Any  # [N, L] attention mask
    predicts: Any  # [N, L] bool: position predicts an answer token
    teacher: list[Any]  # per sequence: [answer tokens, vocab] log-probs


def _targets(lm: Any, tokenizer: Any, rendered: Sequence[str], answers: Sequence[str]) -> _Targets:
    import torch

    rows, starts = [], []
    for prompt, answer in zip(rendered, answers, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            answer_ids = [*answer_ids, tokenizer.eos_token_id]
        rows.append(prompt_ids + answer_ids)
        starts.append(len(prompt_ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    predicts = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, start) in enumerate(zip(rows, starts, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        predicts[i, start - 1 : len(row) - 1] = True
    with torch.no_grad():
        logits = lm(input_ids=ids, attention_mask=mask).logits.float()
    teacher = [torch.log_softmax(logits[i][predicts[i]], dim=-1) for i in range(len(rows))]
    return _Targets(ids, mask, predicts, teacher)


def _ties_parts(deltas: Any, density: float) -> tuple[Any, Any]:
    """TIES' trimmed, sign-agreeing task vectors of one tensor ([students, ...]) and where they agree."""
    import torch

    trimmed = []
    for delta in deltas:
        keep = max(1, int(density * delta.numel()))
        threshold = delta.abs().flatten().kthvalue(delta.numel() - keep + 1).values
        trimmed.append(delta * (delta.abs() >= threshold))
    stacked = torch.stack(trimmed)
    elected = torch.sign(torch.sign(stacked.sum(0)) + 0.5)  # +1 where the sum is 0, as TIES
    agree = (stacked * elected > 0).float()
    return stacked * agree, agree


def fit_coefficients(
    lm: Any,
    tokenizer: Any,
    base: Mapping[str, Any],
    students: Sequence[Mapping[str, Any]],
    rendered: Sequence[Sequence[str]],
    answer: Callable[[int], list[str]],
    settings: FitSettings,
    log: Callable[[str], None] = lambda _: None,
) -> Fitted:
    """The fitted coefficients of `settings.method`. `rendered[d]`: domain d's prompts as the model
    reads them (chat template applied); `answer(d)` loads student d into `lm` and returns its answers
    to them. `lm` is left holding its last student's weights (the caller loads what it needs)."""
    import torch
    from torch.func import functional_call

    targets = []
    for index, prompts in enumerate(rendered):
        answers = answer(index)
        targets.append(_targets(lm, tokenizer, prompts, answers))
    names = [n for n, t in base.items() if t.is_floating_point() and all(n in s for s in students)]
    deltas = {n: torch.stack([s[n].float() - base[n].float() for s in students]) for n in names}
    ties = settings.method == "ties"
    start = 1.0 if ties else settings.init
    coefficients = torch.full((len(students), len(names)), start, requires_grad=True)
    scale = torch.ones(len(names), requires_grad=True)
    parts = {n: _ties_parts(deltas[n], settings.density) for n in names} if ties else {}

    def merged() -> dict[str, Any]:
        if not ties:
            return {
                n: base[n].float() + torch.tensordot(coefficients[:, j], deltas[n], dims=1)
                for j, n in enumerate(names)
            }
        out = {}
        for j, n in enumerate(names):
            agreeing, agree = parts[n]
            weight = coefficients[:, j].view(-1, *([1] * (agreeing.dim() - 1)))
            divisor = (weight * agree).sum(0)
            divisor = divisor + (divisor == 0).float()
            out[n] = base[n].float() + scale[j] * (weight * agreeing).sum(0) / divisor
        return out

    optimiser = torch.optim.Adam([coefficients, scale] if ties else [coefficients], lr=settings.lr)
    rng = random.Random(settings.seed)
    lm.eval()
    for step in range(settings.steps):
        state = merged()
        loss = torch.zeros(())
        for target in targets:
            rows = rng.sample(range(len(target.ids)), min(settings.batch, len(target.ids)))
            logits = functional_call(
                lm,
                state,
                args=(),
                kwargs={"input_ids": target.ids[rows], "attention_mask": target.mask[rows]},
            ).logits
            kl = []
            for k, row in enumerate(rows):
                student = target.teacher[row]
                mine = torch.log_softmax(logits[k][target.predicts[row]].float(), dim=-1)
                kl.append((student.exp() * (student - mine)).sum(-1).mean())
            loss = loss + torch.stack(kl).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if ties:  # TIES' weights are positive (a negative one would flip its student's signs)
            with torch.no_grad():
                coefficients.clamp_(min=1e-3)
                scale.clamp_(min=0.0)
        if step % 10 == 0 or step == settings.steps - 1:
            log(f"fit step {step}: KL summed over domains {loss.item():.4f}")
    values = coefficients.detach()
    weights = [{n: round(float(values[s, j]), 4) for j, n in enumerate(names)} for s in range(len(students))]
    if not ties:
        return Fitted("task_arithmetic", weights)
    lambdas = {n: round(float(v), 4) for n, v in zip(names, scale.detach(), strict=True)}
    return Fitted("ties", weights, lambdas, settings.density)
