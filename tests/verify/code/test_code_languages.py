"""C++, Java and JavaScript solutions (issue 21): the language comes from the spec or the response's
code fence, the program is compiled inside the sandbox once per sample, and judged by the
supervisor (lines, tokens or a trusted checker). Compiling is slow (a second or more for C++ and
Java), so the samples of a test go through the pool in one batch."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from curate.verify.code import CodeVerifier, from_codeforces
from curate.verify.code.extract import fence_language
from curate.verify.code.languages import (
    CPP,
    ensure_pch,
    java_file_name,
    java_main_class,
    missing_tool,
    program,
)
from curate.verify.code.sandbox import mount_plan
from tests.verify.code.helpers import ADD_ASSERT, cases

ADD = {
    "kind": "stdin",
    "cases": [
        {"input": "2 3\n", "output": "5\n"},
        {"input": "-1 1\n", "output": "0\n"},
        {"input": "7 8", "output": "15"},
    ],
}
CPP_ADD = '#include <cstdio>\nint main() {\n    long long a, b;\n    scanf("%lld %lld", &a, &b);\n    printf("%lld\\n", a + b);\n}\n'
JAVA_ADD = textwrap.dedent("""
    import java.util.*;

    public class Main {
        static class Reader { Scanner in = new Scanner(System.in); long next() { return in.nextLong(); } }

        public static void main(String[] args) {
            Reader r = new Reader();
            System.out.println(r.next() + r.next());
        }
    }
""")
JS_ADD = "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n"
SOLUTIONS = {"cpp": CPP_ADD, "java": JAVA_ADD, "javascript": JS_ADD}
WRONG = {"cpp": CPP_ADD.replace("a + b", "a - b"), "java": JAVA_ADD.replace("r.next() + r.next()", "r.next() * r.next()"),
         "javascript": JS_ADD.replace("a + b", "a * b")}  # fmt: skip
CRASH = {
    "cpp": "#include <cstdio>\nint main() { int *p = nullptr; printf(\"5\\n\"); fflush(stdout); return *p; }\n",
    "java": "public class Main { public static void main(String[] a) { System.out.println(5); throw new RuntimeException(\"x\"); } }\n",
    "javascript": "console.log(5);\nthrow new Error('x');\n",
}  # fmt: skip
FENCES = {"cpp": "cpp", "java": "java", "javascript": "js"}
INSTALLED = [language for language in SOLUTIONS if missing_tool(language) is None]
needs = {language: pytest.mark.skipif(language not in INSTALLED, reason=f"no {language} toolchain here")
         for language in SOLUTIONS}  # fmt: skip
LANGUAGES = [pytest.param(language, marks=needs[language]) for language in SOLUTIONS]


def fenced(language: str, code: str) -> str:
    return f"<think>\nFirst a draft.\n```python\nprint(0)\n```\n</think>\nHere it is:\n```{FENCES[language]}\n{code}```\n"


@pytest.fixture(scope="module")
def batch(verifier):
    """Every sample of this module's tests, verified at once; verdicts by name."""
    items = {}
    for language, code in SOLUTIONS.items():
        items[f"{language} correct"] = {"tests": ADD, "response": fenced(language, code)}
        items[f"{language} wrong"] = {"tests": ADD, "response": fenced(language, WRONG[language])}
        items[f"{language} crash after output"] = {"tests": {**ADD, "cases": ADD["cases"][:1]}, "code": CRASH[language],
                                                   "language": language}  # fmt: skip
        items[f"{language} by spec"] = {"tests": {**ADD, "language": language}, "code": code}
    items["cpp compile error"] = {"tests": {**ADD, "language": "c++"}, "code": "int main( {\n"}
    items["cpp bits/stdc++.h"] = {
        "tests": {**ADD, "language": "cpp"},
        "code": "#include <bits/stdc++.h>\nusing namespace std;\nint main(){ long long a,b; cin>>a>>b; cout<<a+b<<endl; }\n",
    }
    items["java compile error"] = {
        "tests": {**ADD, "language": "java"},
        "code": "public class Main { void f( }\n",
    }
    items["cpp for call tests"] = {"tests": ADD_ASSERT, "response": f"```cpp\n{CPP_ADD}```\n"}
    for item in items.values():
        if "language" in item:  # a code item names its language through the spec
            item["tests"] = {**item["tests"], "language": item.pop("language")}
    return dict(zip(items, verifier.map(items.values()), strict=True))


