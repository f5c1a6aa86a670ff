"""Math exercises built programmatically, with answers known by construction (sympy), for ground-truth
verification: the teacher only writes the worked solution, and an item is kept only if its final answer equals
the ground truth (verify/ground_truth.py).

Families (arithmetic, fractions, percentages, ratios, linear equations, geometry, probability) x difficulty
levels 1-3. `build(family, level, rng)` draws numbers and one of several surface forms (names, objects,
phrasings) from `rng`, so a seeded plan gives diverse but reproducible problems. The built-in topic pool
`math_exercises` names them as `<family>/<level>` (seeds_catalog.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import sympy

NAMES = [
    "Ava",
    "Ben",
    "Chen",
    "Dara",
    "Emil",
    "Fatima",
    "Gabe",
    "Hana",
    "Ivan",
    "Jude",
    "Kofi",
    "Lena",
    "Mateo",
    "Noor",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
]
ITEMS = [
    "apples",
    "books",
    "marbles",
    "stickers",
    "pencils",
    "cookies",
    "stamps",
    "shells",
    "cards",
    "tickets",
]


@dataclass(frozen=True)
class Exercise:
    family: str
    level: int
    problem: str
    answer: sympy.Rational  # exact
    percent: bool = False  # the question asks for a percentage: the answer is stated in percent
    unit: str | None = None  # e.g. "cm^2", "km/h", "$"

    @property
    def answer_text(self) -> str:
        """The answer as a person would write it: integer, terminating decimal, else a fraction in lowest
        terms."""
        a = self.answer
        if a.q == 1:
            text = str(a.p)
        elif all(p in (2, 5) for p in sympy.primefactors(a.q)):
            text = format(sympy.Float(a, 30), "f").rstrip("0")
        else:
            text = f"{a.p}/{a.q}"
        return f"{text}%" if self.percent else text


def _arithmetic(level: int, rng: random.Random) -> Exercise:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    if level == 1:
        a, b = rng.randint(5, 60), rng.randint(5, 60)
        return Exercise(
            "arithmetic",
            1,
            f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
            sympy.Integer(a + b),
        )
    if level == 2:
        a, b = rng.randint(12, 48), rng.randint(6, 24)
        return Exercise(
            "arithmetic",
            2,
            f"A shop packs {item} in boxes of {a}. How many {item} are in {b} boxes?",
            sympy.Integer(a * b),
        )
    a, b, c, d = rng.randint(3, 12), rng.randint(3, 12), rng.randint(2, 9), rng.randint(5, 40)
    return Exercise(
        "arithmetic",
        3,
        f"{name} buys {c} bags with {a} {item} each and {c} bags with {b} {item} "
        f"each, then gives away {d} {item}. How many {item} are left?",
        sympy.Integer((a + b) * c - d),
    )


def _fractions(level: int, rng: random.Random) -> Exercise:
    name = rng.choice(NAMES)
    if level == 1:
        b = rng.randint(3, 12)
        a, c = rng.randint(1, b - 1), rng.randint(1, b - 1)
        return Exercise(
            "fractions",
            1,
            f"{name} eats {a}/{b} of a pizza and then {c}/{b} of another. How much "
            f"pizza did {name} eat in total, as a fraction?",
            sympy.Rational(a + c, b),
        )
    b, d = rng.sample(range(2, 10), 2)
    a, c = rng.randint(1, b - 1), rng.randint(1, d - 1)
    if level == 2:
        return Exercise(
            "fractions",
            2,
            f"What is {a}/{b} + {c}/{d}? Give the answer as a fraction in lowest terms.",
            sympy.Rational(a, b) + sympy.Rational(c, d),
        )
    e = rng.randint(1, 5)
    return Exercise(
        "fractions",
        3,
        f"Compute {a}/{b} times {c}/{d}, minus 1/{e + 1}.",
        sympy.Rational(a, b) * sympy.Rational(c, d) - sympy.Rational(1, e + 1),
    )


def _percentages(level: int, rng: random.Random) -> Exercise:
    if level == 1:
        p, n = rng.choice([10, 20, 25, 50, 75, 5, 15]), rng.randint(2, 40) * 4
        return Exercise("percentages", 1, f"What is {p}% of {n}?", sympy.Rational(p * n, 100))
    if level == 2:
        price, off = rng.randint(4, 60) * 5, rng.choice([10, 15, 20, 25, 30, 40])
        item = rng.choice(["jacket", "bicycle", "lamp", "backpack", "chair"])
        return Exercise(
            "percentages",
            2,
            f"A {item} costs ${price}. It is on sale for {off}% off. What is the sale price in dollars?",
            sympy.Rational(price * (100 - off), 100),
            unit="$",
        )
    total = rng.choice([20, 25, 40, 50, 80, 200])
    part = rng.randint(1, total - 1)
    name = rng.choice(NAMES)
    return Exercise(
        "percentages",
        3,
        f"{name} answered {part} of {total} questions correctly. What percent of the "
        f"questions did {name} answer correctly?",
        sympy.Rational(part * 100, total),
        percent=True,
    )


def _ratios(level: int, rng: random.Random) -> Exercise:
    a, b = rng.sample(range(1, 9), 2)
    k = rng.randint(2, 12)
    n1, n2 = rng.sample(NAMES, 2)
    if level == 1:
        return Exercise(
            "ratios",
            1,
            f"{n1} and {n2} share {(a + b) * k} {rng.choice(ITEMS)} in the ratio {a}:{b}. "
            f"How many does {n1} get?",
            sympy.Integer(a * k),
        )
    if level == 2:
        cups = rng.randint(2, 6)
        return Exercise(
            "ratios",
            2,
            f"A recipe uses {a} cups of flour for every {b} cups of milk. How many cups of "
            f"milk go with {a * cups} cups of flour?",
            sympy.Integer(b * cups),
        )
    c = rng.randint(1, 9)
    return Exercise(
        "ratios",
        3,
        f"Three friends split ${(a + b + c) * k} in the ratio {a}:{b}:{c}. How many "
        f"dollars does the friend with the largest share get?",
        sympy.Integer(max(a, b, c) * k),
        unit="$",
    )


def _linear(level: int, rng: random.Random) -> Exercise:
    x = sympy.Symbol("x")
    a, b, c, d = (rng.randint(2, 9) for _ in range(4))
    if level == 1:
        eq, text = sympy.Eq(x + a, a + b), f"x + {a} = {a + b}"
    elif level == 2:
        sol = rng.randint(-6, 12)
        eq, text = sympy.Eq(a * x + b, a * sol + b), f"{a}x + {b} = {a * sol + b}"
    else:
        c = c if c != a else c + 1
        eq, text = sympy.Eq(a * x + b, c * x + d), f"{a}x + {b} = {c}x + {d}"
    verb = rng.choice(["Solve for x:", "Find x if", "What value of x satisfies"])
    return Exercise(
        "linear_equations",
        level,
        f"{verb} {text}{'?' if verb.startswith('What') else '.'}",
        sympy.Rational(sympy.solve(eq, x)[0]),
    )


def _geometry(level: int, rng: random.Random) -> Exercise:
    if level == 1:
        w, h = rng.randint(2, 20), rng.randint(2, 20)
        return Exercise(
            "geometry",
            1,
            f"A rectangle is {w} cm wide and {h} cm long. What is its area in square centimeters?",
            sympy.Integer(w * h),
            unit="cm^2",
        )
    if level == 2:
        base, height = rng.randint(2, 15) * 2, rng.randint(3, 15)
        return Exercise(
            "geometry",
            2,
            f"A triangle has a base of {base} m and a height of {height} m. What is its "
            f"area in square meters?",
            sympy.Rational(base * height, 2),
            unit="m^2",
        )
    k = rng.randint(1, 5)
    p, q, r = rng.choice([(3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25)])
    return Exercise(
        "geometry",
        3,
        f"A right triangle has legs of {p * k} cm and {q * k} cm. How long is its hypotenuse in centimeters?",
        sympy.Integer(r * k),
        unit="cm",
    )


def _probability(level: int, rng: random.Random) -> Exercise:
    if level == 1:
        faces = rng.choice([[1, 2], [2, 4, 6], [5, 6], [1, 2, 3, 4], [6]])
        said = " or ".join(map(str, faces))
        return Exercise(
            "probability",
            1,
            f"A fair six-sided die is rolled once. What is the probability of rolling "
            f"{said}? Give the answer as a fraction.",
            sympy.Rational(len(faces), 6),
        )
    red, blue = rng.randint(1, 9), rng.randint(1, 9)
    if level == 2:
        return Exercise(
            "probability",
            2,
            f"A bag holds {red} red and {blue} blue marbles. One marble is drawn at "
            f"random. What is the probability that it is red?",
            sympy.Rational(red, red + blue),
        )
    red = max(red, 2)
    n = red + blue
    return Exercise(
        "probability",
        3,
        f"A bag holds {red} red and {blue} blue marbles. Two marbles are drawn without "
        f"replacement. What is the probability that both are red?",
        sympy.Rational(red * (red - 1), n * (n - 1)),
    )


BUILDERS: dict[str, Callable[[int, random.Random], Exercise]] = {
    "arithmetic": _arithmetic,
    "fractions": _fractions,
    "percentages": _percentages,
    "ratios": _ratios,
    "linear_equations": _linear,
    "geometry": _geometry,
    "probability": _probability,
}
LEVELS = (1, 2, 3)


def parse_topic(topic: str) -> tuple[str, int]:
    """`<family>/<level>` (a `math_exercises` pool item) -> (family, level); a clear error otherwise."""
    family, _, level = topic.partition("/")
    if family not in BUILDERS or level not in {str(lv) for lv in LEVELS}:
        raise ValueError(
            f"math_exercise topic {topic!r}: expected '<family>/<level>' with family in "
            f"{sorted(BUILDERS)} and level in {list(LEVELS)} (the built-in pool math_exercises)"
        )
    return family, int(level)


def build(family: str, level: int, rng: random.Random) -> Exercise:
    return BUILDERS[family](level, rng)
