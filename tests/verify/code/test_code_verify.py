"""The verifier end to end: statuses, the three test kinds, dataset formats, real data, the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from curate.verify.code import (
    CodeVerifier,
    IsolationError,
    from_codeforces,
    from_humaneval,
    from_leetcode,
    from_mbpp,
)
from curate.verify.code import sandbox as sandbox_module
from distill.cli import main
from tests.conftest import shared_file
from tests.verify.code.helpers import ADD_ASSERT, ADD_CALL, ADD_CODE, ADD_PROGRAM, ADD_STDIN, cases


def program(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


# --- statuses ---------------------------------------------------------------------------------------------


def test_statuses_before_anything_runs(verifier):
    assert verifier.check(None, response="```python\nprint(1)\n```").status == "no_reference"
    assert verifier.check("", code="print(1)").status == "no_reference"
    bad = verifier.check('{"kind": "stdin"}', code="print(1)")
    assert bad.status == "invalid_reference" and "cases" in json.loads(bad.detail)["message"]
    assert verifier.check(ADD_STDIN, response="I could not solve it.").status == "no_answer"


def test_pass_and_fail_for_each_kind_with_per_case_detail(verifier):
    for spec, good in ((ADD_ASSERT, ADD_CODE), (ADD_CALL, ADD_CODE), (ADD_STDIN, ADD_PROGRAM)):
        verdict = verifier.check(spec, response=f"Solution:\n```python\n{good}```")
        assert verdict.status == "pass", verdict.detail
        assert verdict.extracted == good
        assert all(case["status"] == "pass" and case["seconds"] >= 0 for case in cases(verdict))
        assert verdict.seconds > 0
    wrong = verifier.check(ADD_CALL, code="def add(a, b):\n    return a * b\n")  # 2*3 != 5
    assert wrong.status == "fail"
    assert cases(wrong) == [
        {"case": 0, "status": "fail", "reason": "expected 5, got 6", "seconds": cases(wrong)[0]["seconds"]}
    ]
    partly = verifier.check(ADD_STDIN, code="a, b = map(int, input().split())\nprint(a + b)\nprint(6)\n")
    assert [case["status"] for case in cases(partly)] == ["pass", "fail"]
    assert "line 2: expected '1', got '6'" in cases(partly)[1]["reason"]


def test_solution_that_does_not_load(verifier):
    verdict = verifier.check(ADD_ASSERT, code="def add(a, b):\n    return a +\n")
    assert verdict.status == "fail" and "SyntaxError" in cases(verdict)[0]["reason"]
    missing = verifier.check(ADD_ASSERT, code="def plus(a, b):\n    return a + b\n")
    assert missing.status == "fail" and "add" in cases(missing)[0]["reason"]


def test_timeout_status_and_time_limit_from_the_spec(verifier):
    slow = "import time\ndef add(a, b):\n    time.sleep(0.6)\n    return a + b\n"
    assert verifier.check({**ADD_CALL, "time_limit_s": 0.3}, code=slow).status == "timeout"
    assert verifier.check({**ADD_CALL, "time_limit_s": 3}, code=slow).status == "pass"


def test_map_keeps_the_input_order(verifier):
    items = []
    for number in range(12):
        good = number % 3 != 0
        items.append({"tests": ADD_CALL, "code": ADD_CODE if good else "def add(a, b):\n    return 0\n"})
    items.insert(5, {"tests": None, "code": ADD_CODE})
    statuses = [v.status for v in verifier.map(items)]
    expected = ["pass" if n % 3 else "fail" for n in range(12)]
    expected.insert(5, "no_reference")
    assert statuses == expected


# --- the assert kind: tests run outside the solution's process ----------------------------------------------


def test_trusted_prelude_helpers_cannot_be_redefined_by_the_solution(verifier):
    """HumanEval/32 checks find_zero with the prompt's poly(); a solution that redefines poly to
    return 0 must not pass with a wrong root."""
    prompt = "import math\n\ndef poly(xs, x):\n    return sum(c * math.pow(x, i) for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    '''root'''\n"
    spec = {
        "kind": "assert",
        "entry_point": "find_zero",
        "prelude": prompt,
        "code": "def check(candidate):\n    assert abs(poly([1, 2], candidate([1, 2]))) < 1e-6\n",
    }
    cheat = prompt + "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 123.0\n"
    assert verifier.check(spec, code=cheat).status == "fail"
    right = prompt + "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    assert verifier.check(spec, code=right).status == "pass"


def test_tests_can_expect_exceptions_and_use_returned_objects(verifier):
    spec = {
        "kind": "assert",
        "entry_point": "make",
        "code": program("""
            def check(candidate):
                try:
                    candidate(-1)
                except ValueError:
                    pass
                else:
                    raise AssertionError("no ValueError")
                node = candidate(2)
                assert node.value == 2 and node.next.value == 1 and node.next.next is None
                assert node.total() == 3
        """),
    }
    code = program("""
        class Node:
            def __init__(self, value, next=None):
                self.value, self.next = value, next
            def total(self):
                return self.value + (self.next.total() if self.next else 0)

        def make(n):
            if n < 0:
                raise ValueError("negative")
            head = None
            for value in range(1, n + 1):
                head = Node(value, head)
            return head
    """)
    verdict = verifier.check(spec, code=code)
    assert verdict.status == "pass", verdict.detail
    assert cases(verdict)[0]["calls"] == 3  # candidate(-1), candidate(2), node.total()
    no_raise = verifier.check(spec, code=code.replace('raise ValueError("negative")', "return None"))
    assert no_raise.status == "fail" and "no ValueError" in cases(no_raise)[0]["reason"]


def test_failed_assertion_is_located_in_the_test(verifier):
    verdict = verifier.check(ADD_ASSERT, code="def add(a, b):\n    return 5\n")
    assert verdict.status == "fail"
    assert cases(verdict)[0]["reason"] == "assertion failed (test line 3: assert candidate(-1, 1) == 0)"


def test_a_test_that_passes_a_function_to_the_solution_is_an_error_not_a_fail(verifier):
    spec = {"kind": "assert", "entry_point": "apply", "code": "assert apply(lambda x: x + 1, 1) == 2\n"}
    verdict = verifier.check(spec, code="def apply(f, x):\n    return f(x)\n")
    assert verdict.status == "error" and "only plain data" in cases(verdict)[0]["reason"]


# --- dataset formats ---------------------------------------------------------------------------------------------


def test_mbpp_asserts_call_the_function_by_name(verifier):
    record = {
        "code": "def square_sum(n):\n    return sum(i * i for i in range(1, n + 1))\n",
        "test_list": ["assert square_sum(2) == 5", "assert square_sum(3) == 14", "assert square_sum(1) == 1"],
        "test_setup_code": "",
    }
    spec = from_mbpp(record)
    assert verifier.check(spec, code=record["code"]).status == "pass"
    assert verifier.check(spec, code="def square_sum(n):\n    return n * n + 1\n").status == "fail"


LEETCODE_SOLUTION = program("""
    class Solution:
        def topKFrequent(self, nums: List[int], k: int) -> List[int]:
            counts = Counter(nums)
            heap = []
            for value, count in counts.items():
                heappush(heap, (-count, value))
            return [heappop(heap)[1] for _ in range(k)]

        def shift(self, s: str) -> str:
            return "".join(ascii_lowercase[(ascii_lowercase.index(c) + 1) % 26] for c in s)

        def smallest(self, nums: List[int]) -> int:
            best = inf
            for value in nums:
                best = min(best, value)
            return best