@pytest.mark.parametrize("language", LANGUAGES)
def test_correct_programs_pass_and_wrong_ones_fail(batch, language):
    for name in (f"{language} correct", f"{language} by spec"):
        assert batch[name].status == "pass", (name, batch[name].detail)
    wrong = batch[f"{language} wrong"]
    assert wrong.status == "fail" and "wrong answer" in cases(wrong)[0]["reason"]
    crash = batch[f"{language} crash after output"]
    assert crash.status == "fail" and "expected" not in cases(crash)[0]["reason"], crash.detail


@pytest.mark.parametrize("language", [pytest.param(name, marks=needs[name]) for name in ("cpp", "java")])
def test_compiled_once_per_sample_and_compile_errors_fail_with_the_compiler_message(batch, language):
    detail = json.loads(batch[f"{language} correct"].detail)
    assert detail["builds"] == 1 and len(detail["cases"]) == 3 and detail["compile_seconds"] > 0
    broken = batch[f"{language} compile error"]
    assert broken.status == "fail" and json.loads(broken.detail)["cases"] == []
    assert (
        "compile error" in json.loads(broken.detail)["message"]
        and "error" in json.loads(broken.detail)["message"]
    )


@needs["cpp"]
def test_bits_stdcpp_is_available(batch):
    assert batch["cpp bits/stdc++.h"].status == "pass", batch["cpp bits/stdc++.h"].detail


def test_function_tests_take_the_python_code_whatever_else_the_response_holds(batch):
    assert (
        batch["cpp for call tests"].status == "no_answer"
    )  # only a C++ answer, and a Python draft in <think>


def test_the_language_comes_from_the_answer_s_last_fence():
    assert fence_language(fenced("cpp", CPP_ADD)) == "cpp"
    assert fence_language("```python\nx\n```\n```java\ny\n```") == "java"
    assert fence_language("no code") is None
    after = "```c++\nint main() {}\n```\nExample:\n```text\n5\n```\n```\n5\n```\n"
    assert fence_language(after, ("python", "cpp")) == "cpp"  # sample output blocks do not count


def test_java_class_and_file_names():
    assert (java_main_class(JAVA_ADD), java_file_name(JAVA_ADD)) == ("Main", "Main.java")
    code = 'class Helper { int f() { return 1; } }\nclass Solve {\n  public static void main(String[] a) { String s = "class X {"; }\n}\n'
    assert (java_main_class(code), java_file_name(code)) == ("Solve", "Solve.java")


# --- judges and limits ---------------------------------------------------------------------------------------

SPLIT = {  # print two positive numbers that sum to n: many answers are right
    "kind": "stdin",
    "language": "javascript",
    "cases": [{"input": "5\n", "output": "1 4\n"}, {"input": "10\n", "output": "5 5\n"}],
    "checker": textwrap.dedent("""
        def check(input, expected, output):
            n = int(input)
            a, b = map(int, output.split())
            return (a > 0 and b > 0 and a + b == n), f"{a} + {b} != {n}"
    """),
}
READ_N = "const n = Number(require('fs').readFileSync(0, 'utf8'));\n"


@needs["javascript"]
def test_a_checker_accepts_any_correct_answer_and_decides_outside_the_run(verifier):
    items = [
        {"tests": SPLIT, "code": READ_N + "console.log(n - 1, 1);\n"},  # not the expected output, still right
        {"tests": SPLIT, "code": READ_N + "console.log(n, 0);\n"},
        {"tests": SPLIT, "code": READ_N + "console.log('yes');\n"},  # the checker raises: the output's fault
        {
            "tests": {**SPLIT, "checker": "def check(i, e, o):\n    return 1\n"},
            "code": READ_N + "console.log(1, 1);\n",
        },
    ]
    ok, wrong, garbage, broken = verifier.map(items)
    assert ok.status == "pass", ok.detail
    assert wrong.status == "fail" and "5 + 0 != 5" in cases(wrong)[0]["reason"]
    assert garbage.status == "fail" and "checker: ValueError" in cases(garbage)[0]["reason"]
    assert broken.status == "error"


