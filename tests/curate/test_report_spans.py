"""Quality examples in the report mark the span a check fired on: the repeated n-gram of a loop,
the run of letters in a script the problem does not use."""

from __future__ import annotations

import json
import re
from html import unescape

from curate.pipeline import curate
from curate.report.examples import marked_span
from curate.stages.quality import offending_span

LOOP = "I add three and four to get seven, then I check the sum once more."
ROWS = [
    {"problem": "What is 3+4?", "response": f"<think>\n{' '.join([LOOP] * 30)}\n</think>\n\\boxed{{7}}"},
    {
        "problem": "What is 2+2?",
        "response": "<think>\nWe add 2 and 2. 所以答案是四。然后我们检查一下结果。 So it is four.\n</think>\n"
        "The answer is \\boxed{4}.",
    },
    {"problem": "What is 5+6?", "response": "<think>\nFive plus six is eleven.\n</think>\n\\boxed{11}"},
]


def examples(page: str, reason: str) -> list[str]:
    return re.findall(
        rf'<div class="example" data-stage="quality" data-reason="{reason}">(.*?)</div>\s*(?=<div class="example"|<h3|</section)',
        page,
        re.S,
    )


def marks(html: str) -> list[str]:
    return [unescape(re.sub(r"<[^>]+>", "", m)) for m in re.findall(r"<mark>(.*?)</mark>", html, re.S)]


def test_quality_examples_mark_the_repeated_ngram_and_the_foreign_run(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    curate([str(data)], tmp_path / "ws", progress=False, until="quality")
    page = (tmp_path / "ws" / "report" / "index.html").read_text()

    (loop,) = examples(page, "repetition")
    gram = " ".join(LOOP.split()[:10])  # the first of the loop's equally frequent 10-grams
    assert marks(loop) and set(marks(loop)) == {gram}, "every occurrence in the window is the n-gram"
    assert len(marks(loop)) >= 2 and f'<span data-field="span">{gram}</span>' in loop

    (mixed,) = examples(page, "language_mix")
    assert marks(mixed) == ["所以答案是四。然后我们检查一下结果"]
    assert "We add 2 and 2." in unescape(mixed), "the span is shown in its context"


def test_span_of_a_repeated_paragraph_and_none_for_other_reasons():
    paragraph = "This paragraph is long enough to be counted by the paragraph check."
    filler = [f"A different sentence number {i} keeps the n-gram ratio low." for i in range(60)]
    text = "\n\n".join([paragraph] * 5 + filler)
    assert offending_span("repetition", "Q?", text, {}) == paragraph
    assert offending_span("too_long", "Q?", text, {}) is None
    assert offending_span("repetition", "Q?", text, {"ngram": 3, "max_ngram_repeat": 0.01}) != paragraph


def test_marked_span_escapes_and_says_when_the_span_is_absent():
    html = marked_span("a <b> loop loop <b> end", "loop")
    assert html == "a &lt;b&gt; <mark>loop</mark> <mark>loop</mark> &lt;b&gt; end"
    assert marked_span("nothing here", "absent") == ""
