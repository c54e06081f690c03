"""LongRePS checks: answer correctness (EM, token F1), source faithfulness of quoted excerpts, the optional
consistency judge (a callable, or an OpenAI-compatible endpoint), and the best path per question."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

import sql
from curate.errors import CurateError
from curate.longctx.judge import JudgeError, OpenAIJudge, parse_score
from curate.longctx.longreps import (
    answer_scores,
    check_path,
    extract_answer,
    extract_quotes,
    match_normal,
    quote_in_context,
    token_f1,
)
from curate.pipeline import build_stages
from curate.stages.longreps import LongRePS
from tests.conftest import write_jsonl
from tests.curate.test_quality import assert_ledger_balances, run_pipeline


def long_context(seed: int, facts: list[str]) -> str:
    """About 30k characters of filler prose with `facts` spread through it."""
    rng = random.Random(seed)
    places = ["Arvel", "Brisk", "Corran", "Dunmor", "Elsby", "Fenwick", "Galt", "Harrow"]
    templates = [
        "The market in {a} opens at dawn and the traders from {b} arrive by noon.",
        "Rain fell on {a} for {n} days, and the river toward {b} rose above its banks.",
        "A survey counted {n} wells between {a} and {b}, most of them dry in summer.",
    ]
    sentences = [
        rng.choice(templates).format(a=rng.choice(places), b=rng.choice(places), n=rng.randrange(2, 90))
        for _ in range(400)
    ]
    for i, fact in enumerate(facts):
        sentences.insert((i + 1) * len(sentences) // (len(facts) + 1), fact)
    return " ".join(sentences)


CONTEXT_A = long_context(
    1,
    [
        "The capital of Zorbia is Quenton, a city built on seven hills.",
        "Quenton was founded by the weaver Ilsa Marr.",
    ],
)
CONTEXT_B = long_context(
    2, ["The bridge at Corran was opened in 1899 after a decade of work by the guild of masons."]
)


def question(context: str, text: str) -> str:
    return f"{context}\n\nQuestion: {text}"


# --- unit checks ------------------------------------------------------------------------------
def test_answer_correctness_exact_match_and_f1() -> None:
    assert answer_scores("The Quenton.", "quenton") == (True, 1.0)  # articles, case, punctuation
    assert token_f1("Quenton city", "Quenton") == pytest.approx(2 / 3)
    assert answer_scores("1899", '["1899", "eighteen ninety-nine"]') == (True, 1.0)
    assert answer_scores("eighteen ninety nine", '["1899", "eighteen ninety-nine"]')[0] is False
    assert answer_scores("Vellin", "Quenton") == (False, 0.0)


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("<think>long thoughts</think>\nSo the answer is \\boxed{Quenton}.", "Quenton"),
        ("Reasoning...\nAnswer: Quenton", "Quenton"),
        ("Reasoning...\nThe final answer is: **Quenton**.", "Quenton"),
        ("Reasoning...\nTherefore the answer is Quenton.", "Quenton"),
        ("First line\nQuenton", "Quenton"),
        ("<think>Answer: Vellin? no.</think>Quenton", "Quenton"),  # only what follows the reasoning
        ("<think>I cannot tell</think>\n", None),
        ("", None),
    ],
)
def test_extract_answer(response: str, answer: str | None) -> None:
    assert extract_answer(response) == answer


def test_extract_answer_with_a_pattern() -> None:
    assert extract_answer("... [[Quenton]] ... [[Vellin]]", pattern=r"\[\[(.+?)\]\]") == "Vellin"
    assert extract_answer("no brackets here", pattern=r"\[\[(.+?)\]\]") is None


def test_quotes_are_found_and_checked_against_the_context() -> None:
    text = 'As "the capital of Zorbia is Quenton" says, and <quote>founded by the weaver Ilsa Marr</quote>, “Quenton”.'
    assert extract_quotes(text) == ["the capital of Zorbia is Quenton", "founded by the weaver Ilsa Marr"]
    context = match_normal(CONTEXT_A)
    assert quote_in_context("THE capital of  Zorbia, is Quenton", context)  # case, commas, spaces
    assert quote_in_context("capital of Zorbia is Quenton ... seven hills", context)  # elided, in order
    assert not quote_in_context("seven hills ... capital of Zorbia", context)  # pieces out of order
    assert not quote_in_context("The capital of Zorbia is Vellin", context)  # fabricated
    assert not quote_in_context("capital of Zorbia is Quent", context)  # words match whole


def test_check_path_reports_the_first_failure() -> None:
    ok = check_path('Per "the capital of Zorbia is Quenton".\nAnswer: Quenton', "Quenton", CONTEXT_A)
    assert (ok.reason, ok.em, ok.f1, ok.quotes, ok.missing) == (None, True, 1.0, 1, 0)
    fake = check_path('Per "the capital of Zorbia is Vellin".\nAnswer: Quenton', "Quenton", CONTEXT_A)
    assert fake.reason == "unfaithful_quote" and "'the capital of Zorbia is Vellin'" in fake.detail
    wrong = check_path('Per "the capital of Zorbia is Quenton".\nAnswer: Vellin', "Quenton", CONTEXT_A)
    assert wrong.reason == "wrong_answer" and wrong.detail.startswith("F1 0.00 < 1 (EM 0)")
    lenient = check_path(
        '"the capital of Zorbia is Quenton"\nAnswer: Quenton city', "Quenton", CONTEXT_A, min_f1=0.5
    )
    assert lenient.reason is None and lenient.f1 == pytest.approx(2 / 3)


# --- the stage --------------------------------------------------------------------------------
QUOTE_1 = '"The capital of Zorbia is Quenton"'
QUOTE_2 = '"Quenton was founded by the weaver Ilsa Marr"'
PATHS_A = {
    "a1": f"<think>The document says {QUOTE_1}.</think>\nAnswer: Quenton",
    "a2": f"<think>It says {QUOTE_1}, and also {QUOTE_2}; both name Quenton.</think>\nAnswer: Quenton",
    "a3": '<think>It says "The capital of Zorbia was moved to Vellin in 1920" but Quenton is older.</think>\nAnswer: Quenton',
    "a4": f"<think>It says {QUOTE_1}, but I recall Vellin.</think>\nAnswer: Vellin",
    "a5": "<think>I remember this one well from reading it.</think>\nAnswer: Quenton",
    "a6": "<think>I cannot find it.</think>",
    "a7": "<think>Looking carefully, the text states “the capital of ZORBIA is  Quenton”, so there is no doubt at all.</think>\nAnswer: Quenton",
    "a8": f"<think>It says {QUOTE_1}.</think>\nAnswer: Quenton city",
}
PATHS_B = {
    "b1": '<think>"The bridge at Corran was opened ... by the guild of masons", in 1899.</think>\nThe answer is 1899.',
    "b2": '<think>"by the guild of masons ... The bridge at Corran was opened" in 1899.</think>\nThe answer is 1899.',
}


def stage_rows() -> list[dict]:
    rows = [
        {
            "problem": question(CONTEXT_A, "What is the capital of Zorbia?"),
            "response": r,
            "answer": "Quenton",
            "name": n,
        }
        for n, r in PATHS_A.items()
    ]
    rows += [
        {
            "problem": question(CONTEXT_B, "When was the bridge at Corran opened?"),
            "response": r,
            "answer": '["1899", "in 1899"]',
            "name": n,
        }
        for n, r in PATHS_B.items()
    ]
    rows += [
        {
            "problem": question(CONTEXT_B, "Who opened it?"),
            "response": f"{QUOTE_1}\nAnswer: masons",
            "name": "c1",
        }
    ]
    return rows


def outcome(ws) -> dict[str, tuple[str | None, str | None]]:
    """name -> (reason, detail) of each path, (None, None) when kept."""
    assert_ledger_balances(ws)
    con = sql.connect(ws.root)
    kept = con.sql("SELECT json_extract_string(meta, '$.name') AS name FROM kept").pl()
    rejected = con.sql(
        "SELECT json_extract_string(meta, '$.name') AS name, reason, detail FROM rejected"
    ).pl()
    return {**{n: (None, None) for n in kept["name"]}, **{n: (r, d) for n, r, d in rejected.iter_rows()}}


def test_stage_keeps_the_best_faithful_correct_path(tmp_path: Path) -> None:
    ws = run_pipeline(tmp_path, stage_rows(), [LongRePS()])
    result = outcome(ws)
    assert {name: reason for name, (reason, _) in result.items()} == {
        "a1": "not_best_path",
        "a2": None,  # two verified quotes: better grounded than a1 and a7 (one each)
        "a3": "unfaithful_quote",
        "a4": "wrong_answer",
        "a5": "no_evidence",
        "a6": "no_answer",
        "a7": "not_best_path",
        "a8": "wrong_answer",
        "b1": None,
        "b2": "unfaithful_quote",
        "c1": "no_reference",
    }
    con = sql.connect(ws.root)
    rows = con.sql("SELECT row_id, json_extract_string(meta, '$.name') AS name FROM traces").pl()
    best_a = rows.filter(pl.col("name") == "a2")["row_id"][0]
    assert result["a1"][1] == f"rank 2 of 3 valid paths; the best is row {best_a}"
    assert result["a7"][1] == f"rank 3 of 3 valid paths; the best is row {best_a}"  # same quotes, longer
    assert "Vellin in 1920" in result["a3"][1]
    kept = con.sql(
        "SELECT longreps_answer, longreps_em, longreps_f1, longreps_quotes, longreps_rank FROM kept ORDER BY row_id"
    ).pl()
    assert kept.rows() == [("Quenton", True, 1.0, 2, 1), ("1899", True, 1.0, 1, 1)]


def test_all_valid_paths_can_be_kept_with_their_rank(tmp_path: Path) -> None:
    ws = run_pipeline(tmp_path, stage_rows(), [LongRePS(best_only=False)])
    con = sql.connect(ws.root)
    ranks = con.sql(
        "SELECT json_extract_string(meta, '$.name') AS name, longreps_rank FROM kept ORDER BY name"
    ).pl()
    # a1 and a7 tie on judge, F1, EM and quotes: the shorter reasoning (a1) ranks first
    assert ranks.rows() == [("a1", 2), ("a2", 1), ("a7", 3), ("b1", 1)]


def test_judge_callable_scores_consistency_and_picks_the_best(tmp_path: Path) -> None:
    scores = {"both name Quenton": 0.3, "no doubt at all": 0.95, "The document says": 0.9}

    def judge(problem: str, reasoning: str, answer: str) -> float:
        assert problem.endswith("?") and answer in {"Quenton", "1899"}
        if "bridge" in reasoning:
            raise TimeoutError("judge is down")
        return next(score for marker, score in scores.items() if marker in reasoning)

    ws = run_pipeline(tmp_path, stage_rows(), [LongRePS(judge=judge, judge_threshold=0.5)])
    result = outcome(ws)
    assert result["a2"] == ("inconsistent_reasoning", "judge score 0.30 < 0.5")
    assert result["a7"] == (None, None)  # the judge's favourite wins over fewer words
    assert result["a1"][0] == "not_best_path"
    assert result["b1"] == ("judge_error", "TimeoutError: judge is down")
    judged = sql.connect(ws.root).sql("SELECT longreps_judge FROM kept").pl()["longreps_judge"].to_list()
    assert judged == [0.95]


class ChatServer:
    """An OpenAI-compatible /v1/chat/completions endpoint on localhost that rates every path 8/10,
    and 2/10 when the reasoning mentions "both name"."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, body, self.headers.get("Authorization")))
                prompt = body["messages"][0]["content"]
                reply = {"choices": [{"message": {"content": "2" if "both name" in prompt else "8"}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


def test_judge_through_an_openai_compatible_endpoint(
    tmp_path: Path, chat_server: ChatServer, monkeypatch
) -> None:
    monkeypatch.setenv("LONGREPS_TEST_KEY", "secret")
    stage = LongRePS(
        judge_url=chat_server.url, judge_model="tiny-judge", judge_api_key_env="LONGREPS_TEST_KEY"
    )
    result = outcome(run_pipeline(tmp_path, stage_rows(), [stage]))
    assert result["a2"] == ("inconsistent_reasoning", "judge score 0.20 < 0.7")
    assert result["a1"] == (None, None)  # a1 and a7 both 0.8: shorter reasoning
    assert len(chat_server.requests) == 4  # only the paths that passed the other checks: a1, a2, a7, b1
    assert {(path, body["model"], auth) for path, body, auth in chat_server.requests} == {
        ("/v1/chat/completions", "tiny-judge", "Bearer secret")
    }
    prompts = [body["messages"][0]["content"] for _, body, _ in chat_server.requests]
    assert sum("Question: What is the capital of Zorbia?" in p for p in prompts) == 3


def test_judge_errors_and_scores(chat_server: ChatServer) -> None:
    assert parse_score("Rating: 7") == 0.7 and parse_score("12") == 1.0
    with pytest.raises(JudgeError):
        parse_score("consistent")
    dead = OpenAIJudge("http://127.0.0.1:9/v1", "m", api_key_env=None, timeout_s=2)
    with pytest.raises(JudgeError, match="judge at http://127.0.0.1:9/v1/chat/completions"):
        dead("q", "r", "a")
    assert OpenAIJudge(chat_server.url, "m", api_key_env=None)("q?", "r", "a") == 0.8


def test_stage_is_opt_in_and_validates_options(tmp_path: Path) -> None:
    data = str(write_jsonl(tmp_path / "rows.jsonl", [{"problem": "p", "response": "r"}]))
    assert "longreps" not in [s.name for s in build_stages([data], {})]
    assert "longreps" in [s.name for s in build_stages([data], {"stages": {"longreps": {"enabled": True}}})]
    with pytest.raises(CurateError, match="judge_url needs judge_model"):
        LongRePS(judge_url="http://localhost:8000/v1")
    with pytest.raises(CurateError, match="unknown field"):
        LongRePS(context="body")
    with pytest.raises(CurateError, match="answer_pattern is not a regex"):
        LongRePS(answer_pattern="([unclosed")
    assert LongRePS().fingerprint() != LongRePS(judge=lambda p, r, a: 1.0).fingerprint()


def test_reruns_are_byte_identical(tmp_path: Path) -> None:
    data, outputs = str(write_jsonl(tmp_path / "paths.jsonl", stage_rows())), []
    for attempt in ("a", "b"):
        ws = run_pipeline(tmp_path / attempt, [data], [LongRePS()])
        files = sorted(p for p in ws.root.rglob("*.parquet"))
        outputs.append({p.relative_to(ws.root): p.read_bytes() for p in files})
    assert outputs[0] == outputs[1] and any("longreps" in str(p) for p in outputs[0])
