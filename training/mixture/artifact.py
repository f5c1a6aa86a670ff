"""Train a mixture's tokenizer on its own, as an artifact (`python -m training tokenizer train`)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from training.mixture import sources as S
from training.mixture.build import tokenizer_sample
from training.mixture.schema import TrainTokenizer
from training.mixture.tokenizer import save_tokenizer, train_bpe, write_meta
from training.mixture.validate import check_mixture


def train_artifact(
    mixture: str | Path,
    output: str | Path,
    vocab_size: int | None = None,
    sample_documents: int | None = None,
) -> dict:
    cm = check_mixture(mixture)
    tcfg = cm.config.tokenizer
    if tcfg.train is None:
        raise ValueError(
            f"{mixture}: tokenizer.train is not set (it names a tokenizer folder, {tcfg.path!r}: "
            "use that folder as is)"
        )
    settings = TrainTokenizer.model_validate(
        tcfg.train.model_dump()
        | {
            k: v
            for k, v in (("vocab_size", vocab_size), ("sample_documents", sample_documents))
            if v is not None
        }
    )
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"tokenizer output {out} exists and is not empty: an artifact is never overwritten"
            " (its hash is in the builds that use it)"
        )
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        tok = train_bpe(
            tokenizer_sample(cm, S.connect(), settings.sample_documents),
            settings.vocab_size,
            settings.min_frequency,
            tcfg.eos_token,
        )
        save_tokenizer(tok, staging, tcfg.eos_token)
        meta = write_meta(
            staging,
            tcfg.eos_token,
            {
                "mixture": str(mixture),
                "settings": settings.model_dump(),
                "seed": cm.config.seed,
                "sources": [
                    {
                        "name": s.name,
                        "dataset": cm.resolved[(0, j)].label,
                        "filter": s.filter,
                        "weight": s.weight,
                    }
                    for j, s in enumerate(cm.config.phases[0].sources)
                ],
            },
        )
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta
