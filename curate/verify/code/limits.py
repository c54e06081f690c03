"""Default limits of one verification run (constants only: the CLI reads them at start-up)."""

DEFAULT_TIME_LIMIT_S = 4.0  # per stdin/call case; for an assert test, the whole test
DEFAULT_MEMORY_MB = 1024  # address space of each process of a run
DEFAULT_MAX_PROCESSES = 8  # processes and threads of a run, the runner included
FILE_MB = 16  # largest file a run may write
OPEN_FILES = 256
TMP_MB = 64  # size of a run's private /tmp
OUTPUT_MB = 16  # stdout (and stderr) a program may print before it is stopped
JUDGE_TIME_S = 10.0  # a checker per case; an interactor, after the solution has ended
JUDGE_MEMORY_MB = 2048  # address space of a checker or interactor
