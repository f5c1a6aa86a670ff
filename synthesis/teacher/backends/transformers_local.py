"""transformers on CPU or GPU: batched `generate` over a local HF directory or a GGUF file.

GGUF files are dequantised by transformers on load (needs `gguf` and `accelerate`); the embedded SmolLM2
GGUF is the default, so this backend runs with no download. Requests in one micro-batch are grouped by
sampling parameters because `generate` takes one configuration per call; prompts are left-padded so every
row's completion starts at the same column.

Limits worth knowing: there is no constrained decoding here, so a `response_schema` is only checked after the
fact (the runner records a mismatch as `schema_invalid`); a per-request `seed` seeds the whole group, so
sampled outputs depend on batch composition.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from synthesis.teacher.backends.base import BackendConfigBase, BatchedBackend, Generation, TeacherBackendError
from synthesis.teacher.backends.embedded import embedded_model_path, gguf_model_id
from synthesis.teacher.request import SamplingParams, TeacherRequest

log = logging.getLogger(__name__)


class TransformersConfig(BackendConfigBase):
    kind: Literal["transformers"] = "transformers"
    model: Path | None = Field(
        None, description="HF model directory or a .gguf file; default: the embedded GGUF"
    )
    device: str = Field("cpu", description="cpu | cuda | cuda:N | auto")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(8, ge=1, le=4096)


class TransformersBackend(BatchedBackend):
    name = "transformers"
    config = TransformersConfig

    def __init__(self, cfg: TransformersConfig | None = None):
        self.cfg = cfg or TransformersConfig()
        self.batch_size = self.cfg.batch_size
        path = Path(self.cfg.model) if self.cfg.model is not None else embedded_model_path()
        if path.suffix == ".gguf":
            path = embedded_model_path(path)  # clear error naming the file if it is missing
            self._model_dir, self._gguf_file, self._model_id = path.parent, path.name, gguf_model_id(path)
        else:
            if not (path / "config.json").is_file():
                raise FileNotFoundError(
                    f"transformers teacher model {path} is neither a .gguf file nor a "
                    f"HF model directory with config.json"
                )
            self._model_dir, self._gguf_file, self._model_id = path, None, path.name
        self.model = None
        self.tokenizer = None

    @property
    def model_id(self) -> str:
        return self._model_id

    def start(self) -> None:
        if self.model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise TeacherBackendError(
                f"transformers teacher: device={self.cfg.device!r} but torch sees no CUDA GPU"
            )
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
            self.cfg.dtype, torch.bfloat16 if device.startswith("cuda") else torch.float32
        )
        if device == "cpu" and os.environ.get("OMP_NUM_THREADS") is None:
            # torch's OpenMP spin-waiting on a shared 2-core box is ~15x slower (STACK-NOTES P9)
            log.warning("OMP_NUM_THREADS is unset; CPU generation may be very slow (source scripts/env.sh)")
        t0 = time.perf_counter()
        kw = {"gguf_file": self._gguf_file} if self._gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self._model_dir, **kw)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = (
            AutoModelForCausalLM.from_pretrained(self._model_dir, dtype=dtype, **kw).to(device).eval()
        )
        self.device = device
        log.info(
            "transformers teacher %s loaded on %s (%s) in %.1fs",
            self._model_id,
            device,
            dtype,
            time.perf_counter() - t0,
        )

    def close(self) -> None:
        self.model = None
        self.tokenizer = None

    def prompt_text(self, req: TeacherRequest) -> str:
        if req.messages is not None:
            return self.tokenizer.apply_chat_template(
                [m.model_dump() for m in req.messages], add_generation_prompt=True, tokenize=False
            )
        return req.prompt

    def generate_batch(self, requests: Sequence[TeacherRequest]) -> list[Generation]:
        self.start()
        groups: dict[SamplingParams, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling, []).append(i)
        out: list[Generation] = []
        for sampling, idx in groups.items():
            out += self._generate_group([requests[i] for i in idx], idx, sampling)
        return out

    def _generate_group(
        self, reqs: list[TeacherRequest], idx: list[int], s: SamplingParams
    ) -> list[Generation]:
        import torch
        from transformers import GenerationConfig

        tok = self.tokenizer
        # Chat templates already contain the special tokens; raw prompts get the tokenizer's usual ones.
        chat = [r.messages is not None for r in reqs]
        texts = [self.prompt_text(r) for r in reqs]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not all(chat)).to(self.device)
        gen_cfg = GenerationConfig(
            max_new_tokens=s.max_tokens,
            do_sample=s.temperature > 0,
            temperature=s.temperature if s.temperature > 0 else None,
            top_p=s.top_p if s.temperature > 0 else None,
            top_k=(s.top_k or 0) if s.temperature > 0 else None,
            num_return_sequences=s.n,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            stop_strings=list(s.stop) or None,
        )
        if s.seed is not None:
            torch.manual_seed(s.seed)
        t0 = time.perf_counter()
        with torch.inference_mode():
            seqs = self.model.generate(**enc, generation_config=gen_cfg, tokenizer=tok if s.stop else None)
        latency = time.perf_counter() - t0
        new = seqs[:, enc["input_ids"].shape[1] :].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        eos_ids = set(
            gen_cfg.eos_token_id if isinstance(gen_cfg.eos_token_id, list) else [gen_cfg.eos_token_id]
        )

        gens = []
        for j, i in enumerate(idx):
            g = Generation(index=i, prompt_tokens=int(prompt_lens[j]), completion_tokens=0, latency_s=latency)
            for row in new[j * s.n : (j + 1) * s.n]:
                text, finish, used = self._decode(row, eos_ids, s)
                g.texts.append(text)
                g.finish_reasons.append(finish)
                g.completion_tokens += used
            gens.append(g)
        return gens

    def _decode(self, row: list[int], eos_ids: set[int], s: SamplingParams) -> tuple[str, str, int]:
        """Completion text (without EOS/padding and without the stop string, as the OpenAI API does),
        the finish reason and the number of tokens the model produced for it."""
        end = next((k for k, t in enumerate(row) if t in eos_ids), None)
        used = len(row) if end is None else end + 1
        text = self.tokenizer.decode(row[:end], skip_special_tokens=True)
        finish = "stop" if end is not None else "length"
        for stop in s.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return text, finish, used
