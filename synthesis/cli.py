"""`python -m synthesis <command>`: commands live in synthesis/commands/<name>.py with
`register(subparsers)`."""

from __future__ import annotations

import argparse

from curation.cli_common import build_command_parser, run_command_line

COMMANDS: list[str] = ["generate", "label_edu", "merge", "run"]


def build_parser() -> argparse.ArgumentParser:
    return build_command_parser(
        "python -m synthesis",
        "Teacher LLM batches: edu labels and synthetic textbook data.",
        "synthesis.commands",
        COMMANDS,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command_line(build_parser(), argv)
