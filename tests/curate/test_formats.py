"""Every input-format adapter, on hand-made records shaped like the public datasets."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from curate.formats import ADAPTERS, Malformed, closest_formats, detect_format, remap
from curate.formats.code_tests import decode_compressed_json, spec_from_published
from curate.schema import split_think
from curate.verify.code.specs import SpecError

OPENR1 = {
    "problem": "Find x if 2x = 4.",
    "solution": "Divide by two.",
    "answer": "2",
    "problem_type": "Algebra",
    "source": "olympiads",
    "generations": ["<think>2x=4 so x=2</think> \\boxed{2}", "<think>x=3?</think> \\boxed{3}"],
    "correctness_math_verify": [True, False],
    "finish_reasons": ["stop", "length"],
}
AM = {
    "messages": [
        {
            "role": "user",
            "content": "What is 1+1?",
            "info": {"source": "math_set", "reference_answer": "2", "test_case": None},
        },
        {
            "role": "assistant",
            "content": "<think>\nadd them\n</think>\n<answer>\n\\boxed{2}\n</answer>",
            "info": {
                "source": "math_set",
                "think_content": "add them",
                "answer_content": "\\boxed{2}",
                "model_name": "DeepSeek-R1",
                "verify_score": 1.0,
            },
        },
    ]
}
AM_CODE = {
    "messages": [
        {
            "role": "user",
            "content": "Read n, print n+1.",
            "info": {"source": "codeio", "test_case": json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]})},
        },
        {
            "role": "assistant",
            "content": "<think>easy</think>```python\nprint(int(input())+1)\n```",
            "info": {"think_content": "easy"},
        },
    ]
}
OPENTHOUGHTS = {
    "system": "Your role as an assistant involves thoroughly exploring questions...",
    "conversations": [
        {"from": "user", "value": "Return your final response within \\boxed{}. What is 3*3?"},
        {
            "from": "assistant",
            "value": "<|begin_of_thought|>\n\nthree threes\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n\\boxed{9}\n\n<|end_of_solution|>",
        },
    ],
}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "Hi?"},
        {"from": "gpt", "value": "<think>greet</think>Hello"},
    ],
    "id": "x1",
}
OPENAI_CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "two and two"},
    ],
    "answer": 4,
}
EVAL_DUMP = {
    "idx": 0,
    "question": "1+2?",
    "gt": "3",
    "code": ["\\boxed{3}", "\\boxed{4}"],
    "pred": ["3", "4"],
    "score": [True, False],
}
HUMANEVAL = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a, b):\n    """Add."""\n',
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    "entry_point": "add",
}
MBPP = {
    "task_id": 2,
    "text": "Write a function to find the shared elements.",
    "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
    "test_list": ["assert set(similar_elements((3, 4), (4, 5))) == set((4,))"],
    "test_setup_code": "",
    "challenge_test_list": [],
}
CODEFORCES = {
    "problem": "Print the sum of two integers.",
    "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}],
}
APPS_STDIN = {
    "problem_id": 7,
    "question": "Read a line and echo it.",
    "solutions": json.dumps(["print(input())", "import sys\nprint(sys.stdin.readline().strip())"]),
    "input_output": json.dumps({"inputs": ["hi\n"], "outputs": ["hi\n"]}),
    "difficulty": "interview",
    "starter_code": "",
}
TACO_CALL = {
    "question": "Return the larger number.",
    "solutions": [],
    "starter_code": "def bigger(a, b):\n",
    "input_output": {"fn_name": "bigger", "inputs": [[1, 2], [5, 3]], "outputs": [[2], [5]]},
}
LEETCODE = {
    "task_id": "container-with-most-water",
    "problem_description": "Given heights, find the max water area.",
    "starter_code": "class Solution:\n    def maxArea(self, height: List[int]) -> int:\n",
    "completion": "class Solution:\n    def maxArea(self, height):\n        return 49",
    "entry_point": "Solution().maxArea",
    "test": "def check(candidate):\n    assert candidate(height=[1,8,6,2,5,4,8,3,7]) == 49\n",
}
MATH500 = {
    "problem": "Compute $1+1$.",
    "solution": "It is $\\boxed{2}$.",
    "answer": "2",
    "subject": "Algebra",
    "level": 1,
    "unique_id": "test/algebra/1.json",
}
GSM8K = {
    "question": "Tom has 3 apples and buys 2,000 more. How many?",
    "answer": "3 + 2000 = 2003\n#### 2,003",
    "idx": 5,
}
AIME25 = {"prompt": "Find the answer. Put it in \\boxed{}.", "answer": 204}
PROMPT_ONLY = {"problem": "Prove that 2 is prime.", "difficulty": 1.5}
ALPACA = {"instruction": "Translate to French.", "input": "cat", "output": "chat"}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (OPENR1, "openr1"),
        (AM, "am_distill"),
        (AM_CODE, "am_distill"),
        (OPENTHOUGHTS, "openthoughts"),
        (SHAREGPT, "chat"),
        (OPENAI_CHAT, "chat"),
        (EVAL_DUMP, "eval_dump"),
        (HUMANEVAL, "humaneval"),
        (MBPP, "mbpp"),
        (CODEFORCES, "stdin_tests"),
        (APPS_STDIN, "apps"),
        (TACO_CALL, "apps"),
        (LEETCODE, "leetcode"),
        (MATH500, "problem_set"),
        (GSM8K, "problem_set"),
        (AIME25, "problem_set"),
        (PROMPT_ONLY, "problem_set"),
        (ALPACA, "prompt_response"),
    ],
)
def test_detection_picks_the_right_adapter(record, expected):
    assert detect_format([record]) == expected


def convert(name, record):
    return ADAPTERS[name].convert(record)


def test_openr1_one_row_per_generation_with_its_own_labels():
    rows = convert("openr1", OPENR1)
    assert [r["response"] for r in rows] == OPENR1["generations"]
    assert [r["meta"]["correctness_math_verify"] for r in rows] == [True, False]
    assert [r["meta"]["finish_reasons"] for r in rows] == ["stop", "length"]
    assert all(r["reference"] == "2" and r["subset"] == "olympiads" for r in rows)
    assert all(r["meta"]["source"] == "olympiads" for r in rows), "the record's own tag stays in meta"
    assert rows[0]["meta"]["solution"] == "Divide by two." and rows[0]["meta"]["problem_type"] == "Algebra"


def test_am_distill_takes_reasoning_reference_and_teacher_from_info():
    (row,) = convert("am_distill", AM)
    assert row["problem"] == "What is 1+1?" and row["reasoning"] == "add them"
    assert row["reference"] == "2" and row["teacher"] == "DeepSeek-R1" and row["subset"] == "math_set"
    assert row["meta"]["assistant_info"]["verify_score"] == 1.0


def test_am_distill_code_test_case_becomes_a_stdin_spec():
    (row,) = convert("am_distill", AM_CODE)
    assert json.loads(row["tests"]) == {"kind": "stdin", "cases": [{"input": "1\n", "output": "2\n"}]}


def test_openthoughts_markers_split_into_reasoning():
    (row,) = convert("openthoughts", OPENTHOUGHTS)
    assert row["problem"].endswith("What is 3*3?")
    assert split_think(row["response"]) == "three threes"
    assert row["meta"]["system"].startswith("Your role")


def test_chat_sharegpt_and_openai_styles():
    (share,) = convert("chat", SHAREGPT)
    assert (share["problem"], share["response"], share["meta"]["id"]) == (
        "Hi?",
        "<think>greet</think>Hello",
        "x1",
    )
    (openai,) = convert("chat", OPENAI_CHAT)
    assert openai["reasoning"] == "two and two" and openai["reference"] == "4"
    assert openai["meta"]["other_turns"] == [{"role": "system", "content": "Be brief."}]


def test_chat_without_assistant_is_a_prompt():
    (row,) = convert("chat", {"messages": [{"role": "user", "content": "Solve it."}]})
    assert row["problem"] == "Solve it." and row["response"] is None


def test_eval_dump_one_row_per_sample_with_its_labels():
    rows = convert("eval_dump", EVAL_DUMP)
    assert [(r["response"], r["meta"]["pred"], r["meta"]["score"]) for r in rows] == [
        ("\\boxed{3}", "3", True),
        ("\\boxed{4}", "4", False),
    ]
    assert all(r["reference"] == "3" for r in rows)


def test_humaneval_response_is_the_completed_program_and_tests_an_assert_spec():
    (row,) = convert("humaneval", HUMANEVAL)
    assert "return a + b" in row["response"] and row["response"].startswith("```python")
    spec = json.loads(row["tests"])
    assert (spec["kind"], spec["entry_point"], spec["code"]) == ("assert", "add", HUMANEVAL["test"])
    assert spec["prelude"] == HUMANEVAL["prompt"]  # the test's helpers come from a trusted copy
    assert row["meta"] == {"task_id": "HumanEval/0"}


def test_mbpp_asserts_become_an_assert_spec():
    (row,) = convert("mbpp", MBPP)
    spec = json.loads(row["tests"])
    assert spec["kind"] == "assert" and spec["entry_point"] == "similar_elements"
    exec(MBPP["code"] + "\n" + spec["code"], {})  # the converted asserts hold for the reference code
    with pytest.raises(AssertionError):
        exec("def similar_elements(a, b):\n    return ()\n" + spec["code"], {})


def test_codeforces_stdin_cases():
    (row,) = convert("stdin_tests", CODEFORCES)
    assert json.loads(row["tests"])["cases"][1] == {"input": "5 5\n", "output": "10\n"}
    assert row["response"] is None


def test_apps_one_row_per_solution_and_taco_call_spec():
    rows = convert("apps", APPS_STDIN)
    assert len(rows) == 2 and rows[1]["meta"]["solution_index"] == 1
    assert json.loads(rows[0]["tests"]) == {"kind": "stdin", "cases": [{"input": "hi\n", "output": "hi\n"}]}
    (taco,) = convert("apps", TACO_CALL)
    spec = json.loads(taco["tests"])
    assert (spec["kind"], spec["fn_name"]) == ("call", "bigger")
    assert spec["cases"] == [
        {"args": [1, 2], "expected": 2},
        {"args": [5, 3], "expected": 5},
    ]  # APPS wrapping undone
    assert "from typing import *" in spec["prelude"]
    assert "def bigger" in taco["problem"]


def test_leetcode_keeps_the_solution_entry_point():
    (row,) = convert("leetcode", LEETCODE)
    assert json.loads(row["tests"])["entry_point"] == "Solution().maxArea"
    assert "return 49" in row["response"]


def test_problem_sets_math_gsm8k_aime_and_prompt_only():
    (math,) = convert("problem_set", MATH500)
    assert (math["response"], math["reference"]) == (MATH500["solution"], "2")
    assert math["meta"] == {"subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"}
    (gsm,) = convert("problem_set", GSM8K)
    assert gsm["reference"] == "2003" and gsm["response"] == GSM8K["answer"]
    (aime,) = convert("problem_set", AIME25)
    assert aime["reference"] == "204" and aime["response"] is None
    (prompt,) = convert("problem_set", PROMPT_ONLY)
    assert (
        prompt["response"] is None and prompt["reference"] is None and prompt["meta"] == {"difficulty": 1.5}
    )


def test_alpaca_input_is_appended_to_the_instruction():
    (row,) = convert("prompt_response", ALPACA)
    assert row["problem"] == "Translate to French.\n\ncat" and row["response"] == "chat"


def test_a_trace_row_meta_is_merged_not_nested():
    generated = {
        "id": "a1",
        "problem": "1+1?",
        "response": "2",
        "teacher": "m",
        "domain": "math",
        "meta": {"sample": 0, "finish_reason": "stop"},
    }
    (row,) = convert("prompt_response", generated)
    assert row["meta"] == {"sample": 0, "finish_reason": "stop", "id": "a1", "domain": "math"}


@pytest.mark.parametrize(
    ("name", "record", "field"),
    [
        ("problem_set", {"problem": {"text": "nested"}}, "problem"),
        ("problem_set", {"question": ["a", "list"]}, "question"),
        ("openr1", {"problem": "p", "generations": "not a list"}, "generations"),
        ("chat", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ("chat", {"messages": [{"role": "assistant", "content": "only an answer"}]}, "messages"),
        ("humaneval", {**HUMANEVAL, "entry_point": None}, "entry_point"),
        ("stdin_tests", {"problem": "p", "tests": [{"input": 1, "output": "2"}]}, "tests[0].input"),
    ],
)
def test_bad_records_raise_malformed_naming_the_field(name, record, field):
    with pytest.raises(Malformed) as error:
        convert(name, record)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("response", "reasoning"),
    [
        ("<think>a</think>b", "a"),
        ("a</think>b", "a"),  # R1's template puts <think> in the prompt
        ("<think>never closed", "never closed"),
        ("<|begin_of_thought|>t<|end_of_thought|><|begin_of_solution|>s<|end_of_solution|>", "t"),
        ("no reasoning at all", None),
        (None, None),
    ],
)
def test_split_think_variants(response, reasoning):
    assert split_think(response) == reasoning


# --- published datasets (fixtures in tests/curate/formats/data, one file per dataset) ------------------

PUBLISHED = Path(__file__).parent / "formats" / "data"


def published(name: str) -> list[dict]:
    return [json.loads(line) for line in (PUBLISHED / f"{name}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openr1_math_220k", "openr1"),
        ("am_distill", "am_distill"),
        ("kodcode", "kodcode"),
        ("codeforces_cots", "codeforces_cots"),
        ("primeintellect", "primeintellect"),
        ("verl_rl", "verl"),
        ("livecodebench", "livecodebench"),
        ("opencodereasoning", "opencodereasoning"),
        ("openmathreasoning", "openmathreasoning"),
        ("s1k", "s1k"),
        ("s1k_1_1", "s1k"),
        ("openthoughts_metadata", "openthoughts_metadata"),
        ("mbpp_sanitized", "mbpp"),
        ("deepcoder", "deepcoder"),
    ],
)
def test_published_shapes_are_detected(name, expected):
    assert detect_format(published(name)) == expected
    assert all(detect_format([record]) == expected for record in published(name))


def test_openr1_two_generations_do_not_split_the_two_turn_messages():
    record = published("openr1_math_220k")[0]
    rows = convert("openr1", record)
    assert len(rows) == 2 and all(r["meta"]["messages"] == record["messages"] for r in rows)
    assert [r["meta"]["correctness_math_verify"] for r in rows] == [True, False]
    assert [r["meta"]["is_reasoning_complete"] for r in rows] == [True, True]


def test_verl_math_reference_and_code_tests():
    math_row, code_row = (convert("verl", r)[0] for r in published("verl_rl"))
    assert math_row["reference"] == "49" and math_row["response"] is None and "tests" not in math_row
    assert math_row["meta"]["extra_info"]["index"] == 0 and math_row["subset"] == "DeepScaleR"
    assert json.loads(code_row["tests"])["cases"][1] == {"input": "10 -3\n", "output": "7\n"}
    assert code_row["meta"]["other_turns"][0]["role"] == "system"


def test_livecodebench_private_tests_are_decoded_and_functional_ones_call_func_name():
    stdin, functional = (convert("livecodebench", r)[0] for r in published("livecodebench"))
    assert [c["input"] for c in json.loads(stdin["tests"])["cases"]] == ["3\n", "0\n", "-5\n"]
    spec = json.loads(functional["tests"])
    assert spec["kind"] == "call" and spec["fn_name"] == "countEven"
    assert spec["cases"][0] == {"args": [[1, 2, 4]], "expected": 2}
    assert "class Solution" in functional["problem"], "the starter code joins the problem"


def test_a_pickled_object_in_private_tests_is_refused():
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(SpecError, match="refusing to load"):
        decode_compressed_json(blob, "private_test_cases")


def test_am_test_case_call_type_assert_and_an_unknown_layout_keeps_the_row():
    code = published("am_distill")[1]
    (row,) = convert("am_distill", code)
    assert json.loads(row["tests"]) == {
        "kind": "assert",
        "entry_point": "double",
        "code": "assert double(2) == 4\nassert double(-1) == -2",
    }
    odd = json.loads(json.dumps(code))
    odd["messages"][0]["info"]["test_case"] = json.dumps({"call_type": "interactive", "judge": "x"})
    (row,) = convert("am_distill", odd)
    assert "tests" not in row and "interactive" in row["meta"]["tests_unconverted"]


def test_deepcoder_functional_check_becomes_an_assert_on_the_solution_method():
    (row,) = convert("deepcoder", published("deepcoder")[0])
    spec = json.loads(row["tests"])
    assert spec["entry_point"] == "Solution().largest"
    assert "check(Solution()" not in spec["code"] and spec["code"].startswith("def check(candidate):")


def test_primeintellect_function_call_cases_unwrap_their_outputs():
    stdin, call = (convert("primeintellect", r)[0] for r in published("primeintellect"))
    assert json.loads(stdin["tests"])["kind"] == "stdin"
    spec = json.loads(call["tests"])
    assert spec["fn_name"] == "add" and spec["cases"][0] == {"args": [1, 2], "expected": 3}
    assert stdin["meta"]["metadata"]["difficulty"] == 7


def test_primeintellect_other_languages_stay_untested():
    record = dict(published("primeintellect")[0])
    record["verification_info"] = json.dumps(
        {"language": "cpp", "test_cases": [{"input": "1", "output": "1", "type": "stdin_stdout"}]}
    )
    (row,) = convert("primeintellect", record)
    assert "tests" not in row and "cpp" in row["meta"]["tests_unconverted"]


def test_codeforces_cots_examples_and_interactive_problems():
    record = published("codeforces_cots")[0]
    (row,) = convert("codeforces_cots", record)
    assert json.loads(row["tests"])["cases"][0] == {"input": "3\n1 5 2", "output": "5"}
    assert row["problem"] == record["prompt"] and row["response"] == record["generation"]
    (interactive,) = convert("codeforces_cots", {**record, "interaction_format": "Ask queries ? x"})
    assert "tests" not in interactive and "interactive" in interactive["meta"]["tests_unconverted"]


def test_kodcode_without_r1_transcript_answers_with_the_fenced_solution():
    record = {k: v for k, v in published("kodcode")[0].items() if k != "conversations"}
    (row,) = convert("kodcode", record)
    assert row["response"].startswith("```python\ndef is_palindrome") and row["teacher"] == "gpt-4o"
    assert "reference" not in row or row["reference"] is None


def test_s1k_1_1_without_one_teacher_gives_one_row():
    record = dict(published("s1k_1_1")[0], gemini_thinking_trajectory=None, gemini_attempt=None)
    assert [r["teacher"] for r in convert("s1k", record)] == ["DeepSeek-R1"]


def test_remap_renames_before_detection_and_reaches_inside_objects():
    record = {"Question": "What is 2+3?", "Answer": "5"}
    mapped = remap(record, {"problem": "Question", "reference": "Answer"})
    assert detect_format([mapped]) == "problem_set"
    (row,) = convert("problem_set", mapped)
    assert (row["problem"], row["reference"]) == ("What is 2+3?", "5")
    nested = remap(
        {"q": "x", "reward_model": {"ground_truth": "7"}},
        {"problem": "q", "answer": "reward_model.ground_truth"},
    )
    assert nested["answer"] == "7" and nested["reward_model"] == {"ground_truth": "7"}


def test_closest_formats_rank_by_shared_fields():
    assert closest_formats({"question_content", "public_test_cases", "contest_id"})[0] == "livecodebench"
    assert closest_formats({"zzz"}) == []


@pytest.mark.parametrize(
    ("layout", "kind"),
    [
        ([{"input": "1\n", "output": "1\n"}], "stdin"),
        ({"inputs": ["1\n"], "outputs": ["1\n"]}, "stdin"),
        ({"inputs": [[1]], "outputs": [[2]], "fn_name": "f"}, "call"),
        ({"functional": "def check(candidate):\n    assert candidate(1) == 2\n\ncheck(f)"}, "assert"),
        ({"call_type": "assert", "fn_name": "f", "assert_case": ["assert f(1) == 2"]}, "assert"),
        ({"test_cases": [{"input": [1], "output": [2], "type": "function_call", "fn_name": "f"}]}, "call"),
        ({"kind": "stdin", "cases": [{"input": "", "output": ""}]}, "stdin"),
    ],
)
def test_published_test_layouts(layout, kind):
    assert spec_from_published(layout)["kind"] == kind
    assert spec_from_published(json.dumps(layout))["kind"] == kind, "the same layout as JSON text"


def test_unknown_test_layouts_name_their_fields():
    with pytest.raises(SpecError, match="fields judge, x"):
        spec_from_published({"judge": 1, "x": 2})
    with pytest.raises(SpecError, match="mixes stdin and functional"):
        spec_from_published(
            [{"input": "1", "output": "1"}, {"input": "1", "output": "1", "testtype": "functional"}]
        )


def test_synthetic_1_rows_answer_with_the_llm_response():
    record = dict(
        published("primeintellect")[0],
        llm_response="<think>\nsquare it\n</think>\n```python\nn = int(input())\nprint(n * n)\n```",
        score=1.0,
    )
    (row,) = convert("primeintellect", record)
    assert row["response"].startswith("<think>") and row["teacher"] == "DeepSeek-R1"
    assert row["meta"]["gold_standard_solution"].startswith("```python")
    judged = dict(
        record,
        task_type="llm_judgeable_groundtruth_similarity",
        verification_info=json.dumps({"ground_truth": "A long essay."}),
    )
    (row,) = convert("primeintellect", judged)
    assert "reference" not in row and row["meta"]["verification_info"]["ground_truth"] == "A long essay."


@pytest.mark.parametrize(
    ("truth", "reference", "alternatives"),
    [
        ("49", "49", None),
        (["6"], "6", None),
        ('["1/2", "0.5"]', "1/2", ["0.5"]),
        (7, "7", None),
        ("[1, 2]", "[1, 2]", None),
        ("[0, 1)", "[0, 1)", None),
    ],
)
def test_verl_math_ground_truth_variants(truth, reference, alternatives):
    record = dict(published("verl_rl")[0], reward_model={"ground_truth": truth, "style": "rule"})
    (row,) = convert("verl", record)
    assert row["reference"] == reference and row["meta"].get("reference_alternatives") == alternatives


def test_am_assert_case_without_fn_name_uses_the_called_function():
    spec = spec_from_published({"call_type": "assert", "fn_name": "", "assert_case": ["assert area(2) == 4"]})
    assert spec["entry_point"] == "area"


def test_codeforces_cots_messages_are_dropped_only_when_they_repeat_the_prompt_and_generation():
    record = published("codeforces_cots")[0]
    (row,) = convert("codeforces_cots", record)
    assert "messages" not in row["meta"]
    edited = dict(record, messages=[*record["messages"], {"role": "user", "content": "Explain."}])
    (row,) = convert("codeforces_cots", edited)
    assert row["meta"]["messages"] == edited["messages"], "a transcript that differs is kept"
    (from_messages,) = convert("codeforces_cots", dict(record, prompt=None, generation=None))
    assert (from_messages["problem"], from_messages["response"]) == (record["prompt"], record["generation"])


def test_a_trace_row_with_tests_is_a_trace_and_published_test_layouts_are_converted():
    row = {
        "problem": "Print the sum of two integers.",
        "response": "```python\nprint(sum(map(int, input().split())))\n```",
        "reasoning": "add",
        "teacher": "m",
        "tests": json.dumps([{"input": "1 2\n", "output": "3\n"}]),
    }
    assert detect_format([row]) == "prompt_response", "generate's output is not a DeepCoder prompt"
    (converted,) = convert("prompt_response", row)
    assert json.loads(converted["tests"]) == {"kind": "stdin", "cases": [{"input": "1 2\n", "output": "3\n"}]}
    spec = json.dumps({"kind": "stdin", "cases": [{"input": "", "output": ""}]})
    assert convert("prompt_response", dict(row, tests=spec))[0]["tests"] == spec, "a spec is kept as given"
