"""`python -m training <command>`: commands live in training/commands/<name>.py with
`register(subparsers)`."""

from __future__ import annotations

import argparse

from curation.cli_common import build_command_parser, run_command_line

COMMANDS: list[str] = ["run", "mixture", "tokenizer", "ablate"]


def build_parser() -> argparse.ArgumentParser:
    return build_command_parser(
        "python -m training",
        "Mixtures (YAML -> packed token shards) and two-phase pretraining.",
        "training.commands",
        COMMANDS,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command_line(build_parser(), argv)
