"""`python -m curation <command>`: each command lives in curation/commands/<name>.py and exposes
`register(subparsers)`; adding a command is adding its module name to COMMANDS."""

from __future__ import annotations

import argparse

from curation.cli_common import build_command_parser, run_command_line

COMMANDS = ["run", "append", "dedup", "gate", "report", "edu", "prune", "tables"]


def build_parser() -> argparse.ArgumentParser:
    return build_command_parser(
        "python -m curation",
        "Web curation on Spark: ingest, extract, filter, dedup, score.",
        "curation.commands",
        COMMANDS,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command_line(build_parser(), argv)
