"""Generators by recipe kind."""
from synthesis.textbook.generators.base import Generator, Parsed
from synthesis.textbook.generators.code import CodeGenerator
from synthesis.textbook.generators.math import MathGenerator
from synthesis.textbook.generators.puzzle import PuzzleGenerator
from synthesis.textbook.generators.textbook import TextbookGenerator

GENERATORS: dict[str, Generator] = {g.kind: g for g in (TextbookGenerator(), MathGenerator(), CodeGenerator(),
                                                           PuzzleGenerator())}

__all__ = ["GENERATORS", "Generator", "Parsed"]
