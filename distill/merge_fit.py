"""Fitting a task-arithmetic merge's coefficients to the students' own outputs (the merge search's
`fit` candidate).

The merged model is base + sum_s sum_t lambda[s, t] * (student_s - base) restricted to tensor t:
one coefficient per student and per tensor (AdaMerging's layer-wise coefficients, Yang et al.,
2024). The coefficients are fitted by gradient descent so that, on each domain's validation
prompts, the merged model's next-token distribution matches that domain's student on the
student's own greedy answer: the loss is sum_d mean KL(student_d || merged) over the answer tokens
of domain d's prompts. Only the prompts are read, never a reference answer or a test, and the
student's answers come from the student itself, so the fit uses nothing the verifiers score
against; the fitted merge is then scored on the validation sets like any other candidate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitSettings:
    prompts: int = 48  # validation prompts per domain whose student answers are fitted
    steps: int = 40  # Adam steps
    lr: float = 0.05
    batch: int = 8  # sequences per domain per step
    init: float = 0.5  # every coefficient's starting value
    seed: int = 0

    @classmethod
    def of(cls, value: Any) -> FitSettings:
        """From a plan's `fit` value: true (the defaults) or a mapping of these settings."""
        if value is True:
            return cls()
        if not isinstance(value, Mapping) or set(value) - set(cls.__dataclass_fields__):
            raise ValueError(f"fit must be true or a mapping of {', '.join(cls.__dataclass_fields__)}")
        return cls(**value)


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


def fit_coefficients(
    lm: Any,
    tokenizer: Any,
    base: Mapping[str, Any],
    students: Sequence[Mapping[str, Any]],
    rendered: Sequence[Sequence[str]],
    answer: Callable[[int], list[str]],
    settings: FitSettings,
    log: Callable[[str], None] = lambda _: None,
) -> list[dict[str, float]]:
    """Per student, tensor name -> its fitted coefficient. `rendered[d]`: domain d's prompts as the
    model reads them (chat template applied); `answer(d)` loads student d into `lm` and returns its
    answers to them. `lm` is left holding its last student's weights (the caller loads what it needs)."""
    import torch
    from torch.func import functional_call

    targets = []
    for index, prompts in enumerate(rendered):
        answers = answer(index)
        targets.append(_targets(lm, tokenizer, prompts, answers))
    names = [n for n, t in base.items() if t.is_floating_point() and all(n in s for s in students)]
    deltas = {n: torch.stack([s[n].float() - base[n].float() for s in students]) for n in names}
    coefficients = torch.full((len(students), len(names)), settings.init, requires_grad=True)
    optimiser = torch.optim.Adam([coefficients], lr=settings.lr)
    rng = random.Random(settings.seed)
    lm.eval()
    for step in range(settings.steps):
        merged = {
            n: base[n].float() + torch.tensordot(coefficients[:, j], deltas[n], dims=1)
            for j, n in enumerate(names)
        }
        loss = torch.zeros(())
        for target in targets:
            rows = rng.sample(range(len(target.ids)), min(settings.batch, len(target.ids)))
            logits = functional_call(
                lm,
                merged,
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
        if step % 10 == 0 or step == settings.steps - 1:
            log(f"fit step {step}: KL summed over domains {loss.item():.4f}")
    values = coefficients.detach()
    return [{n: round(float(values[s, j]), 4) for j, n in enumerate(names)} for s in range(len(students))]
