"""The code generator's grammar admits only Python: random strings drawn from its patterns (signature, body,
test literals) all compile, no keyword can stand where a name goes, and the forms the 135M teacher wrote
under the old grammar (BENCHMARKS.md: `return the *result* from`, `return def *func()* [0]`) are refused."""

from __future__ import annotations

import ast
import keyword
import random
import re

try:  # Python >= 3.11 moved it; the older name still works with a deprecation warning
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse

import pytest

from synthesis.textbook.generators.pygrammar import LITERAL, name, return_statement, signature


def _draw(node, rnd: random.Random) -> str:
    """One random string matching a parsed regex (the constructs our patterns use)."""
    out = []
    for op, av in node:
        if op is sre_parse.LITERAL:
            out.append(chr(av))
        elif op is sre_parse.IN:
            chars = []
            for kind, val in av:
                if kind is sre_parse.LITERAL:
                    chars.append(chr(val))
                elif kind is sre_parse.RANGE:
                    chars += [chr(c) for c in range(val[0], val[1] + 1)]
            out.append(rnd.choice(chars))
        elif op is sre_parse.BRANCH:
            out.append(_draw(rnd.choice(av[1]), rnd))
        elif op is sre_parse.SUBPATTERN:
            out.append(_draw(av[-1], rnd))
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            lo, hi, sub = av
            out += [_draw(sub, rnd) for _ in range(rnd.randint(lo, min(hi, lo + 4)))]
        elif op is sre_parse.AT:
            continue
        else:  # pragma: no cover - a construct the patterns do not use
            raise AssertionError(f"unsupported regex op {op}")
    return "".join(out)


def draws(pattern: str, n: int, seed: int = 0) -> list[str]:
    rnd, tree = random.Random(seed), sre_parse.parse(pattern)
    got = [_draw(tree, rnd) for _ in range(n)]
    assert all(re.fullmatch(pattern, s) for s in got)  # the sampler draws from the pattern's language
    return got


def test_names_are_never_keywords_and_every_other_name_passes():
    rx = re.compile(f"^{name(10)}$")
    lower_keywords = [k for k in keyword.kwlist if k.islower()]
    assert not [k for k in lower_keywords if rx.match(k)]
    near = [k + s for k in lower_keywords for s in ("s", "_", "1")] + [k[:-1] for k in lower_keywords]
    for w in [*near, "the", "result", "x", "_", "total_sum", "abcdefghij", "match", "print"]:
        ok = w.isidentifier() and not keyword.iskeyword(w) and 0 < len(w) <= 10
        assert bool(rx.match(w)) == ok, w
    assert not rx.match("abcdefghijk") and not rx.match("1abc") and not rx.match("")


@pytest.mark.parametrize("body", [return_statement(), return_statement(max_ops=1, max_args=1, name_len=8)])
def test_every_string_the_signature_and_body_patterns_admit_compiles(body):
    sig = signature()
    for s, b in zip(draws(sig, 1500, 1), draws(body, 1500, 2)):
        params = s[s.index("(") + 1 : s.index(")")].split(", ")
        names = [p.split("=")[0] for p in params if p]
        if len(set(names)) < len(names):
            continue  # duplicate parameter names: the one syntax error a regular grammar leaves (checked)
        ast.parse(f"{s}\n    {b}\n")
    for lit in draws(LITERAL, 500, 3):
        ast.literal_eval(lit)


@pytest.mark.parametrize(
    "body",
    [
        "return the *result* from",
        "return a  and the  and return",
        "return def *func()* [0]",
        "return bdmlcwjhgfkqz.sadlkxmjtv-1367/n948e50a1abda.uioiunibp_(.)",
        "return 012",
        "return f(a'b)",
        "return [1a]",
    ],
)
def test_the_bodies_the_old_grammar_let_through_are_refused(body):
    assert not re.fullmatch(return_statement(), body)
    assert re.fullmatch(return_statement(), "return len(items) * 2")


def test_a_default_never_precedes_a_plain_parameter():
    assert re.fullmatch(signature(), "def area(width, height=2):")
    assert not re.fullmatch(signature(), "def area(width=2, height):")
    assert not re.fullmatch(signature(), "def from(x):")
