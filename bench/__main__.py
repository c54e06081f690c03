"""`make bench`: run every side-by-side benchmark in turn (each is also runnable on its own).

.venv-bench/bin/python -m bench            # all
.venv-bench/bin/python -m bench ingest     # those whose file name contains "ingest"
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    wanted = sys.argv[1:]
    scripts = sorted(p for p in HERE.glob("*_bench.py") if not wanted or any(w in p.stem for w in wanted))
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
