"""Judge programs (issue 21): interactors and testlib-style checkers, run as `judge input output
answer` in a runner of their own, their exit code deciding (0 accepted, 1 wrong answer, 2
presentation error, 3 the judge failed). testlib.h itself is not available here: these judges
follow its convention without it. The samples of a test go through the pool in one batch."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from curate.verify.code import judges, parse_spec
from curate.verify.code.languages import missing_tool
from curate.verify.code.sandbox import candidates
from curate.verify.code.specs import SpecError
from tests.verify.code.helpers import assert_pool_alive, cases

needs_gpp = pytest.mark.skipif(missing_tool("cpp") is not None, reason="needs g++")

# Guess the number: the interactor reads `n secret` from the input file, tells the solution n,
# answers `? x` with <, > or =, and accepts `! x` when x is the secret within 20 questions.
INTERACTOR_PY = textwrap.dedent("""
    import sys
    n, secret = map(int, open(sys.argv[1]).read().split())
    print(n, flush=True)
    for _ in range(20):
        words = sys.stdin.readline().split()
        if not words:
            sys.exit(print("the solution stopped talking", file=sys.stderr) or 1)
        if words[0] == "!":
            if int(words[1]) != secret:
                sys.exit(print(f"guessed {words[1]}, the number was {secret}", file=sys.stderr) or 1)
            sys.exit(0)
        x = int(words[1])
        print("<" if secret < x else ">" if secret > x else "=", flush=True)
    sys.exit(print("more than 20 questions", file=sys.stderr) or 1)
""")
INTERACTOR_CPP = textwrap.dedent("""
    #include <cstdio>
    int main(int argc, char** argv) {
        FILE* in = fopen(argv[1], "r");
        long long n, secret;
        if (!in || fscanf(in, "%lld %lld", &n, &secret) != 2) return 3;  // FAIL: a bad test
        printf("%lld\\n", n); fflush(stdout);
        for (int asked = 0; asked < 20; asked++) {
            char op[4]; long long x;
            if (scanf("%3s %lld", op, &x) != 2) { fprintf(stderr, "no answer\\n"); return 1; }
            if (op[0] == '!') {
                if (x == secret) return 0;
                fprintf(stderr, "guessed %lld\\n", x); return 1;
            }
            puts(secret < x ? "<" : secret > x ? ">" : "="); fflush(stdout);
        }
        fprintf(stderr, "more than 20 questions\\n");
        return 1;
    }
""")
GUESS_CASES = [{"input": f"1000000 {secret}\n", "output": ""} for secret in (1, 777777, 1000000)]
SEARCH_PY = textwrap.dedent("""
    n = int(input())
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        print("?", mid, flush=True)
        answer = input()
        if answer == "=":
            lo = hi = mid
        elif answer == "<":
            hi = mid - 1
        else:
            lo = mid + 1
    print("!", lo, flush=True)
""")
SEARCH_CPP = textwrap.dedent("""
    #include <bits/stdc++.h>
    using namespace std;
    int main() {
        long long n; cin >> n;
        long long lo = 1, hi = n;
        while (lo < hi) {
            long long mid = (lo + hi) / 2;
            cout << "? " << mid << endl;
            string answer; cin >> answer;
            if (answer == "=") lo = hi = mid;
            else if (answer == "<") hi = mid - 1;
            else lo = mid + 1;
        }
        cout << "! " << lo << endl;
    }
