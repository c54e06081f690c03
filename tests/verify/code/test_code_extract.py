"""Taking the code out of a response: the last fenced block of the language, then the fallbacks."""

from __future__ import annotations

from curate.verify.code.extract import extract_code, fenced_blocks


def test_last_python_block_wins():
    response = (
        "First try:\n```python\ndef f():\n    return 1\n```\nBetter:\n```py\ndef f():\n    return 2\n```\n"
    )
    assert extract_code(response) == "def f():\n    return 2\n"


def test_answer_after_think_is_preferred_over_drafts_in_the_reasoning():
    response = (
        "<think>Draft:\n```python\ndef f():\n    return 0\n```\nhmm</think>\n"
        "Final answer:\n```python\ndef f():\n    return 1\n```"
    )
    assert extract_code(response) == "def f():\n    return 1\n"


def test_reasoning_is_searched_when_the_answer_has_no_code():
    response = "<think>```python\nprint(1)\n```</think>The program above prints 1."
    assert extract_code(response) == "print(1)\n"


def test_other_languages_are_skipped_and_can_be_asked_for():
    response = "```python\nprint(1)\n```\n```cpp\nint main() { return 0; }\n```\n"
    assert extract_code(response) == "print(1)\n"
    assert extract_code(response, language="cpp") == "int main() { return 0; }\n"


def test_block_defining_the_entry_point_beats_a_later_usage_example():
    response = "```python\ndef solve(x):\n    return x * 2\n```\nUsage:\n```python\nprint(solve(3))\n```"
    assert extract_code(response, entry_point="solve") == "def solve(x):\n    return x * 2\n"
    assert extract_code(response) == "print(solve(3))\n"  # without the hint: the last block
    leetcode = "```python\nclass Solution:\n    def maxArea(self, h):\n        return 0\n```\n```python\nprint(1)\n```"
    assert extract_code(leetcode, entry_point="Solution().maxArea").startswith("class Solution")


def test_untagged_block_is_used_only_when_it_parses():
    assert extract_code("```\nx = 1\nprint(x)\n```") == "x = 1\nprint(x)\n"
    assert extract_code("```\nThis is not code at all, just prose.\n```") is None


def test_unclosed_final_fence_of_a_truncated_response():
    assert extract_code("Here it is:\n```python\ndef f():\n    return 3\n") == "def f():\n    return 3\n"


def test_bare_code_without_fences_is_taken_when_it_parses():
    assert extract_code("import sys\nprint(sys.stdin.read())") == "import sys\nprint(sys.stdin.read())\n"
    assert extract_code("The answer is 42.") is None


def test_no_code_means_none():
    assert extract_code(None) is None
    assert extract_code("") is None
    assert extract_code("<think>hmm</think>I cannot solve this.") is None


def test_fences_of_any_length_and_tildes():
    blocks = fenced_blocks("````python\nprint('```')\n````\n~~~py\nprint(2)\n~~~\n")
    assert [(b.language, b.body, b.closed) for b in blocks] == [
        ("python", "print('```')\n", True),
        ("py", "print(2)\n", True),
    ]
