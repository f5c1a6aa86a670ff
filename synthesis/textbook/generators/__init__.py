"""The generators, registered once by kind: recipes validate `generator` against this map, the plan builds
prompts and the pipeline parses and verifies through it. Adding a generator: its module here (a `Generator`
subclass with `kind`, `prompt`, `parse`, and `verify` where its answers can be checked), one entry below, a
test."""

from synthesis.textbook.generators.base import Generator, Parsed, ToVerify, Verdict, VerifyContext
from synthesis.textbook.generators.code import CodeGenerator
from synthesis.textbook.generators.math import MathGenerator
from synthesis.textbook.generators.math_exercise import MathExerciseGenerator
from synthesis.textbook.generators.puzzle import PuzzleGenerator
from synthesis.textbook.generators.textbook import TextbookGenerator

GENERATORS: dict[str, Generator] = {
    g.kind: g
    for g in (
        TextbookGenerator(),
        MathGenerator(),
        CodeGenerator(),
        PuzzleGenerator(),
        MathExerciseGenerator(),
    )
}

__all__ = ["GENERATORS", "Generator", "Parsed", "ToVerify", "Verdict", "VerifyContext"]
