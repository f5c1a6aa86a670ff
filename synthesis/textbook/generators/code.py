"""Python exercises: a function with signature and docstring (the exercise), a reference solution, and unit
tests as plain asserts. Verified by running solution + tests in the sandbox (verify/sandbox.py)."""
from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor

from synthesis.textbook.generators.base import Generator, Parsed, ToVerify, Verdict, VerifyContext, web_block
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.sandbox import run_python

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)


def _top_level_asserts(code: str) -> tuple[str, str]:
    """Split one block holding both the function and its asserts into (solution, tests)."""
    lines = code.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("assert ")), len(lines))
    return "\n".join(lines[:first]).rstrip(), "\n".join(lines[first:]).strip()


class CodeGenerator(Generator):
    kind = "code"
    prompt_version = "v1"

    def prompt(self, seed: SeedDraw) -> str:
        return (web_block(seed) + f"Write a Python programming exercise about {seed.topic} for {seed.audience_text}. "
                "Reply with exactly two Python code blocks:\n"
                "1. ```python ...``` with one function: its signature, a docstring that states the task, and a "
                "correct reference implementation (standard library only).\n"
                "2. ```python ...``` with at least three unit tests written as plain `assert` statements that call "
                "the function.")

    def parse(self, text: str) -> Parsed:
        blocks = [b.strip() for b in _FENCE.findall(text) if b.strip()]
        solution = next((b for b in blocks if "def " in b), None)
        if solution is None:
            return Parsed(reason="no_function", detail=f"{len(blocks)} code block(s), none defines a function")
        tests = next((b for b in blocks if b is not solution and "assert" in b), None)
        if tests is None and "\nassert " in solution:
            solution, tests = _top_level_asserts(solution)
        if not tests:
            return Parsed(reason="no_tests", detail="no block of assert statements")
        try:
            tree = ast.parse(solution)
            ast.parse(tests)
        except SyntaxError as e:
            return Parsed(reason="syntax_error", detail=f"line {e.lineno}: {e.msg}")
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        if not funcs:
            return Parsed(reason="no_function", detail="no top-level function definition")
        func = funcs[0]
        doc = ast.get_docstring(func)
        if not doc:
            return Parsed(reason="no_docstring", detail=f"function {func.name} has no docstring")
        if func.name not in tests:
            return Parsed(reason="tests_do_not_call_function", detail=f"tests never mention {func.name}")
        signature = solution.splitlines()[func.lineno - 1].strip()
        body = (f"Exercise: {doc}\n\n```python\n{solution}\n```\n\nTests:\n```python\n{tests}\n```")
        return Parsed(text=body, fields={"function": func.name, "signature": signature, "docstring": doc,
                                         "solution": solution, "tests": tests})

    def prose(self, parsed: Parsed) -> str:
        return parsed.fields.get("docstring", "")

    def verify(self, items: list[ToVerify], ctx: VerifyContext) -> list[Verdict]:
        """The reference solution and its tests, run together in the sandbox, `ctx.workers` at a time."""
        with ThreadPoolExecutor(max_workers=ctx.workers) as pool:
            return list(pool.map(self._run_tests, items))

    @staticmethod
    def _run_tests(it: ToVerify) -> Verdict:
        f = it.parsed.fields
        res = run_python(f["solution"] + "\n\n" + f["tests"], timeout_s=it.config.timeout_s,
                         memory_mb=it.config.memory_mb)
        ev = {"method": "sandbox_tests", "passed": res.passed, "reason": res.reason, "returncode": res.returncode,
              "seconds": res.seconds, "stderr": res.stderr[-1500:], "isolation": res.isolation}
        return Verdict(res.passed, ev, f"sandbox_{res.reason}")
