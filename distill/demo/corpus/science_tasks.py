"""Science problems: element symbols and planets (multiple choice), unit conversions and distance
from speed and time (a number for an answer)."""

from __future__ import annotations

import random

import sympy as sp

from distill.demo.corpus.math_tasks import NAMES
from distill.demo.corpus.task import Task, boxed_final

ELEMENTS = (
    ("hydrogen", "H"),
    ("helium", "He"),
    ("lithium", "Li"),
    ("carbon", "C"),
    ("nitrogen", "N"),
    ("oxygen", "O"),
    ("fluorine", "F"),
    ("neon", "Ne"),
    ("sodium", "Na"),
    ("magnesium", "Mg"),
    ("aluminium", "Al"),
    ("silicon", "Si"),
    ("phosphorus", "P"),
    ("sulfur", "S"),
    ("chlorine", "Cl"),
    ("argon", "Ar"),
    ("potassium", "K"),
    ("calcium", "Ca"),
    ("iron", "Fe"),
    ("copper", "Cu"),
    ("zinc", "Zn"),
    ("silver", "Ag"),
    ("tin", "Sn"),
    ("gold", "Au"),
    ("mercury", "Hg"),
    ("lead", "Pb"),
    ("nickel", "Ni"),
    ("cobalt", "Co"),
    ("iodine", "I"),
    ("uranium", "U"),
)
PLANETS = ("Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
UNITS = (
    ("millimetres", "centimetres", 10),
    ("centimetres", "metres", 100),
    ("metres", "kilometres", 1000),
    ("grams", "kilograms", 1000),
    ("millilitres", "litres", 1000),
    ("seconds", "minutes", 60),
)
MOVERS = ("cart", "train", "bike", "boat", "drone", "robot", "sled", "bus", "ball", "snail")
VERBS = ("moves", "rolls", "glides", "travels", "drives", "runs")
LETTERS = "ABCD"


def _choice_task(
    family: str, question: str, correct: str, distractors: list[str], rng: random.Random, explanation: str
) -> Task:
    options = [correct, *distractors[:3]]
    rng.shuffle(options)
    letter = LETTERS[options.index(correct)]
    wrong = rng.choice([x for x in LETTERS if x != letter])
    listing = "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))
    return Task(
        "science",
        family,
        f"{question}\n{listing}",
        letter,
        None,
        f"{explanation}, which is option ({letter}).",
        f"The answer is $\\boxed{{{letter}}}$.",
        f"{explanation}, which is option ({wrong}).",
        f"The answer is $\\boxed{{{wrong}}}$.",
    )


def science_element(rng: random.Random) -> Task:
    element, symbol = rng.choice(ELEMENTS)
    others = [s for _, s in rng.sample(ELEMENTS, 6) if s != symbol]
    return _choice_task(
        "element",
        f"What is the chemical symbol of {element}?",
        symbol,
        others,
        rng,
        f"The symbol of {element} is {symbol}",
    )


def science_planet(rng: random.Random) -> Task:
    index = rng.randrange(len(PLANETS))
    others = [p for p in rng.sample(PLANETS, 5) if p != PLANETS[index]]
    return _choice_task(
        "planet",
        f"Which planet is the {ORDINALS[index]} from the Sun?",
        PLANETS[index],
        others,
        rng,
        f"Counting from the Sun, planet number {index + 1} is {PLANETS[index]}",
    )


def _numeric_science(family: str, question: str, reasoning: str, value: int, wrong: int) -> Task:
    answer, wrong_answer = str(value), str(wrong)
    return Task(
        "science",
        family,
        question,
        answer,
        None,
        f"{reasoning} = {answer}.",
        boxed_final(answer),
        f"{reasoning} = {wrong_answer}.",
        boxed_final(wrong_answer),
    )


def science_units(rng: random.Random) -> Task:
    # A name in the question, for the reason given in science_motion.
    name, (small, big, factor) = rng.choice(NAMES), rng.choice(UNITS)
    k = rng.randint(2, 19)
    value = int(sp.Integer(k) * factor)
    return _numeric_science(
        "units",
        f"{name} has {k} {big}. How many {small} is that?",
        f"One of the {big} is {factor} {small}, so {k} * {factor}",
        value,
        value + factor,
    )


def science_motion(rng: random.Random) -> Task:
    # A name, a mover and a verb between the numbers break up the template, so that a training problem
    # may share its speed and time with an eval problem without sharing the word 8-grams that
    # decontamination looks for (with the mover alone, every such training problem was refused as a
    # leak, and the students never saw the products the eval asks for).
    name, mover, verb = rng.choice(NAMES), rng.choice(MOVERS), rng.choice(VERBS)
    speed, seconds = rng.randint(2, 5), rng.randint(2, 5)  # the products a 2-layer model can learn
    distance = int(sp.Integer(speed) * seconds)
    return _numeric_science(
        "motion",
        f"At {speed} metres per second, {name}'s {mover} {verb} for {seconds} seconds. "
        f"How many metres does {name}'s {mover} cover?",
        f"Distance is speed times time: {speed} * {seconds}",
        distance,
        distance + speed,
    )