""")
LINEAR_PY = "n = int(input())\nfor x in range(1, n + 1):\n    print('?', x, flush=True)\n    if input() == '=':\n        break\nprint('!', x, flush=True)\n"
SILENT_PY = "import time\ninput()\ntime.sleep(60)\n"
LIAR_PY = "n = int(input())\nprint('!', n, flush=True)\n"  # guesses without asking
CRASH_AFTER_PY = SEARCH_PY + "raise SystemExit(3)\n"


def guess(interactor: object, language: str = "python", **extra) -> dict:
    return {"kind": "stdin", "cases": GUESS_CASES, "interactor": interactor, "language": language,
            "time_limit_s": 2, **extra}  # fmt: skip


def test_interactive_problems_are_judged_by_their_interactor(verifier):
    python = guess(INTERACTOR_PY)
    batch = {
        "python search": (python, SEARCH_PY),
        "python linear": (python, LINEAR_PY),
        "python liar": (python, LIAR_PY),
        "python silent": ({**python, "time_limit_s": 1}, SILENT_PY),
        "python crash after": (python, CRASH_AFTER_PY),
        "python gone at once": (python, "pass\n"),  # the interactor then dies of a broken pipe
        "by the spec": (
            {**python, "interactor": INTERACTOR_PY.replace("secret < x", "secret > x")},
            SEARCH_PY,
        ),
    }
    if missing_tool("cpp") is None:
        cpp = guess({"language": "cpp", "source": INTERACTOR_CPP}, "cpp")
        batch["cpp search"] = (cpp, SEARCH_CPP)
        batch["cpp search, python interactor"] = ({**python, "language": "cpp"}, SEARCH_CPP)
        batch["cpp off by one"] = (cpp, SEARCH_CPP.replace('"! " << lo', '"! " << lo + 1'))
        batch["cpp gone at once"] = (cpp, "int main() { return 0; }\n")
    verdicts = dict(
        zip(batch, verifier.map([{"tests": t, "code": c} for t, c in batch.values()]), strict=True)
    )
    for name in ("python search", "cpp search", "cpp search, python interactor"):
        if name in verdicts:
            assert verdicts[name].status == "pass", (name, verdicts[name].detail)
            assert len(cases(verdicts[name])) == len(GUESS_CASES)
    assert verdicts["python linear"].status == "fail"
    assert "more than 20 questions" in cases(verdicts["python linear"])[-1]["reason"]
    assert (
        verdicts["python liar"].status == "fail" and "guessed" in cases(verdicts["python liar"])[0]["reason"]
    )
    assert verdicts["python silent"].status == "timeout", verdicts["python silent"].detail
    crash = cases(verdicts["python crash after"])[0]
    assert verdicts["python crash after"].status == "fail" and "exit code 3" in crash["reason"], crash
    gone = verdicts["python gone at once"]
    reason = cases(gone)[0]["reason"]  # the interactor's first write fails, or (if it came first) its read
    assert gone.status == "fail" and ("ended before the interactor" in reason or "stopped talking" in reason)
    # The same solution under an interactor that answers the other way round: it decides.
    assert verdicts["by the spec"].status == "fail"
    if "cpp off by one" in verdicts:
        assert verdicts["cpp off by one"].status == "fail", verdicts["cpp off by one"].detail
        # whether the interactor then reads EOF or dies writing to it, it is the solution's fault
        assert verdicts["cpp gone at once"].status == "fail", verdicts["cpp gone at once"].detail
    assert_pool_alive(verifier)


def test_interactive_without_an_interactor_stays_unsupported(verifier):
    spec = {"kind": "stdin", "cases": GUESS_CASES, "interactive": True}
    verdict = verifier.check(spec, code=SEARCH_PY)
    assert verdict.status == "unsupported" and "interactor" in verdict.detail
    assert parse_spec(guess(INTERACTOR_PY))["interactive"] is True


# Several correct outputs: print two positive numbers summing to n. The checker follows testlib's
# convention: exit 0 accepted, 1 wrong answer, 2 presentation error (not two numbers).
CHECKER_CPP = textwrap.dedent("""
    #include <cstdio>
    int main(int argc, char** argv) {
        if (argc != 4) return 3;
        FILE* in = fopen(argv[1], "r"); FILE* out = fopen(argv[2], "r"); FILE* ans = fopen(argv[3], "r");
        long long n, a, b;
        if (!in || !ans || fscanf(in, "%lld", &n) != 1) return 3;
        if (!out || fscanf(out, "%lld %lld", &a, &b) != 2) { fprintf(stderr, "expected two numbers\\n"); return 2; }
        if (a < 1 || b < 1 || a + b != n) { fprintf(stderr, "%lld + %lld is not %lld\\n", a, b, n); return 1; }
        fprintf(stderr, "ok\\n");
        return 0;
    }
""")
CHECKER_PY = textwrap.dedent("""
    import sys
    n = int(open(sys.argv[1]).read())
    try:
        a, b = map(int, open(sys.argv[2]).read().split())
    except ValueError:
        sys.exit(2)
    sys.exit(0 if a >= 1 and b >= 1 and a + b == n else 1)
