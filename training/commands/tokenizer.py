"""`python -m training tokenizer train --mixture MIX.yaml --output DIR`: a tokenizer as a shared, versioned
artifact. Trains the byte-level BPE a mixture build would train (its `tokenizer.train` settings, its phase-1
sample, held-out documents excluded) into DIR with tokenizer.meta.json (hash = sha256 of tokenizer.json).
Mixtures then name it (`tokenizer: {path: DIR}`) instead of training their own, so arms of an ablation and
the final run share one vocabulary and their losses compare."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenizer", help="train a tokenizer once, as an artifact mixtures share")
    tsub = p.add_subparsers(dest="tokenizer_command", required=True, metavar="ACTION")
    t = tsub.add_parser(
        "train", help="train the BPE of a mixture's tokenizer.train settings on its phase-1 sample"
    )
    t.add_argument(
        "--mixture", required=True, help="mixture YAML whose phase-1 sources are the training sample"
    )
    t.add_argument("--output", required=True, metavar="DIR")
    t.add_argument("--vocab-size", type=int, help="override tokenizer.train.vocab_size")
    t.add_argument("--sample-documents", type=int, help="override tokenizer.train.sample_documents")
    t.set_defaults(func=train_main)


def train_main(args: argparse.Namespace) -> int:
    from training.mixture.artifact import train_artifact

    meta = train_artifact(args.mixture, args.output, args.vocab_size, args.sample_documents)
    print(
        f"tokenizer -> {args.output}: vocab {meta['vocab_size']}, eos {meta['eos_token']!r}"
        f" (id {meta['eos_id']}),"
        f" hash {meta['hash']}"
    )
    return 0
