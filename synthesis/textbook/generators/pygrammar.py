"""Python fragments as regular expressions, for the code generator's JSON schema: whatever string the grammar
lets the teacher write compiles (`ast.parse`), so a code answer the grammar admits is never rejected by the
parser for its syntax.

What a regular grammar cannot see, it is kept from writing: keywords where a name goes (`return the *result*
from` was the 135M teacher's typical body: `from` is a keyword), leading zeros (`012`), parameters without a
default after one with a default, nested brackets. Names exclude the keywords by a trie over them (no
lookahead: llama.cpp's pattern converter has none). What is left for the sandbox is behaviour: an undefined
name or a wrong result fails the tests there (`sandbox_tests_failed`), a verification reject, not a parse
failure. Duplicate parameter names (`def f(a, a)`) are the one syntax error left; `CodeGenerator.check`
still parses and rejects them as `syntax_error`.

Patterns avoid escapes outside character classes (schema.py says why); a group that holds names is
made optional with `{0,1}`, never `?` (`name` says why).
"""

from __future__ import annotations

import keyword
import string

#: the keywords a lower-case name could spell (True/False/None start upper-case: no name here can)
KEYWORDS = frozenset(k for k in keyword.kwlist if k.islower())
_FIRST = string.ascii_lowercase + "_"
_REST = string.ascii_lowercase + string.digits + "_"


def _ranges(chars: list[str]) -> str:
    """A character class body for `chars`, runs of 3+ as ranges (`a-ce-z0-9_`)."""
    order = sorted(set(chars), key=lambda c: (c == "_", c.isdigit(), c))
    out: list[str] = []
    run: list[str] = []
    for c in [*order, ""]:
        if run and c and c != "_" and run[-1] != "_" and ord(c) == ord(run[-1]) + 1:
            run.append(c)
            continue
        out.extend([f"{run[0]}-{run[-1]}"] if len(run) > 2 else run)
        run = [c]
    return "".join(out)


def _group(alts: list[str]) -> str:
    if alts == [""]:
        return ""
    body = "|".join(a for a in alts if a)
    return f"({body})?" if "" in alts else f"({body})"


def _suffixes(prefix: str, left: int) -> list[str]:
    """Alternatives for what may follow `prefix` (a prefix of some keyword) in a name of at most `left` more
    characters that is not a keyword."""
    alts = [""] if prefix and prefix not in KEYWORDS else []
    if left == 0:
        return alts
    nexts = sorted({w[len(prefix)] for w in KEYWORDS if w.startswith(prefix) and len(w) > len(prefix)})
    alts += [c + _group(_suffixes(prefix + c, left - 1)) for c in nexts]
    other = [c for c in (_REST if prefix else _FIRST) if c not in nexts]
    tail = f"[a-z0-9_]{{0,{left - 1}}}" if left > 1 else ""
    alts.append(f"[{_ranges(other)}]{tail}")
    return alts


def name(max_len: int) -> str:
    """A lower-case Python name of 1..max_len characters that is not a keyword (`from`, `def`, `and`).

    The trailing `{1}` is for llama.cpp: its converter turns a quantified group into one grammar rule that
    every copy shares; inline, two copies under a `?` already exceed the grammar parser's limit on rules
    under a repetition ("... exceeds sane defaults"), and the server dies on the request."""
    return _group(_suffixes("", max_len)) + "{1}"


#: an integer literal Python accepts (no leading zeros) of at most 3 or 4 digits
INT3 = r"(0|[1-9][0-9]{0,2})"
INT4 = r"(0|[1-9][0-9]{0,3})"
#: a short quoted string with no quote or backslash inside
SHORT_STR = r"'[a-z ]{0,8}'"


def signature() -> str:
    """`def name(a, b, c=1):` - up to three parameters, then at most one with a default (or up to two with
    defaults alone): a parameter without a default never follows one with a default."""
    param, default = name(10), f"{name(10)}={INT3}"
    params = f"({param}(, {param}){{0,2}}(, {default}){{0,1}}|{default}(, {default}){{0,1}})"
    return rf"^def {name(24)}[(]{params}{{0,1}}[)]:$"


def return_statement(max_ops: int = 2, max_args: int = 2, name_len: int = 12) -> str:
    """`return <term> (<op> <term>)*`: a term is a name (an attribute, a call with up to `max_args`
    name/number/string arguments), a number, a short string or a flat list; at most `max_ops` operators.
    Two names in a row are never Python, so prose has no room."""
    short = max(name_len - 2, 4)
    atom = f"({name(short)}|{INT4}|{SHORT_STR})"
    call = rf"[(]({atom}(, ?{atom}){{0,{max_args - 1}}}){{0,1}}[)]"
    flat_list = rf"[\[]({atom}(, ?{atom}){{0,2}}){{0,1}}[\]]"
    term = f"({name(name_len)}([.]{name(short)}){{0,1}}({call}){{0,1}}|{INT4}|{SHORT_STR}|{flat_list})"
    op = r"( ?([-+*/%<>]|==|!=|<=|>=|//) ?| and | or )"
    return rf"^return (not )?{term}({op}{term}){{0,{max_ops}}}$"


#: a Python literal as a test's argument or expected value: a short number, True/False/None, a short string
LITERAL = rf"^(-?{INT3}([.][0-9]{{1,2}})?|True|False|None|'[A-Za-z0-9 ,.!?-]{{0,10}}')$"
