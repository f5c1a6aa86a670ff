"""Python exercises: a function with signature and docstring (the exercise), a reference solution, and unit
tests as plain asserts. Verified in the sandbox (verify/sandbox.py): the tests must pass on the solution AND
fail on at least one trivial mutant of it (the same function returning None or a constant), so tests that
cannot fail (`assert True`, `assert f is not None`, tests that never call the function) are rejected as
`tests_cannot_fail`."""

from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor

from synthesis.textbook.generators.base import Generator, Parsed, ToVerify, Verdict, VerifyContext, web_block
from synthesis.textbook.generators.pygrammar import LITERAL, return_statement, signature
from synthesis.textbook.generators.schema import char_budget, obj, pattern, prose, steps
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.verify.sandbox import run_python

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
#: the signature line and the one-expression body, as patterns that admit only Python (pygrammar.py); below
#: 160 tokens the body is one operator over short names (a derailed teacher writes letter soup at ~1.3
#: characters a token, and three long terms of it ran a 96-token answer past its cap)
SIGNATURE = signature()
RETURN = return_statement()
RETURN_SHORT = return_statement(max_ops=1, max_args=1, name_len=8)
#: trivial mutants: the solution's function with its body replaced by one of these returns
MUTANT_RETURNS = ("None", "0", "''", "[]", "False")


def _top_level_asserts(code: str) -> tuple[str, str]:
    """Split one block holding both the function and its asserts into (solution, tests)."""
    lines = code.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("assert ")), len(lines))
    return "\n".join(lines[:first]).rstrip(), "\n".join(lines[first:]).strip()


def mutants(solution: str, function: str) -> list[str]:
    """The solution with `function`'s body replaced by `return <constant>` (one source per constant); the
    signature, docstring and any other code stay, so only the behaviour under test changes."""
    out = []
    for const in MUTANT_RETURNS:
        tree = ast.parse(solution)
        func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
        keep = func.body[:1] if ast.get_docstring(func) else []
        func.body = [*keep, ast.Return(ast.parse(const, mode="eval").body)]
        out.append(ast.unparse(tree))
    return out


class CodeGenerator(Generator):
    kind = "code"
    prompt_version = "v1"

    def prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed)
            + f"Write a Python programming exercise about {seed.topic} for {seed.audience_text}. "
            "Reply with exactly two Python code blocks:\n"
            "1. ```python ...``` with one function: its signature, a docstring that states the task, and a "
            "correct reference implementation (standard library only).\n"
            "2. ```python ...``` with at least three unit tests written as plain `assert` statements that "
            "call the function."
        )

    def json_prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed)
            + f"Write a Python programming exercise about {seed.topic} for {seed.audience_text}. "
            "Answer in JSON with the keys signature (the function's `def` line), docstring (the task, in one "
            "sentence), body (one `return` statement computing the result, standard library only) and tests "
            "(a list of test cases, each with the arguments `args` and the `expected` result as Python "
            "literals)."
        )

    def schema(self, max_tokens: int) -> dict:
        budget = char_budget(max_tokens, 8) - 120  # signature, body and test values have their own bounds
        roomy = max_tokens >= 160  # below that, two one-argument cases are what fits
        case = obj(args=steps(1, 2 if roomy else 1, pattern(LITERAL)), expected=pattern(LITERAL))
        return obj(
            signature=pattern(SIGNATURE),
            docstring=prose(10, max(budget, 28)),
            body=pattern(RETURN if roomy else RETURN_SHORT),
            tests=steps(2, 3 if roomy else 2, case),
        )

    def from_json(self, value: dict) -> Parsed:
        """Tests come as data (argument and expected-result literals), so they are valid Python by
        construction."""
        doc = value["docstring"].strip().replace('"' * 3, "'" * 3)
        signature = value["signature"].strip()
        name = signature[4 : signature.index("(")]
        solution = f'{signature}\n    """{doc}"""\n    {value["body"].strip()}'
        tests = "\n".join(f"assert {name}({', '.join(t['args'])}) == {t['expected']}" for t in value["tests"])
        return self.check(solution, tests)

    def parse(self, text: str) -> Parsed:
        blocks = [b.strip() for b in _FENCE.findall(text) if b.strip()]
        solution = next((b for b in blocks if "def " in b), None)
        if solution is None:
            return Parsed(
                reason="no_function", detail=f"{len(blocks)} code block(s), none defines a function"
            )
        tests = next((b for b in blocks if b is not solution and "assert" in b), None)
        if tests is None and "\nassert " in solution:
            solution, tests = _top_level_asserts(solution)
        if not tests:
            return Parsed(reason="no_tests", detail="no block of assert statements")
        return self.check(solution, tests)

    @staticmethod
    def check(solution: str, tests: str) -> Parsed:
        """The exercise from its solution and tests, or why it is unusable (syntax, no function, no
        docstring). Whether the tests test anything is the sandbox's question (verify)."""
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
        signature = solution.splitlines()[func.lineno - 1].strip()
        body = f"Exercise: {doc}\n\n```python\n{solution}\n```\n\nTests:\n```python\n{tests}\n```"
        return Parsed(
            text=body,
            fields={
                "function": func.name,
                "signature": signature,
                "docstring": doc,
                "solution": solution,
                "tests": tests,
            },
        )

    def prose(self, parsed: Parsed) -> str:
        return parsed.fields.get("docstring", "")

    def verify(self, items: list[ToVerify], ctx: VerifyContext) -> list[Verdict]:
        """Tests on the solution, then on the mutants, in the sandbox, `ctx.workers` items at a time."""
        with ThreadPoolExecutor(max_workers=ctx.workers) as pool:
            return list(pool.map(self._run_tests, items))

    @staticmethod
    def _run_tests(it: ToVerify) -> Verdict:
        f, cfg = it.parsed.fields, it.config
        res = run_python(
            f["solution"] + "\n\n" + f["tests"], timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb
        )
        ev = {
            "method": "sandbox_tests",
            "passed": res.passed,
            "reason": res.reason,
            "returncode": res.returncode,
            "seconds": res.seconds,
            "stderr": res.stderr[-1500:],
            "isolation": res.isolation,
        }
        if not res.passed:
            return Verdict(False, ev, f"sandbox_{res.reason}", "tests_run")
        # the first mutant the tests catch settles it; vacuous tests let every mutant through
        survived = []
        for const, mutant in zip(MUTANT_RETURNS, mutants(f["solution"], f["function"])):
            if not run_python(
                mutant + "\n\n" + f["tests"], timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb
            ).passed:
                ev["mutant_killed"] = f"return {const}"
                return Verdict(True, ev, "", "tests_run")
            survived.append(f"return {const}")
        ev.update(passed=False, reason="cannot_fail", mutants_survived=survived)
        return Verdict(False, ev, "tests_cannot_fail", "tests_run")