""")
SPLIT_CASES = [{"input": f"{n}\n", "output": f"1 {n - 1}\n"} for n in (2, 10, 99)]
SPLIT_OK = "n = int(input())\nprint(n // 2, n - n // 2)\n"
SPLIT_WRONG = "n = int(input())\nprint(n // 2, n - n // 2 + 1)\n"
SPLIT_WORDS = "print('two numbers')\n"


def split(checker: object) -> dict:
    return {"kind": "stdin", "cases": SPLIT_CASES, "checker": checker}


@needs_gpp
def test_testlib_style_checkers_decide_by_exit_code(verifier, tmp_path):
    prebuilt = tmp_path / "checker"
    source = tmp_path / "checker.cpp"
    source.write_text(CHECKER_CPP)
    subprocess.run(["g++", "-O2", "-o", str(prebuilt), str(source)], check=True)
    checkers = {
        "cpp": {"language": "cpp", "source": CHECKER_CPP},
        "python": {"language": "python", "source": CHECKER_PY},
        "command": {"command": [str(prebuilt)]},
    }
    items, names = [], []
    for kind, checker in checkers.items():
        for variant, code in (("ok", SPLIT_OK), ("wrong", SPLIT_WRONG), ("words", SPLIT_WORDS)):
            names.append((kind, variant))
            items.append({"tests": split(checker), "code": code})
    failing = {"language": "python", "source": "import sys\nsys.exit(3)\n"}
    names += [("fails", "ok"), ("broken", "ok")]
    items += [{"tests": split(failing), "code": SPLIT_OK}, {"tests": split({"language": "cpp", "source": "int main( {"}), "code": SPLIT_OK}]  # fmt: skip
    verdicts = dict(zip(names, verifier.map(items), strict=True))
    for kind in checkers:
        assert verdicts[kind, "ok"].status == "pass", (kind, verdicts[kind, "ok"].detail)
        assert verdicts[kind, "wrong"].status == "fail", (kind, verdicts[kind, "wrong"].detail)
        assert verdicts[kind, "words"].status == "fail", (kind, verdicts[kind, "words"].detail)
    assert "is not 2" in cases(verdicts["cpp", "wrong"])[0]["reason"]
    assert "expected two numbers" in cases(verdicts["cpp", "words"])[0]["reason"]
    assert verdicts["fails", "ok"].status == "error" and "checker failed" in verdicts["fails", "ok"].detail
    broken = verdicts["broken", "ok"]
    assert broken.status == "invalid_reference" and "does not compile" in json.loads(broken.detail)["message"]


@needs_gpp
def test_a_cpp_judge_is_compiled_once_with_the_include_path(tmp_path, monkeypatch):
    include = tmp_path / "include"
    include.mkdir()
    (include / "testlib.h").write_text(f"// {tmp_path}\ninline int verdict_ok() {{ return 0; }}\n")
    source = '#include "testlib.h"\nint main() { return verdict_ok(); }\n'
    with pytest.raises(judges.JudgeError, match="testlib.h"):
        judges.prepare({"language": "cpp", "source": source}, "checker", "python")
    monkeypatch.setenv(judges.INCLUDE_ENV, str(include))
    first = judges.prepare({"language": "cpp", "source": source}, "checker", "python", judges.include_dirs())
    built = first["argv"][0]
    stamp = (built, judges.Path(built).stat().st_mtime_ns)
    judges._prepared.clear()
    again = judges.prepare({"language": "cpp", "source": source}, "checker", "python", judges.include_dirs())
    assert (again["argv"][0], judges.Path(again["argv"][0]).stat().st_mtime_ns) == stamp  # not rebuilt
    assert first["argv"][1:] == list(judges.FILE_ARGS)


@needs_gpp
def test_cli_judge_include_finds_the_checkers_header(tmp_path):
    from distill.cli import main

    include = tmp_path / "include"
    include.mkdir()
    (include / "sums.h").write_text(f"// {tmp_path}\n{CHECKER_CPP.replace('int main(', 'int check(')}")
    checker = {
        "language": "cpp",
        "source": '#include "sums.h"\nint main(int c, char** v) { return check(c, v); }\n',
    }
    rows = [{"code": code, "tests": json.dumps(split(checker))} for code in (SPLIT_OK, SPLIT_WRONG)]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    argv = ["verify", "code", "--input", str(source), "--out", str(out), "--workers", "1"]
    assert main(argv) == 0  # without the folder the checker does not compile
    assert {json.loads(line)["status"] for line in out.read_text().splitlines()} == {"invalid_reference"}
    assert main([*argv, "--judge-include", str(include)]) == 0
    assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == ["pass", "fail"]


def test_judge_specs_are_validated():
    for bad in (
        {"language": "java", "source": "x"},
        {"command": []},
        {"language": "python", "source": "def ("},
        7,
    ):
        with pytest.raises(SpecError):
            parse_spec(split(bad))
    with pytest.raises(SpecError, match="only stdin"):
        parse_spec(
            {"kind": "call", "fn_name": "f", "cases": [{"args": [], "expected": 1}], "interactor": "x = 1"}
        )


PEEK_PY = (  # looks for the interactor's files (its input holds the secret) and guesses from them
    "import glob\nn = int(input())\nfound = glob.glob('/tmp/**/input.txt', recursive=True) + glob.glob('/proc/*/cwd/input.txt')\n"
    "print('!', open(found[0]).read().split()[1] if found else 1, flush=True)\n"
)


@pytest.mark.parametrize("mode", candidates("auto"))
def test_interactors_run_apart_from_the_solution_in_every_mode(sandbox_verifier, mode):
    pool = sandbox_verifier(mode)
    spec = {**guess(INTERACTOR_PY), "cases": GUESS_CASES[1:2]}
    search, peek = pool.map([{"tests": spec, "code": SEARCH_PY}, {"tests": spec, "code": PEEK_PY}])
    assert search.status == "pass", search.detail
    assert peek.status == "fail", peek.detail


def test_a_command_s_files_are_copied_and_its_options_kept(tmp_path):
    script = tmp_path / "check.py"
    script.write_text("import sys\nsys.exit(0)\n")
    prepared = judges.prepare({"command": ["python3", str(script), "--mode=/strict"]}, "checker", "python")
    program, copied, option = prepared["argv"][:3]
    assert program == "python3" and option == "--mode=/strict"
    assert (
        copied.startswith(str(judges.cache_folder()))
        and judges.Path(copied).read_text() == script.read_text()
    )
    with pytest.raises(judges.JudgeError, match="not a file"):
        judges.prepare({"command": [str(tmp_path / "missing")]}, "checker", "python")