""")


def test_leetcode_class_solutions_with_the_judges_prelude(verifier):
    """`class Solution` using List, Counter, heappush, ascii_lowercase and inf without importing them."""
    dataset_style = from_leetcode(
        {
            "entry_point": "Solution().topKFrequent",
            "test": "def check(candidate):\n    assert candidate(nums=[1, 1, 1, 2, 2, 3], k=2) == [1, 2]\n"
            "    assert candidate(nums=[4], k=1) == [4]\n",
        }
    )
    assert verifier.check(dataset_style, code=LEETCODE_SOLUTION).status == "pass"
    taco_style = from_leetcode(
        {
            "input_output": json.dumps(
                {"fn_name": "shift", "inputs": [["abz"], ["y"]], "outputs": [["bca"], ["z"]]}
            )
        }
    )
    assert verifier.check(taco_style, code=LEETCODE_SOLUTION).status == "pass"
    smallest = from_leetcode(
        {"input_output": {"fn_name": "smallest", "inputs": [[[3, 1, 2]]], "outputs": [[1]]}}
    )
    assert verifier.check(smallest, code=LEETCODE_SOLUTION).status == "pass"
    wrong = LEETCODE_SOLUTION.replace("(ascii_lowercase.index(c) + 1)", "(ascii_lowercase.index(c) + 2)")
    assert verifier.check(taco_style, code=wrong).status == "fail"


def test_humaneval_canonical_solutions_pass_and_mutants_fail(verifier):
    problems = [json.loads(line) for line in shared_file("code/humaneval.jsonl").read_text().splitlines()]
    assert len(problems) == 164
    specs = [from_humaneval(p) for p in problems]

    def mutant(problem: dict) -> str:
        lines = problem["canonical_solution"].rstrip("\n").split("\n")
        last = max(i for i, line in enumerate(lines) if re.match(r"\s*return\b", line))
        lines[last] = re.sub(r"return\b.*", "return None", lines[last])
        return problem["prompt"] + "\n".join(lines) + "\n"

    canonical = list(
        verifier.map(
            {"code": p["prompt"] + p["canonical_solution"], "tests": s}
            for p, s in zip(problems, specs, strict=True)
        )
    )
    failed = [
        (p["task_id"], v.detail) for p, v in zip(problems, canonical, strict=True) if v.status != "pass"
    ]
    assert failed == []
    mutants = list(
        verifier.map({"code": mutant(p), "tests": s} for p, s in zip(problems, specs, strict=True))
    )
    survived = [p["task_id"] for p, v in zip(problems, mutants, strict=True) if v.status == "pass"]
    assert survived == []


def test_codeforces_problems_run_through_the_stdin_path(verifier):
    """All 408 problems: a program printing the expected output for its input passes every one;
    printing only the first expected line (the open-r1 exploit) fails exactly the multi-line ones."""
    problems = [json.loads(line) for line in shared_file("code/codeforces.jsonl").read_text().splitlines()]
    assert len(problems) == 408
    specs = [from_codeforces(p) for p in problems]

    def oracle(spec: dict, lines: int | None = None) -> str:
        answers = {
            c["input"].strip(): "\n".join(c["output"].strip().splitlines()[:lines]) for c in spec["cases"]
        }
        return f"import sys\nprint({answers!r}.get(sys.stdin.read().strip(), ''))\n"

    verdicts = list(verifier.map({"code": oracle(s), "tests": s} for s in specs))
    assert [v.status for v in verdicts].count("pass") == 408, [
        v.detail for v in verdicts if v.status != "pass"
    ][:3]
    multi = [s for s in specs if any(len(c["output"].strip().splitlines()) > 1 for c in s["cases"])]
    first_lines = list(verifier.map({"code": oracle(s, lines=1), "tests": s} for s in multi))
    assert len(multi) > 100 and all(v.status == "fail" for v in first_lines)


# --- isolation choice, worker recovery, CLI -------------------------------------------------------------


def no_sandbox_installed(monkeypatch) -> None:
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(sandbox_module, "_resolved", {})  # forget the mode found by earlier tests


def test_no_sandbox_means_refusal_unless_explicitly_unsafe(monkeypatch):
    no_sandbox_installed(monkeypatch)
    with pytest.raises(IsolationError, match="--unsafe-no-isolation"):
        CodeVerifier(workers=1)
    with CodeVerifier(workers=1, isolation="none", time_limit_s=2) as unsafe:
        assert unsafe.isolation == "none"
        assert unsafe.check(ADD_CALL, code=ADD_CODE).status == "pass"
        assert unsafe.check(ADD_STDIN, code=ADD_PROGRAM).status == "pass"
        assert unsafe.check(ADD_ASSERT, code="def add(a, b):\n    return 0\n").status == "fail"


def test_workers_started_from_helper_threads_stay_alive():
    """Regression: a parent-death signal tied to the starting thread used to kill all but one worker."""
    with CodeVerifier(workers=2, time_limit_s=2) as pool:
        time.sleep(0.3)
        assert [worker._process.poll() for worker in pool._workers] == [None, None]
        assert all(v.status == "pass" for v in pool.map([{"tests": ADD_CALL, "code": ADD_CODE}] * 4))


def _supervisor_fds(worker) -> list[str]:
    """What the worker's supervisor (the shallowest python process under the sandbox) holds open."""
    level = [worker._process.pid]
    while level:
        for pid in level:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().startswith("python"):
                    fds = f"/proc/{pid}/fd"
                    try:
                        return sorted(_links(fds))
                    except PermissionError:
                        pytest.skip("the supervisor's descriptors are not readable by this user")
        level = [int(c) for pid in level for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    raise AssertionError("no supervisor found")


def _links(fds: str) -> list[str]:
    """Where each open descriptor in `fds` points; one the supervisor's closer thread closes between
    the listing and the reading is left out (it is no longer held)."""
    links = []
    for fd in os.listdir(fds):
        with contextlib.suppress(FileNotFoundError):
            links.append(os.readlink(f"{fds}/{fd}"))
    return links


def test_the_supervisor_lets_go_of_every_run(tmp_path):
    """A sandboxed run hands its mount namespace to the supervisor, which closes it (and the run's
    channel) on a thread of its own once the run is reaped: after many runs of every kind it
    holds no more than after the first."""
    items = [
        {"tests": ADD_ASSERT, "code": ADD_CODE},
        {"tests": ADD_CALL, "code": ADD_CODE},
        {"tests": ADD_STDIN, "code": ADD_PROGRAM},
        {"tests": ADD_ASSERT, "code": "def add(a, b):\n    raise SystemExit(3)\n"},
    ]
    with CodeVerifier(workers=1, time_limit_s=2) as pool:
        if pool.isolation == "none":
            pytest.skip("no sandbox here")
        assert [v.status for v in pool.map(items)] == ["pass", "pass", "pass", "fail"]
        baseline = _settled(pool._workers[0])
        verdicts = list(pool.map(items * 10))
        assert [v.status for v in verdicts] == ["pass", "pass", "pass", "fail"] * 10
        assert _settled(pool._workers[0]) == baseline
        # While a run is going on, its mount namespace is one the supervisor holds.
        slow = "import time\ndef add(a, b):\n    time.sleep(1)\n    return a + b\n"
        once = {**ADD_ASSERT, "code": "def check(candidate):\n    assert candidate(2, 3) == 5\n"}
        with ThreadPoolExecutor(1) as background:
            running = background.submit(pool.check, once, code=slow)
            deadline = time.monotonic() + 10
            while not any(link.startswith("mnt:") for link in _supervisor_fds(pool._workers[0])):
                assert time.monotonic() < deadline and not running.done()
                time.sleep(0.02)
            assert running.result().status == "pass"
        assert _settled(pool._workers[0]) == baseline


def _settled(worker) -> list[str]:
    """The supervisor's descriptors once its closer has closed every run's mount namespace."""
    deadline = time.monotonic() + 10
    held = _supervisor_fds(worker)
    while any(link.startswith("mnt:") for link in held):
        assert time.monotonic() < deadline, held
        time.sleep(0.05)
        held = _supervisor_fds(worker)
    return held


def test_a_killed_worker_is_replaced():
    with CodeVerifier(workers=1, time_limit_s=2) as pool:
        worker = pool._workers[0]
        os.killpg(worker._process.pid, signal.SIGKILL)
        worker._process.wait()
        verdicts = [pool.check(ADD_CALL, code=ADD_CODE).status for _ in range(2)]
        assert verdicts[-1] == "pass" and set(verdicts) <= {"pass", "error"}


def test_cli_verify_code(tmp_path, capsys):
    rows = [
        {"id": "a", "response": f"```python\n{ADD_CODE}```", "tests": json.dumps(ADD_CALL)},
        {"id": "b", "code": "def add(a, b):\n    return 0\n", "tests": ADD_ASSERT},
        {"id": "c", "response": "no code", "tests": json.dumps(ADD_STDIN)},
        {"id": "d", "code": ADD_PROGRAM},
        {"id": "e", "code": ADD_PROGRAM, "tests": json.dumps(ADD_STDIN)},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out.jsonl"
    assert (
        main(
            ["verify", "code", "--input", str(source), "--out", str(out), "--workers", "2", "--timeout", "2"]
        )
        == 0
    )
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in written] == ["a", "b", "c", "d", "e"]
    assert [r["status"] for r in written] == ["pass", "fail", "no_answer", "no_reference", "pass"]
    assert written[0]["extracted"] == ADD_CODE
    assert json.loads(written[4]["detail"])["cases"][1]["status"] == "pass"
    printed = capsys.readouterr()
    assert "pass" in printed.out and "rows/s" in printed.out
    assert re.search(r"sandbox: (bwrap|unshare)", printed.err)


def test_cli_refuses_without_a_sandbox(tmp_path, capsys, monkeypatch):
    no_sandbox_installed(monkeypatch)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"code": ADD_CODE, "tests": ADD_CALL}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["verify", "code", "--input", str(source), "--out", str(out)]) == 2
    assert "--unsafe-no-isolation" in capsys.readouterr().err
    assert not out.exists()
    assert main(["verify", "code", "--input", str(source), "--out", str(out), "--unsafe-no-isolation"]) == 0
    assert json.loads(out.read_text())["status"] == "pass"


