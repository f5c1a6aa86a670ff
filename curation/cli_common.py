"""The `python -m curation|synthesis|training <command>` entry point, one for all three packages (it lives in
curation because both other packages may import curation, never the reverse).

Each command is a module `<package>.commands.<name>` exposing `register(subparsers)`, so a package's CLI is
its list of command names."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: `--input` help of the commands that read any input (curation.ingest.inputs.resolve_input)
INPUT_HELP = (
    "dataset root (its CURRENT) or version folder, or plain parquet / JSONL(.gz) files: a file, folder or"
    " glob (local or s3://); plain files need a `text` column"
)


def build_command_parser(
    prog: str, description: str, commands_package: str, commands: list[str]
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands:
        importlib.import_module(f"{commands_package}.{name}").register(sub)
    return parser


def run_command_line(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse argv, set up logging and run the chosen command; its return value is the exit status."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Spark's JVM bridge logs every call; -v is for our own debug lines (a no-op where Spark never starts)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as e:  # user errors: one clear line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
