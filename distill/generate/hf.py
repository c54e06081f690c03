"""Local generation with transformers: for small teachers, students and tests (CPU or one GPU).

Requests are grouped into batches of similar prompt length (less padding), left-padded, and
decoded with the model's own `generate`. Sampling is seeded per batch from the requests' own
seeds, so the same run gives the same text; a sample may differ when the batch it falls in
differs (a resumed run batches only what is left), which is the price of batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple

from distill.errors import first_line, model_folder
from distill.generate.base import Backend, Completion, Emit, GenerationError, Request


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model: str, batch_size: int = 16, device: str | None = None, dtype: str = "auto"):
        super().__init__(model)
        import torch
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise GenerationError("batch size must be >= 1")
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model_folder(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            torch_dtype = {
                "auto": "auto",
                "float32": torch.float32,
                "bfloat16": torch.bfloat16,
                "float16": torch.float16,
            }
            self.lm = (
                AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype[dtype]).to(self.device).eval()
            )
        except (OSError, ValueError, KeyError, SafetensorError) as error:
            raise GenerationError(
                f"{model}: cannot load the model with transformers ({first_line(error)})"
            ) from error
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def render(self, request: Request) -> str:
        """The prompt text the model reads for a request (its chat template applied)."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(
                request.chat(), tokenize=False, add_generation_prompt=True
            )
        return "\n\n".join(content for _, content in request.messages)  # a base model without a template

    def generate(self, requests: Sequence[Request], emit: Emit) -> None:
        import torch

        texts = [self.render(request) for request in requests]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        # Batches of one sampling setting and similar length; the order inside is the request order.
        order = sorted(range(len(requests)), key=lambda i: (astuple(requests[i].params), lengths[i], i))
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.batch_size
                and requests[batches[-1][0]].params == requests[i].params
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        stop_ids = self._stop_ids()
        for batch in batches:
            params = requests[batch[0]].params
            encoded = self.tokenizer(
                [texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False
            )
            encoded = encoded.to(self.device)
            sampling = (
                {"do_sample": False}
                if params.temperature == 0
                else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
            )
            torch.manual_seed(min(requests[i].seed for i in batch))
            with torch.inference_mode():
                output = self.lm.generate(
                    **encoded,
                    max_new_tokens=params.max_tokens,
                    eos_token_id=sorted(stop_ids),
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            new = output[:, encoded["input_ids"].shape[1] :].tolist()
            for row, i in enumerate(batch):
                tokens = new[row]
                end = next((k for k, token in enumerate(tokens) if token in stop_ids), None)
                kept = tokens if end is None else tokens[:end]
                emit(
                    i,
                    Completion(
                        text=self.tokenizer.decode(kept, skip_special_tokens=True),
                        finish_reason="length" if end is None else "stop",
                        prompt_tokens=lengths[i],
                        completion_tokens=len(kept) + (end is not None),
                    ),
                )

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.lm.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        ids.discard(None)
        if not ids:
            raise GenerationError(
                f"{self.model}: the tokenizer has no EOS token, generation could never stop"
            )
        return ids

    def close(self) -> None:
        del self.lm
