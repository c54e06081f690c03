"""`distillery verify math --input F --out G`: same rows out, in order, with status/extracted/detail."""

import json

import pytest

from distill.cli import main


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rows_come_back_in_order_with_verdicts(tmp_path, capsys):
    rows = [
        {"id": "a", "response": "So $\\boxed{\\frac{1}{2}}$.", "reference": "0.5", "extra": [1, 2]},
        {"id": "b", "response": "Answer: 3", "reference": "4"},
        {"id": "c", "response": "no idea", "reference": "4"},
        {"id": "d", "response": "\\boxed{1}"},  # no reference field
        {"id": "e", "reference": "1"},  # no response field
        {"id": "f", "response": "\\boxed{1}", "reference": "\\frac{1}{"},
        {"id": "g", "response": "\\boxed{12}", "reference": 12},  # numbers are fine
        {"id": "h", "response": "ünïcode \\boxed{6 - 5i}", "reference": "6-5i"},
    ]
    source, out = tmp_path / "in.jsonl", tmp_path / "sub" / "out.jsonl"
    write_lines(source, [json.dumps(r, ensure_ascii=False) for r in rows] + [""])
    assert main(["verify", "math", "--input", str(source), "--out", str(out), "--workers", "2"]) == 0
    got = read_rows(out)
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert [r["status"] for r in got] == [
        "pass", "fail", "no_answer", "no_reference", "no_answer", "invalid_reference", "pass", "pass",
    ]  # fmt: skip
    assert got[0]["extracted"] == "\\frac{1}{2}" and got[0]["extra"] == [1, 2]
    assert got[1]["extracted"] == "3" and got[1]["detail"]
    assert got[2]["extracted"] is None
    assert got[7]["response"].startswith("ünïcode")
    summary = capsys.readouterr().out
    assert "pass" in summary and "total" in summary and "8" in summary


def test_other_field_names(tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [json.dumps({"code": "\\boxed{420}", "gt": "420"})])
    args = ["verify", "math", "--input", str(source), "--out", str(out), "--workers", "1"]
    assert main(args + ["--response-field", "code", "--reference-field", "gt"]) == 0
    assert read_rows(out)[0]["status"] == "pass"


@pytest.mark.parametrize(
    "answers, statuses",
    [
        (None, ["pass", "pass", "pass"]),  # auto: a box, a bare answer, the number a short sentence states
        ("trace", ["pass", "no_answer", "no_answer"]),
        ("bare", ["pass", "pass", "fail"]),
    ],
)
def test_answers_option_says_how_responses_hold_their_answer(tmp_path, answers, statuses):
    rows = [
        {"response": "<think>3?</think> so \\boxed{1,250}", "reference": "1250"},
        {"response": "1,250", "reference": "1250"},
        {"response": "The total is 1,250.", "reference": "1250"},
    ]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, [json.dumps(r) for r in rows])
    args = ["verify", "math", "--input", str(source), "--out", str(out), "--workers", "1"]
    assert main(args + (["--answers", answers] if answers else [])) == 0
    assert [r["status"] for r in read_rows(out)] == statuses


@pytest.mark.parametrize(
    "lines, message",
    [
        (
            ['{"response": "\\\\boxed{1}", "reference": "1"}', '{"response": broken'],
            "in.jsonl:2: not valid JSON",
        ),
        (['{"response": "x", "reference": "1"}', "", "[1, 2]"], "in.jsonl:3: expected a JSON object"),
    ],
)
def test_bad_lines_are_errors_naming_file_and_line(tmp_path, capsys, lines, message):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, lines)
    assert main(["verify", "math", "--input", str(source), "--out", str(out), "--workers", "1"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing half-written
    assert list(tmp_path.glob(".*.tmp")) == []


def test_missing_input_file(tmp_path, capsys):
    assert (
        main(["verify", "math", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert "nope.jsonl: cannot read" in capsys.readouterr().err