def test_a_leetcode_solution_using_the_judges_names_passes_without_importing_them(verifier):
    """An assert spec on `Solution().method` from any source (here hand-written, not from an adapter)
    gets the judge's import prelude: a correct solution using deque and List does not die of NameError."""
    spec = {
        "kind": "assert",
        "entry_point": "Solution().rotate",
        "code": "def check(candidate):\n    assert candidate([1, 2, 3], 1) == [3, 1, 2]\n",
    }
    code = program("""
        class Solution:
            def rotate(self, nums: List[int], k: int) -> List[int]:
                queue = deque(nums)
                queue.rotate(k)
                return list(queue)
    """)
    assert verifier.check(spec, code=code).status == "pass"
    assert verifier.check(spec, code=code.replace("rotate(k)", "rotate(-k)")).status == "fail"


def test_assert_tests_that_do_not_compile_are_the_reference_s_fault(verifier):
    """The verifier leaves an assert test's syntax to its supervisor, which says invalid_reference."""
    bad_test = {
        "kind": "assert",
        "entry_point": "add",
        "code": "def check(candidate):\n    assert candidate(1, 2) ==\n",
    }
    bad_prelude = {
        **bad_test,
        "code": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        "prelude": "def (:",
    }
    for spec in (bad_test, bad_prelude):
        verdict = verifier.check(spec, code="def add(a, b):\n    return a + b\n")
        assert verdict.status == "invalid_reference", verdict.detail
        assert "not valid Python" in json.loads(verdict.detail)["message"]


