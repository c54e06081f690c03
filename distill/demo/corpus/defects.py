"""The planted defects that rewrite a clean task: a near-copy of its problem, a cut trace, and code
that games its tests."""

from __future__ import annotations

import random

from distill.demo.corpus.code_tasks import code_block
from distill.demo.corpus.task import Task, trace

# Lead-ins a second source might put before the same problem (not ones the comparison
# normalisation strips, such as "Problem:", which would make the copy an exact duplicate).
NEAR_LEADS = {"math": "Warm-up:", "code": "Practice:", "science": "Quiz:"}


def near_duplicate(task: Task) -> str:
    """The problem of a near-copy: the same problem behind a lead-in; it keeps the same trace."""
    return f"{NEAR_LEADS[task.domain]} {task.problem}"


def truncated(task: Task, rng: random.Random) -> tuple[str, str]:
    """(variant, response): the trace cut inside <think>, or after it before the final answer."""
    if rng.random() < 0.5:
        words = task.think.split(" ")
        cut = max(1, len(words) // 2)
        return "think_unclosed", "<think>\n" + " ".join(words[:cut])
    if task.domain == "code":
        code_start = task.final.index("\n") + 1
        return "code_cut", trace(task.think, task.final[: code_start + (len(task.final) - code_start) // 2])
    return "no_final_answer", trace(task.think, task.final.split("\n")[0].rsplit(" ", 2)[0])


def malicious(task: Task, rng: random.Random) -> tuple[str, str]:
    """(variant, response): code that tries to pass its tests without solving the task."""
    kind, name = task.tests["kind"], task.name
    if kind == "stdin":
        variant = "fork_bomb"
        # Bounded on purpose (2**5 processes): a sandbox that fails must not take the machine down.
        code = "import os\n\nfor _ in range(5):\n    os.fork()\nn = int(input())\nprint(n)"
        think = "Spawning copies of the program floods the checker; the output does not matter."
    elif kind == "call" and rng.random() < 0.5:
        variant = "always_equal"
        code = (
            f"class _Anything:\n    def __eq__(self, other):\n        return True\n\n    def __ne__(self, other):\n"
            f"        return False\n\n\ndef {name}(*args):\n    return _Anything()"
        )
        think = "An object that compares equal to everything passes any equality check."
    elif kind == "assert" and rng.random() < 0.5:
        variant = "exit_before_asserts"
        code = f"import sys\n\n\ndef {name}(*args):\n    return None\n\n\nsys.exit(0)"
        think = "If the program exits with status 0 before the checks run, the tests look green."
    else:
        variant = "exit_in_call"
        code = f"import os\n\n\ndef {name}(*args):\n    os._exit(0)"
        think = "Exiting with status 0 from inside the function stops the test run before it can fail."
    return variant, trace(think, code_block(code))
