"""Textbook sections: a topic explained for an audience in a style, optionally inspired by a web extract."""

from __future__ import annotations

import re

from synthesis.textbook.generators.base import Generator, Parsed, web_block
from synthesis.textbook.generators.schema import PROSE_CHARS_PER_TOKEN, TEXT, char_budget, obj, prose
from synthesis.textbook.seeds import SeedDraw

#: the least share of the text field's character budget a section must fill
MIN_FILL = 0.6


class TextbookGenerator(Generator):
    kind = "textbook"
    prompt_version = "v1"

    def prompt(self, seed: SeedDraw) -> str:
        return (
            web_block(seed) + f'Write {self.style_text(seed)} about "{seed.topic}" for {seed.audience_text}. '
            "Explain the ideas step by step, give at least one concrete example, and keep the tone clear "
            "and precise."
        )

    def json_prompt(self, seed: SeedDraw) -> str:
        return self.prompt(seed) + " Answer in JSON with the key text (the section, starting with its title)."

    def schema(self, max_tokens: int) -> dict:
        """One text field: every token the format does not need goes to the section itself, and the
        section fills at least MIN_FILL of that budget (the 135M teacher otherwise closes the string after
        a title: 8 of 15 sections under the benchmark's word floor, BENCHMARKS.md)."""
        most = char_budget(max_tokens, 1, PROSE_CHARS_PER_TOKEN)
        return obj(text=prose(int(most * MIN_FILL), most, TEXT, "A-Z#"))

    def from_json(self, value: dict) -> Parsed:
        return self.parse(value["text"])

    def parse(self, text: str) -> Parsed:
        body = text.strip()
        if not body:
            return Parsed(reason="empty", detail="empty completion")
        title = next((re.sub(r"^[#*\s]+|[*\s]+$", "", ln) for ln in body.splitlines() if ln.strip()), "")
        return Parsed(text=body, fields={"title": title[:200]})