def test_a_crash_shows_the_solution_s_traceback_only(verifier):
    code = "def f(x):\n    return 1 // (x - 1)\n\nprint(f(int(input())))\n"
    verdict = verifier.check({"kind": "stdin", "cases": [{"input": "1\n", "output": "1\n"}]}, code=code)
    stderr = json.loads(verdict.detail)["cases"][0]["stderr"]
    assert verdict.status == "fail" and stderr.startswith("Traceback (most recent call last):")
    assert 'File "solution.py", line 2, in f' in stderr and "ZeroDivisionError" in stderr
    assert "runner.py" not in stderr


def test_a_problem_s_later_samples_get_the_same_verdicts_with_its_call_plan():
    """From a test's second sample on, the calls it will make are queued before it runs (plan.py):
    the verdicts must not change. One worker, so that every sample meets the same supervisor."""
    stateful = (
        "calls = []\n\n\ndef add(a, b):\n    calls.append(1)\n    return a + b if len(calls) == 1 else -1\n"
    )
    exits = "import sys\n\n\ndef add(a, b):\n    sys.exit(0)\n"
    codes = [ADD_CODE, stateful, exits, ADD_CODE.replace("a + b", "a - b")]
    with CodeVerifier(workers=1, time_limit_s=4, memory_mb=256) as pool:
        first = [v.status for v in pool.map({"tests": ADD_ASSERT, "code": code} for code in codes)]
        again = [v.status for v in pool.map({"tests": ADD_ASSERT, "code": code} for code in codes)]
    assert first == again == ["pass", "fail", "fail", "fail"]
