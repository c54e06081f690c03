"""Isolation: checks run in killable worker processes; pathological inputs time out, the pool goes on."""

import os
import signal
import subprocess
import sys
import threading

import pytest

from curate.verify.math import MathVerifier, check_math, verify_math_batch
from curate.verify.result import Verdict

TIMEOUT_S = 2.0

PATHOLOGICAL = {
    "tower of powers": "10^{10^{10^{10}}}",
    "huge factorial": "9999999!",
    "deeply nested radicals": "\\sqrt{" * 3000 + "2" + "}" * 3000,
    "50 kB of LaTeX": "+".join(f"x^{{{i}}}" for i in range(8000)),
}


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(workers=2, timeout=TIMEOUT_S) as pool:
        yield pool


def boxed(answer: str) -> str:
    return f"Therefore the answer is $\\boxed{{{answer}}}$."


def test_pathological_inputs_time_out_and_the_pool_keeps_working(verifier):
    assert len(PATHOLOGICAL["50 kB of LaTeX"]) > 50_000
    pairs = []
    for answer in PATHOLOGICAL.values():
        pairs.append((boxed(answer), "5"))
        pairs.append((boxed("5"), "5"))  # an ordinary check right behind each one
    verdicts = list(verifier.map(pairs))
    for name, verdict in zip(PATHOLOGICAL, verdicts[0::2], strict=True):
        assert verdict.status == "timeout", name
        assert verdict.extracted == PATHOLOGICAL[name]  # what hung is reported
    assert [v.status for v in verdicts[1::2]] == ["pass"] * len(PATHOLOGICAL)
    assert verifier.check(boxed("\\frac{1}{2}"), "0.5").status == "pass"


def test_pathological_reference_times_out_too(verifier):
    assert verifier.check(boxed("5"), "9999999!").status == "timeout"


def test_many_pairs_come_back_in_order(verifier):
    pairs = [(boxed(str(i)), str(i if i % 3 else i + 1)) for i in range(60)]
    pairs[17] = (boxed(PATHOLOGICAL["huge factorial"]), "17")  # a slow one in the middle
    statuses = [v.status for v in verifier.map(pairs)]
    expected = ["pass" if i % 3 else "fail" for i in range(60)]
    expected[17] = "timeout"
    assert statuses == expected


def test_stopping_early_does_not_leak_answers_into_the_next_call(verifier):
    pairs = [(boxed(str(i)), str(i)) for i in range(20)]
    first = next(iter(verifier.map(pairs)))
    assert first.status == "pass"
    later = list(verifier.map([(boxed("7"), "8"), (boxed("9"), "9")]))
    assert [v.status for v in later] == ["fail", "pass"]
    assert [v.extracted for v in later] == ["7", "9"]


def test_large_responses_never_block_the_pool(verifier):
    # bigger than what may wait in a worker's socket: sent only to idle workers
    big = "Let me think. " * 20_000 + "So the answer is \\boxed{7}."
    pairs = [(big, "7"), (boxed(PATHOLOGICAL["huge factorial"]), "1"), (big, "8"), (boxed("3"), "3")] * 2
    assert [v.status for v in verifier.map(pairs)] == ["pass", "timeout", "fail", "pass"] * 2


def test_a_worker_that_dies_gives_error_and_the_rest_go_on():
    with MathVerifier(workers=1, timeout=30) as pool:
        pool.wait_ready()
        pid = pool._workers[0].process.pid
        killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
        killer.start()
        pairs = [(boxed(PATHOLOGICAL["huge factorial"]), "1"), (boxed("2"), "2"), (boxed("3"), "4")]
        verdicts = list(pool.map(pairs))
        killer.join()
    assert [v.status for v in verdicts] == ["error", "pass", "fail"]
    assert "worker died" in verdicts[0].detail and verdicts[0].extracted == "9999999!"


def test_verdicts_hold_plain_values(verifier):
    verdict = verifier.check(boxed("\\sqrt{8}"), "2\\sqrt{2}")
    assert isinstance(verdict, Verdict)
    assert (type(verdict.status), type(verdict.extracted), type(verdict.detail), type(verdict.seconds)) == (
        str,
        str,
        str,
        float,
    )


def test_values_of_other_types(verifier):
    statuses = [
        v.status for v in verifier.map([(boxed("12"), 12), (boxed("1"), [1]), (["x"], "1"), (None, None)])
    ]
    assert statuses == ["pass", "invalid_reference", "no_answer", "no_reference"]


def test_works_from_a_thread():
    # math-verify's signal.alarm timeouts raise ValueError outside the main thread
    out: list[Verdict] = []
    thread = threading.Thread(
        target=lambda: out.append(check_math(boxed("6-5i"), "6 - 5i", timeout=TIMEOUT_S))
    )
    thread.start()
    thread.join(60)
    assert out and out[0].status == "pass"


def test_batch_function():
    verdicts = verify_math_batch([(boxed("3"), "3"), (boxed("4"), "3")], workers=1, timeout=TIMEOUT_S)
    assert [v.status for v in verdicts] == ["pass", "fail"]


def test_address_space_limit_turns_a_runaway_allocation_into_memory_error():
    code = (
        "from curate.verify.math.pool import _limit_memory\n"
        "_limit_memory(256)\n"
        "try:\n"
        "    block = bytearray(1024 * 1024 * 1024)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('limited')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "limited", result.stderr


def test_an_unguarded_script_is_not_run_again_in_the_workers(tmp_path):
    # multiprocessing would re-import the caller's script in each worker; ours must not need it
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from curate.verify.math import check_math\n"
        "print('ran', flush=True)\n"
        "print(check_math('so \\\\boxed{2}', '2').status)\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["ran", "pass"], result.stderr


def test_bad_settings():
    with pytest.raises(ValueError):
        MathVerifier(workers=0)
    with pytest.raises(ValueError):
        MathVerifier(timeout=0)
