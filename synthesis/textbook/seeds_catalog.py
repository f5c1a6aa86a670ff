"""Built-in seed pools: topics (by area), audiences and styles. Recipes pick pools with weights and may add
their own topic lists (`topic_lists` in the recipe). Kept as plain data so a researcher can read and extend it."""
from __future__ import annotations

from synthesis.textbook.exercises import BUILDERS, LEVELS

TOPICS: dict[str, list[str]] = {
    # the ground-truth exercises (generator math_exercise): `<family>/<level>`, see exercises.py
    "math_exercises": [f"{family}/{level}" for family in BUILDERS for level in LEVELS],
    "math": [
        "fractions and decimals", "percentages and discounts", "ratios and proportions", "linear equations",
        "systems of linear equations", "quadratic equations", "area and perimeter", "volume of solids",
        "the Pythagorean theorem", "probability of simple events", "mean, median and mode", "simple interest",
        "compound interest", "unit conversion", "speed, distance and time", "prime numbers and factorization",
        "greatest common divisor and least common multiple", "exponents and powers", "arithmetic sequences",
        "geometric sequences", "angles in triangles", "counting and combinations", "work and rates",
        "money and budgeting", "time and calendars", "negative numbers", "inequalities", "functions and graphs",
    ],
    "programming": [
        "string manipulation", "list processing", "dictionaries and counting", "sorting algorithms",
        "binary search", "recursion", "stacks and queues", "two-pointer techniques", "prime number checks",
        "text parsing", "matrix operations", "date and number formatting", "set operations",
        "dynamic programming basics", "greedy algorithms", "run-length encoding", "palindromes",
        "bit manipulation", "interval merging", "simple statistics", "validation of user input",
    ],
    "science": [
        "photosynthesis", "the water cycle", "Newton's laws of motion", "electric circuits", "the periodic table",
        "chemical reactions and balancing equations", "cell structure", "DNA and heredity", "plate tectonics",
        "the solar system", "energy conservation", "waves and sound", "light and optics", "ecosystems and food webs",
        "the human immune system", "climate and weather", "states of matter", "magnetism", "evolution by natural selection",
    ],
    "reasoning": [
        "logic grid puzzles", "truth-tellers and liars", "ordering and seating arrangements", "family relationships",
        "calendar puzzles", "river crossing puzzles", "deductive syllogisms", "pattern completion in sequences",
        "weighing puzzles", "scheduling with constraints", "cause and effect", "spotting logical fallacies",
    ],
    "world_knowledge": [
        "the history of writing", "the industrial revolution", "how vaccines were developed", "world rivers and their basins",
        "how democracies make laws", "the history of the printing press", "ancient Rome's engineering",
        "how money and banks work", "the spread of agriculture", "maps and map projections", "the invention of the telephone",
        "how supply and demand set prices", "renewable energy sources", "the silk road", "languages and their families",
    ],
}

#: audience key -> how the prompt describes the reader
AUDIENCES: dict[str, str] = {
    "young_children": "young children (ages 6 to 9) who are just learning to read",
    "middle_school": "middle school students (ages 11 to 14)",
    "high_school": "high school students",
    "college": "college students studying the subject for the first time",
    "professionals": "working professionals who want a precise refresher",
    "general": "curious adults with no special background",
}

#: style key -> instruction for the text's form
STYLES: dict[str, str] = {
    "textbook": "a section of a textbook, with a clear heading, explanations and a short summary",
    "worked_examples": "a series of worked examples, each solved step by step",
    "exercises": "exercises with complete solutions",
    "qa": "questions and answers, the way a tutor answers a student",
    "dialogue": "a dialogue between a teacher and a student",
    "story": "a short story that teaches the idea through what happens",
}
