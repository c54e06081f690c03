"""The built-in synthetic teacher corpus of `distillery demo`: R1-style traces for small math,
code and science problems, with planted defects and the truth about each row.

Everything is generated from a seed, so the same config always writes the same bytes:

    traces.jsonl        chat rows (user prompt, assistant `<think>` trace) with reference/tests,
                        domain and a unique `key`; `distillery curate` reads it as is
    truth.jsonl         one line per trace row: key, domain, family, defect (null when clean),
                        variant, and for duplicates the key of the row they copy (`of`)
    eval/<domain>.jsonl held-out problems per domain for `distillery eval --bench`; they are also
                        the benchmark the decontaminate stage should check against
    val/<domain>.jsonl  with `val_<domain>` sizes: more held-out problems, drawn alternately with
                        the eval problems (so both have one mix of families), for a merge search's
                        validation (never the eval sets)

Planted defects (each an extra row; clean rows are never modified):

    wrong_answer      a wrong final answer, a buggy function, a wrong option   -> verify
    exact_duplicate   a byte-identical copy of a clean row                     -> exact_dedup
    near_duplicate    a clean row's trace under the same problem with a lead-in
                      ("Warm-up: ...") as a second source would write it       -> near_dedup
    contaminated      an eval problem with a correct trace                     -> decontaminate
    truncated         the trace stops inside <think>, or after it with no
                      final answer / inside the code block                     -> verify, or quality
                      (a cut science answer whose <think> names the option passes verify; quality
                      with `require_final_answer: true` drops it)
    malicious_code    code that games the tests: sys.exit(0) before the
                      asserts, os._exit(0) in the function, an object equal to
                      everything, a (bounded, 2**5 processes) fork bomb        -> verify

The problems are small on purpose, and so are the traces: one-digit arithmetic in words with a
one-line `<think>` ("We add: 6 + 4 = 10."), one-line Python functions whose name and argument a
student copies from the prompt along with the constants and operators, element symbols, and science
questions with a number for an answer (unit conversions, distance from speed and time). What a tiny
student has to learn is the answer format and a small table of arithmetic facts and code patterns,
which a two-layer model can start to do in a few hundred CPU steps.

The package:

    config.py            domains, defect types, which stage catches each, CorpusConfig (sizes)
    task.py              Task (a problem and its trace) and the trace format
    math_tasks.py, code_tasks.py, science_tasks.py   the problem generators; families.py: their mix
    defects.py           the planted rewrites (near-copy, cut trace, malicious code)
    distinct.py          drawing problems the stages tell apart (curate's own normalisation,
                         shingles, Jaccard and n-grams, with a margin)
    build.py             build_corpus / write_corpus
    scoring.py           score_curation: a curation run against the truth
"""

from distill.demo.corpus.build import Corpus, CorpusFiles, build_corpus, write_corpus
from distill.demo.corpus.config import CATCHERS, DEFECT_DOMAINS, DEFECTS, DOMAINS, CorpusConfig
from distill.demo.corpus.families import FAMILIES
from distill.demo.corpus.scoring import dropped_from_workspace, read_truth, score_curation
from distill.demo.corpus.task import Task

__all__ = [
    "CATCHERS",
    "DEFECTS",
    "DEFECT_DOMAINS",
    "DOMAINS",
    "FAMILIES",
    "Corpus",
    "CorpusConfig",
    "CorpusFiles",
    "Task",
    "build_corpus",
    "dropped_from_workspace",
    "read_truth",
    "score_curation",
    "write_corpus",
]
