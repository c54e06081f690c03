"""Ingest end to end: readers, bad input, the ledger, and the real shared files."""

from __future__ import annotations

import gzip
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import sql
from curate.errors import CurateError, InputError
from curate.pipeline import curate, load_config
from distill.cli import main
from tests.conftest import shared_file, write_jsonl

ROWS = [
    {"problem": "What is 1+1?", "solution": "\\boxed{2}", "answer": "2"},
    {"problem": "What is 2+2?", "solution": "\\boxed{4}", "answer": 4},
]


def counts(ws) -> dict:
    con = sql.connect(ws)
    traces, kept, rejected = (
        con.execute(f"select count(*) from {v}").fetchone()[0] for v in ("traces", "kept", "rejected")
    )
    assert traces == kept + rejected, "the ledger must balance"
    return {"traces": traces, "kept": kept, "rejected": rejected}


def test_every_reader_gives_the_same_rows(tmp_path):
    jsonl = write_jsonl(tmp_path / "a.jsonl", ROWS)
    (tmp_path / "b.json").write_text(json.dumps(ROWS))
    pq.write_table(
        pa.Table.from_pylist([{**r, "answer": str(r["answer"])} for r in ROWS]), tmp_path / "c.parquet"
    )
    (tmp_path / "d.csv").write_text(
        "problem,solution,answer\n"
        + "".join(f'"{r["problem"]}","{r["solution"]}",{r["answer"]}\n' for r in ROWS)
    )
    (tmp_path / "e.jsonl.gz").write_bytes(gzip.compress(jsonl.read_bytes()))
    (tmp_path / "f.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl.read_bytes()))
    datasets.Dataset.from_list([{**r, "answer": str(r["answer"])} for r in ROWS]).save_to_disk(
        str(tmp_path / "g_dataset")
    )
    inputs = [
        str(tmp_path / n)
        for n in ("a.jsonl", "b.json", "c.parquet", "d.csv", "e.jsonl.gz", "f.jsonl.zst", "g_dataset")
    ]
    curate(inputs, tmp_path / "ws", progress=False, until="normalize")
    con = sql.connect(tmp_path / "ws")
    per_source = con.execute(
        "select source, list(reference order by row_id) from traces group by 1 order by 1"
    ).fetchall()
    assert [s for s, _ in per_source] == ["a", "b", "c", "d", "e", "f", "g_dataset"]
    assert all(refs == ["2", "4"] for _, refs in per_source)
    # one content id per distinct sample, whatever the file format
    assert con.execute("select count(distinct id) from traces").fetchone()[0] == 2


def test_globs_and_folders_expand_in_sorted_order(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("b.jsonl", "a.jsonl"):
        write_jsonl(tmp_path / "in" / name, ROWS)
    curate([str(tmp_path / "in" / "*.jsonl")], tmp_path / "ws1", progress=False, until="normalize")
    curate([str(tmp_path / "in")], tmp_path / "ws2", progress=False, until="normalize")
    for ws in ("ws1", "ws2"):
        sources = sql.connect(tmp_path / ws).execute("select source from traces order by row_id").fetchall()
        assert [s for (s,) in sources] == ["a", "a", "b", "b"]


def test_bad_records_become_malformed_rows_and_curation_goes_on(tmp_path):
    good = json.dumps(ROWS[0]).encode()
    lines = [
        good,
        b'{"problem": "broken json",',  # broken JSON
        json.dumps({"problem": ["not", "a", "string"], "answer": "1"}).encode(),  # wrong type
        json.dumps({"answer": "no problem field", "problem": None}).encode(),  # missing problem
        b'{"problem": "bad utf8 \xff\xfe", "answer": "1"}',  # invalid UTF-8
        b"[1, 2, 3]",  # not an object
        json.dumps({"problem": "x" * (50 << 20), "answer": "big"}).encode(),  # a single 50 MB row
        good.replace(b"1+1", b"3+3"),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    curate([str(path)], tmp_path / "ws", progress=False, until="normalize")
    assert counts(tmp_path / "ws") == {"traces": 8, "kept": 3, "rejected": 5}
    con = sql.connect(tmp_path / "ws")
    rejected = con.execute("select reason, detail, meta from rejected order by row_id").fetchall()
    assert {r for r, _, _ in rejected} == {"malformed"}
    details = [d for _, d, _ in rejected]
    assert details[0].startswith(f"{path}:2: broken JSON")
    assert details[1] == f"{path}:3: field 'problem': expected a string, got list"
    assert "4: field 'problem': missing (expected one of problem, question" in details[2]
    assert "invalid UTF-8" in details[3] and ":5:" in details[3]
    assert "expected a JSON object" in details[4]
    assert json.loads(rejected[0][2])["raw"] == '{"problem": "broken json",'
    assert "\\xff" in json.loads(rejected[3][2])["raw"]  # the raw bytes are kept, escaped
    big = con.execute("select length(problem) from kept where reference = 'big'").fetchone()[0]
    assert big == 50 << 20


def test_file_level_problems_are_clear_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty.jsonl: the file is empty"):
        curate([str(tmp_path / "empty.jsonl")], tmp_path / "ws", progress=False, until="normalize")
    write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(InputError, match=r"odd.jsonl:1: unknown format: fields bar, foo; map your columns"):
        curate([str(tmp_path / "odd.jsonl")], tmp_path / "ws", progress=False, until="normalize")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown file type"):
        curate([str(tmp_path / "x.txt")], tmp_path / "ws", progress=False, until="normalize")
    with pytest.raises(InputError, match="no such file"):
        curate([str(tmp_path / "missing.jsonl")], tmp_path / "ws", progress=False, until="normalize")
    with pytest.raises(CurateError, match="unknown --format 'nope'"):
        curate(
            [str(tmp_path / "odd.jsonl")],
            tmp_path / "ws",
            {"format": "nope"},
            progress=False,
            until="normalize",
        )


def test_format_override_and_empty_problem_rejected_by_normalize(tmp_path):
    write_jsonl(
        tmp_path / "p.jsonl",
        [{"prompt": "Say hi", "response": "hi"}, {"prompt": "  \u200b ", "response": "x"}],
    )
    curate(
        [str(tmp_path / "p.jsonl")],
        tmp_path / "ws",
        {"format": "prompt_response"},
        progress=False,
        until="normalize",
    )
    assert counts(tmp_path / "ws") == {"traces": 2, "kept": 1, "rejected": 1}
    reason = sql.connect(tmp_path / "ws").execute("select stage, reason from rejected").fetchone()
    assert reason == ("normalize", "empty_problem")


def test_normalize_cleans_text_without_changing_it(tmp_path):
    write_jsonl(tmp_path / "p.jsonl", [{"prompt": " Cafe\u0301\r\nline\u200b2 ", "response": "a\r\nb"}])
    curate([str(tmp_path / "p.jsonl")], tmp_path / "ws", progress=False, until="normalize")
    problem, response = sql.connect(tmp_path / "ws").execute("select problem, response from kept").fetchone()
    assert problem == "Caf\u00e9\nline2" and response == "a\nb"


def test_shared_files_give_the_expected_row_counts(tmp_path):
    files = [
        shared_file("math/qwen_math_cot_100.jsonl"),
        shared_file("math/math500.jsonl"),
        shared_file("code/humaneval.jsonl"),
        shared_file("code/codeforces.jsonl"),
    ]
    curate([str(f) for f in files], tmp_path / "ws", progress=False, until="normalize")
    con = sql.connect(tmp_path / "ws")
    by_source = dict(con.execute("select source, count(*) from traces group by 1").fetchall())
    assert by_source == {"qwen_math_cot_100": 800, "math500": 500, "humaneval": 164, "codeforces": 408}
    assert counts(tmp_path / "ws")["traces"] == 1872
    # qwen: 8 samples per question share a problem_id; their labels travel in meta
    assert (
        con.execute(
            "select count(distinct problem_id) from traces where source = 'qwen_math_cot_100'"
        ).fetchone()[0]
        == 100
    )
    assert (
        con.execute(
            "select count(*) from traces where source='qwen_math_cot_100' and json_extract(meta, '$.score') is not null"
        ).fetchone()[0]
        == 800
    )
    assert (
        con.execute(
            "select count(*) from traces where source = 'codeforces' and tests like '{\"kind\": \"stdin\"%'"
        ).fetchone()[0]
        == 408
    )


@pytest.mark.parametrize(
    "relative",
    [
        "bench/aime24.jsonl",
        "bench/aime25.jsonl",
        "bench/amc23.jsonl",
        "bench/gsm8k_test.jsonl",
        "problems/aime_train.jsonl",
        "problems/math_train.jsonl",
    ],
)
def test_every_shared_problem_file_ingests_without_malformed_rows(tmp_path, relative):
    path = shared_file(relative)
    curate([str(path)], tmp_path / "ws", progress=False, until="normalize")
    lines = sum(1 for line in path.read_text().splitlines() if line.strip())
    con = sql.connect(tmp_path / "ws")
    assert con.execute("select count(*) from traces").fetchone()[0] == lines
    null_answers = sum(1 for line in path.read_text().splitlines() if '"answer": null' in line)
    assert con.execute("select count(*) from traces where reference is null").fetchone()[0] == null_answers
    assert con.execute("select count(*) from rejected where reason = 'malformed'").fetchone()[0] == 0


def test_source_is_the_input_and_the_record_tag_is_the_subset(tmp_path):
    rows = [{"problem": "1+1?", "answer": "2", "source": "olympiads"}, {"problem": "2+2?", "answer": "4"}]
    write_jsonl(tmp_path / "numina.jsonl", rows)
    curate([str(tmp_path / "numina.jsonl")], tmp_path / "ws", progress=False, until="normalize")
    got = (
        sql.connect(tmp_path / "ws")
        .execute("select source, subset, json_extract_string(meta, '$.source') from traces order by row_id")
        .fetchall()
    )
    assert got == [("numina", "olympiads", "olympiads"), ("numina", None, None)]
    curate(
        [str(tmp_path / "numina.jsonl")], tmp_path / "ws2", {"source": "mine"}, progress=False, until="ingest"
    )
    sources = sql.connect(tmp_path / "ws2").execute("select distinct source from traces").fetchall()
    assert sources == [("mine",)], "--source wins over the record's own tag"


def test_origins_are_one_based_lines_and_records(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    (tmp_path / "b.json").write_text(json.dumps(ROWS))
    curate(
        [str(tmp_path / "a.jsonl"), str(tmp_path / "b.json")], tmp_path / "ws", progress=False, until="ingest"
    )
    origins = [
        o
        for (o,) in sql.connect(tmp_path / "ws")
        .execute("select origin from traces order by row_id")
        .fetchall()
    ]
    assert origins == [
        f"{tmp_path}/a.jsonl:1",
        f"{tmp_path}/a.jsonl:2",
        f"{tmp_path}/b.json#1",
        f"{tmp_path}/b.json#2",
    ]


def test_a_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    datasets.Dataset.from_list([{**r, "answer": str(r["answer"])} for r in ROWS]).to_json(
        str(tmp_path / "x.json")
    )
    curate([str(tmp_path / "x.json")], tmp_path / "ws", progress=False, until="ingest")
    got = (
        sql.connect(tmp_path / "ws")
        .execute("select origin, reference from traces order by row_id")
        .fetchall()
    )
    assert got == [(f"{tmp_path}/x.json:1", "2"), (f"{tmp_path}/x.json:2", "4")]


def test_a_dataset_dict_gives_its_train_split_unless_told(tmp_path):
    train = [{"problem": f"train {i}?", "answer": str(i)} for i in range(3)]
    test = [{"problem": "test 0?", "answer": "0"}]
    folder = tmp_path / "dd"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)}
    ).save_to_disk(str(folder))

    def splits(ws):
        query = "select dataset_split, count(*), min(origin) from traces group by 1 order by 1"
        return sql.connect(ws).execute(query).fetchall()

    curate([str(folder)], tmp_path / "ws1", progress=False, until="ingest")
    assert splits(tmp_path / "ws1") == [("train", 3, f"{folder}[train]#1")]
    curate([f"{folder}:test"], tmp_path / "ws2", progress=False, until="ingest")
    assert splits(tmp_path / "ws2") == [("test", 1, f"{folder}[test]#1")]
    curate([str(folder)], tmp_path / "ws3", {"split": "all"}, progress=False, until="ingest")
    assert [(s, n) for s, n, _ in splits(tmp_path / "ws3")] == [("test", 1), ("train", 3)]
    with pytest.raises(InputError, match=r"no split 'validation' \(splits: train, test\)"):
        curate([f"{folder}:validation"], tmp_path / "ws4", progress=False, until="ingest")


def test_path_looking_names_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mistakes").mkdir()
    for name in ("mistakes/x.jsonl", "data/x.parquet", "mistakes/typo"):
        with pytest.raises(InputError, match=f"{name}: no such file or folder$"):
            curate([name], tmp_path / "ws", progress=False, until="ingest")


def test_unknown_format_lists_fields_closest_formats_and_how_to_map(tmp_path):
    write_jsonl(
        tmp_path / "odd.jsonl", [{"question_content": "Add.", "public_tests": "[]", "starter_code": ""}]
    )
    with pytest.raises(InputError) as error:
        curate([str(tmp_path / "odd.jsonl")], tmp_path / "ws", progress=False, until="ingest")
    message = str(error.value)
    assert "fields public_tests, question_content, starter_code" in message
    assert "closest formats: livecodebench" in message and "--map problem=" in message


def test_map_reads_a_question_answer_csv_from_the_command_line(tmp_path, capsys):
    (tmp_path / "qa.csv").write_text('Question,Answer\n"What is 6*7?",42\n"What is 2+2?",4\n')
    argv = ["curate", str(tmp_path / "qa.csv"), "--out", str(tmp_path / "ws"), "--quiet", "--until", "ingest"]
    assert main(argv) != 0
    error = capsys.readouterr().err
    assert "unknown format: fields Answer, Question; closest formats: problem_set" in error
    assert "--map problem=Question,reference=Answer" in error, "the hint names the mapping to use"
    assert main([*argv, "--map", "problem=Question,reference=Answer"]) == 0
    got = (
        sql.connect(tmp_path / "ws")
        .execute("select problem, reference from traces order by row_id")
        .fetchall()
    )
    assert got == [("What is 6*7?", "42"), ("What is 2+2?", "4")]


def test_per_input_map_in_the_config(tmp_path):
    (tmp_path / "qa.csv").write_text("input,target\nWhat is 1+2?,3\n")
    write_jsonl(tmp_path / "plain.jsonl", ROWS)
    config = tmp_path / "curate.yaml"
    config.write_text('map:\n  "*.csv": {problem: input, reference: target}\n')
    inputs = [str(tmp_path / "qa.csv"), str(tmp_path / "plain.jsonl")]
    curate(inputs, tmp_path / "ws", load_config(config), progress=False, until="ingest")
    got = (
        sql.connect(tmp_path / "ws")
        .execute("select source, reference from traces order by row_id")
        .fetchall()
    )
    assert got == [("qa", "3"), ("plain", "2"), ("plain", "4")]


def test_malformed_rows_carry_their_file_source(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps(ROWS[0]) + "\n{broken\n")
    curate([str(tmp_path / "m.jsonl")], tmp_path / "ws", progress=False, until="ingest")
    got = sql.connect(tmp_path / "ws").execute("select source, reason from rejected").fetchall()
    assert got == [("m", "malformed")]


def test_a_folder_of_split_named_files_gives_its_train_files(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "train-00000-of-00001.jsonl", ROWS)
    write_jsonl(tmp_path / "data" / "test-00000-of-00001.jsonl", [{"problem": "held out?", "answer": "1"}])
    curate([str(tmp_path / "data")], tmp_path / "ws", progress=False, until="ingest")
    got = sql.connect(tmp_path / "ws").execute("select distinct dataset_split from traces").fetchall()
    assert got == [("train",)]
    assert "test-00000-of-00001.jsonl: split 'test' left out" in capsys.readouterr().err
    curate([str(tmp_path / "data")], tmp_path / "ws2", {"split": "all"}, progress=False, until="ingest")
    query = "select dataset_split, count(*) from traces group by 1 order by 1"
    assert sql.connect(tmp_path / "ws2").execute(query).fetchall() == [("test", 1), ("train", 2)]
    named = str(tmp_path / "data" / "test-00000-of-00001.jsonl")
    curate([named], tmp_path / "ws3", progress=False, until="ingest")
    assert sql.connect(tmp_path / "ws3").execute(query).fetchall() == [("test", 1)], "a named file is read"


def test_a_fresh_ingest_takes_its_fingerprint_after_the_read_and_a_rerun_reuses_it(tmp_path):
    """Where nothing is committed, ingest's fingerprint (over the inputs' sha256, hashed while they
    are read) is taken after the run: the same as the one taken before a rerun, which reuses the
    stage; the stage pickles (the Ray engine ships it) with its checksums done."""
    import hashlib
    import pickle

    from curate.readers import resolve_inputs
    from curate.stage import stage_fingerprint
    from curate.stages.ingest import Ingest

    data = write_jsonl(tmp_path / "a.jsonl", ROWS)
    ws = tmp_path / "ws"
    first = curate([str(data)], ws, progress=False, until="ingest")
    stage = Ingest(resolve_inputs([str(data)]))
    assert first[0]["fingerprint"] == stage_fingerprint("", stage)
    assert first[0]["inputs"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert pickle.loads(pickle.dumps(stage)).checksums == stage.checksums
    again = curate([str(data)], ws, progress=False, until="ingest")
    assert again[0].get("reused") and again[0]["fingerprint"] == first[0]["fingerprint"]
    write_jsonl(data, ROWS[:1])
    changed = curate([str(data)], ws, progress=False, until="ingest")
    assert not changed[0].get("reused") and changed[0]["rows_in"] == 1
