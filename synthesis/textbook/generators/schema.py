"""JSON-schema building blocks for constrained generation, sized to the request's token cap.

A schema is sent as structured output (llama.cpp's JSON-schema grammar on the embedded teacher, vLLM's
structured outputs, `response_format` on OpenAI-compatible endpoints), so the answer is JSON by construction;
what can still break it is the token cap cutting the JSON off mid-string. So every free-text field gets a
length bound derived from `max_tokens`: the whole object fits the cap and always closes. Prose fields are a
pattern over plain prose characters starting with a capital letter: small teachers otherwise open a string
with template debris (`{{%`), and a pattern without quotes or backslashes keeps JSON escaping out of the way.
Patterns avoid escapes outside character classes (`[.]`, not `\\.`): llama-cpp-python's converter passes
them into the grammar, llama.cpp refuses the grammar, and its server dies on the request. The same happens
to a repetition bound above ~1,000 (`maxLength: 3853`, `[a-z]{0,1500}`: "number of rules ... exceeds sane
defaults"), so long fields repeat chunks of at most `CHUNK` characters (`repeat`).
"""

from __future__ import annotations

from typing import Any

#: characters per token we can count on (prose is ~4, digits and symbols ~1-2); a low guess only shortens
#: fields
CHARS_PER_TOKEN = 2.0
#: running English prose: ~4.5 characters per token for SmolLM2's tokenizer, but a digit is a token of its
#: own: over 28 textbook answers at a 64-token cap the densest (dates, figures, a URL) took 3.6 characters a
#: token and two of them ran out of tokens at 3.8; 3.2 leaves a margin below the densest
PROSE_CHARS_PER_TOKEN = 3.2
#: tokens for the braces, keys, quotes, separators and spaces of a small object, per field (or array item)
TOKENS_PER_FIELD = 8
#: plain prose: letters, digits, spaces and common punctuation (no quotes, backslashes or braces)
PROSE = r"A-Za-z0-9 ,.;:!?'()%$+*/=<>&-"
#: a section's text: prose plus markdown headings and line breaks (a raw newline in the JSON string, which
#: the parser accepts; an endpoint that escapes it decodes to the same text). No quotes, backslashes,
#: braces or brackets: the 135M teacher's derailed answers (`Ener[d]c[r[a]s]...`, `{{title}}}`) spend a
#: token per character and ran past the cap
TEXT = r"#\n" + PROSE
#: the longest bounded repetition in one pattern (llama.cpp's grammar parser refuses ~1,500 and up)
CHUNK = 500


def char_budget(max_tokens: int, fields: int, chars_per_token: float = CHARS_PER_TOKEN) -> int:
    """Characters the content of `fields` fields may use in total so the object fits `max_tokens`."""
    return max(int((max_tokens - TOKENS_PER_FIELD * fields - 2) * chars_per_token), 12 * fields)


def repeat(cls: str, lo: int, hi: int) -> str:
    """`[cls]` repeated lo..hi times, as llama.cpp's grammar parser takes it: up to 2*CHUNK as one bound;
    beyond that, `lo` as whole chunks of CHUNK plus a rest, then optional chunks and a tail of at most
    CHUNK - 1 (every length from `lo` up to within CHUNK of `hi` is admitted, none past `hi`)."""
    if hi <= 2 * CHUNK:
        return f"[{cls}]{{{lo},{hi}}}"
    must = (f"([{cls}]{{{CHUNK}}}){{{lo // CHUNK}}}" if lo >= CHUNK else "") + f"[{cls}]{{{lo % CHUNK}}}"
    room = hi - lo
    if room < CHUNK:
        return f"{must}[{cls}]{{0,{room}}}"
    return f"{must}([{cls}]{{{CHUNK}}}){{0,{(room - CHUNK + 1) // CHUNK}}}[{cls}]{{0,{CHUNK - 1}}}"


def prose(min_chars: int, max_chars: int, chars: str = PROSE, first: str = "A-Z") -> dict[str, Any]:
    """A string of `min_chars`..`max_chars` characters from `chars`, starting with one of `first`."""
    max_chars = max(max_chars, min_chars + 1)
    return {
        "type": "string",
        "pattern": f"^[{first}]{repeat(chars, max(min_chars - 1, 0), max_chars - 1)}$",
    }


def pattern(regex: str) -> dict[str, Any]:
    return {"type": "string", "pattern": regex}


def steps(min_items: int, max_items: int, each: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": each, "minItems": min_items, "maxItems": max_items}


def obj(**props: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all required, in this order (the grammar keeps the order, so
    reasoning fields placed before the answer are written first)."""
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


#: a number as a final answer: integer, decimal, fraction or percentage (few digits: each costs a token)
NUMBER = r"^-?[0-9]{1,7}([.][0-9]{1,4})?([/][0-9]{1,5})?%?$"
#: a short answer: a word, a name, a number or a few words
SHORT = r"^[A-Za-z0-9][A-Za-z0-9 .,'/-]{0,39}$"
