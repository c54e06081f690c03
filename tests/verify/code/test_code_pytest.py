"""`pytest` test specs (KodCode's `test` field): test modules that `from solution import ...`,
run by the supervisor against proxies of the solution (issue 15)."""

from __future__ import annotations

import json
import textwrap

import pytest

from curate.verify.code.specs import SpecError, parse_spec, solution_import
from tests.verify.code.helpers import cases


def module(source: str) -> dict:
    return {"kind": "pytest", "code": textwrap.dedent(source).lstrip("\n")}


SORTING = module("""
    import pytest
    from solution import sort_unique, parse

    def test_sorts():
        assert sort_unique([3, 1, 3, 2]) == [1, 2, 3]

    @pytest.mark.parametrize("items, expected", [([], []), ([2, 2], [2]), pytest.param([5, 4], [4, 5])])
    def test_parametrized(items, expected):
        assert sort_unique(items) == expected

    class TestParse:
        def setup_method(self, method):
            self.text = "1,2"

        def test_numbers(self):
            assert parse(self.text) == [1, 2]

        def test_bad_input_raises(self):
            with pytest.raises(ValueError, match="invalid literal"):
                parse("x")

    @pytest.fixture
    def numbers():
        return [0.1, 0.2]

    def test_fixture_and_approx(numbers):
        assert sum(sort_unique(numbers)) == pytest.approx(0.3)

    def helper_not_collected():
        assert False
""")
SORTING_CODE = "def sort_unique(items):\n    return sorted(set(items))\n\ndef parse(text):\n    return [int(x) for x in text.split(',')]\n"


def test_every_collected_test_runs_and_passes(verifier):
    verdict = verifier.check(SORTING, code=SORTING_CODE)
    assert verdict.status == "pass", verdict.detail
    names = [case["test"] for case in cases(verdict)]
    assert names == [
        "test_sorts",
        "test_parametrized[0]",
        "test_parametrized[1]",
        "test_parametrized[2]",
        "TestParse.test_numbers",
        "TestParse.test_bad_input_raises",
        "test_fixture_and_approx",
    ]


@pytest.mark.parametrize(
    "code, failing",
    [
        ("def sort_unique(items):\n    return sorted(items)\n" + SORTING_CODE.split("\n\n")[1], "test_sorts"),
        (SORTING_CODE.replace("int(x)", "int(x or 0)").replace("text.split(',')", "text.split(',') if x.isdigit()"),
         "TestParse.test_bad_input_raises"),
        (SORTING_CODE.split("\n\n")[0], None),  # `parse` missing: the module's import fails
    ],
)  # fmt: skip
def test_one_failing_test_fails_the_sample(verifier, code, failing):
    verdict = verifier.check(SORTING, code=code)
    assert verdict.status == "fail", verdict.detail
    last = cases(verdict)[-1]
    assert last.get("test") == failing
    if failing is None:
        assert "ImportError" in last["reason"] and "parse" in last["reason"]


def test_plain_import_of_the_module_and_star_import(verifier):
    spec = module("""
        import solution
        from solution import *

        def test_both():
            assert solution.double(2) == 4
            assert double(3) == 6
    """)
    assert verifier.check(spec, code="def double(x):\n    return 2 * x\n").status == "pass"
    assert verifier.check(spec, code="def double(x):\n    return x + 2\n").status == "fail"


def test_a_module_whose_tests_are_all_skipped_does_not_pass(verifier):
    spec = module("""
        import pytest
        from solution import f

        @pytest.mark.skip
        def test_skipped():
            assert f() == 1

        def test_skips_itself():
            pytest.skip("not today")
    """)
    verdict = verifier.check(spec, code="def f():\n    return 0\n")
    assert verdict.status == "fail", verdict.detail
    assert cases(verdict)[-1]["reason"] == "no test ran"


def test_pytest_fixtures_the_harness_lacks_are_an_error_not_a_verdict(verifier):
    spec = module("""
        from solution import f

        def test_output(capsys):
            f()
            assert capsys.readouterr().out == "hi\\n"
    """)
    verdict = verifier.check(spec, code="def f():\n    print('hi')\n")
    assert verdict.status == "error" and "capsys" in cases(verdict)[-1]["reason"]


def test_a_raises_block_that_does_not_raise_fails(verifier):
    spec = module("""
        import pytest
        from solution import root

        def test_negative():
            with pytest.raises(ValueError):
                root(-1)
    """)
    assert (
        verifier.check(spec, code="def root(x):\n    if x < 0:\n        raise ValueError(x)\n").status
        == "pass"
    )
    verdict = verifier.check(spec, code="def root(x):\n    return 0\n")
    assert verdict.status == "fail" and "DID NOT RAISE" in cases(verdict)[-1]["reason"]


def test_what_the_solution_prints_or_patches_decides_nothing(verifier):
    """The solution runs in its own process: patching `pytest` or the test module there, or printing
    pytest's success line, leaves the verdict to the supervisor."""
    code = textwrap.dedent("""
        import sys, types
        fake = types.ModuleType("pytest")
        fake.raises = lambda *a, **k: None
        sys.modules["pytest"] = fake
        sys.modules["solution"] = types.SimpleNamespace(sort_unique=lambda items: [1, 2, 3])
        print("======== 7 passed in 0.01s ========")

        def sort_unique(items):
            return items

        def parse(text):
            return [1, 2]
    """)
    verdict = verifier.check(SORTING, code=code)
    assert verdict.status == "fail", verdict.detail


def test_spec_needs_a_test_function():
    assert parse_spec(module("def test_x():\n    pass\n"))["kind"] == "pytest"
    assert parse_spec(module("class TestX:\n    def test_y(self):\n        pass\n"))["kind"] == "pytest"
    with pytest.raises(SpecError, match="no test function"):
        parse_spec(module("from solution import f\n\ndef check():\n    assert f()\n"))
    with pytest.raises(SpecError, match="code"):
        parse_spec({"kind": "pytest", "code": "def test_x(:\n"})


def test_the_entry_hint_is_the_first_name_imported_from_solution():
    assert solution_import(SORTING["code"]) == "sort_unique"
    assert solution_import("import solution\n") is None


def test_kodcode_shaped_verdict_detail_names_each_test(verifier):
    verdict = verifier.check(json.dumps(SORTING), response=f"Here:\n```python\n{SORTING_CODE}```\n")
    assert verdict.status == "pass"
    assert all(case["status"] == "pass" for case in cases(verdict))