@needs["javascript"]
def test_token_comparison_ignores_line_breaks(verifier):
    spec = {"kind": "stdin", "language": "javascript", "cases": [{"input": "", "output": "1 2 3\n"}]}
    code = "console.log(1); console.log('2  3');\n"
    by_lines, by_tokens = verifier.map(
        [{"tests": spec, "code": code}, {"tests": {**spec, "compare": "tokens"}, "code": code}]
    )
    assert by_lines.status == "fail" and by_tokens.status == "pass", by_tokens.detail


def test_interactive_problems_are_unsupported_never_passed(verifier):
    spec = from_codeforces(
        {"tests": [{"input": "1\n", "output": "1\n"}], "interaction_format": "Print ? x to ask."}
    )
    assert spec["interactive"] is True
    verdict = verifier.check(spec, code="print(1)\n")
    assert verdict.status == "unsupported" and "interactor" in verdict.detail


def test_codeforces_time_and_memory_limits_are_the_problem_s():
    spec = from_codeforces(
        {"tests": [{"input": "1\n", "output": "1\n"}], "time_limit": 2.0, "memory_limit": 256.0}
    )
    assert (spec["time_limit_s"], spec["memory_mb"]) == (2.0, 256)


@needs["cpp"]
@needs["javascript"]
def test_memory_limit_and_total_budget(verifier):
    hog = '#include <vector>\n#include <cstdio>\nint main() { std::vector<char> v(600u << 20, 1); printf("%d\\n", v[12345]); }\n'
    slow = "const t = Date.now(); while (Date.now() - t < 400) {}\nconsole.log(1);\n"
    cases_ = [{"input": "", "output": "1\n"}] * 8
    hogged, fits, budget = verifier.map([
        {"tests": {"kind": "stdin", "language": "cpp", "memory_mb": 256, "cases": cases_[:1]}, "code": hog},
        {"tests": {"kind": "stdin", "language": "cpp", "memory_mb": 1024, "cases": cases_[:1]}, "code": hog},
        {"tests": {"kind": "stdin", "language": "javascript", "total_time_s": 1, "cases": cases_}, "code": slow},
    ])  # fmt: skip
    assert hogged.status == "fail" and "SIGABRT" in cases(hogged)[0]["reason"], (
        hogged.detail
    )  # std::bad_alloc
    assert fits.status == "pass", fits.detail
    assert budget.status == "timeout" and "total time budget" in cases(budget)[-1]["reason"], budget.detail


@needs["cpp"]
def test_bits_stdcpp_is_precompiled_once_and_seen_by_the_sandbox():
    folder = ensure_pch()
    assert folder is not None and (folder / "bits" / "stdc++.h.gch").is_file()
    with_header = program(CPP, "#include <bits/stdc++.h>\nint main() {}\n", 256)["compile"]
    assert f"-I{folder}" in with_header
    assert not any(
        part.startswith("-I") for part in program(CPP, "#include <cstdio>\nint main() {}\n", 256)["compile"]
    )
    # The sandbox binds the folder of every compiler's header (found without running g++).
    assert str(folder.parent) in [dest for _, dest in mount_plan(sys.executable)[1]]


@needs["java"]
@needs["javascript"]
def test_without_isolation_programs_build_and_run_in_their_own_folder():
    """`isolation="none"` (code the user trusts): paths under /tmp become the run's own folder."""
    with CodeVerifier(workers=1, isolation="none") as pool:
        java, js = pool.map(
            [
                {"tests": {**ADD, "language": "java"}, "code": JAVA_ADD},
                {"tests": {**ADD, "language": "js"}, "code": JS_ADD},
            ]
        )
    assert java.status == "pass", java.detail
    assert js.status == "pass", js.detail


def test_prompts_ask_for_the_spec_s_language_in_a_fence_the_verifier_reads():
    from distill.generate.prompts import PromptItem

    cases = [{"input": "1 2\n", "output": "3\n"}]
    for language, name in (("c++", "C++"), ("java", "Java"), ("js", "JavaScript"), (None, "Python")):
        spec = {"kind": "stdin", "cases": cases, **({"language": language} if language else {})}
        prompt = PromptItem("Add two numbers.", tests=json.dumps(spec), domain="code").prompt()
        assert f"Write a {name} program" in prompt
        fence = prompt.split("```")[1].split()[0]
        answer = f"Here:\n```{fence}\nint main() {{}}\n```\n"
        expected = (
            "python" if language is None else {"c++": "cpp", "js": "javascript"}.get(language, language)
        )
        assert fence_language(answer, ("python", "cpp", "java", "javascript")) == expected
