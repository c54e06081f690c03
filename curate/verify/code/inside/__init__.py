"""The part of the code verifier that runs inside the sandbox. Standard library only.

The host ships these modules to the worker's interpreter as one archive on its stdin (see
sandbox.py), so the sandbox needs no view of the repository and nothing here may import
distillery; modules import each other relatively. The host itself imports only `framing`.
Three roles:

supervisor  one per worker, long-lived. Reads tasks from the host (fd 0), keeps the tests and the
            expected answers, decides every verdict and writes it back (fd 1).
zygote      forked by the supervisor before it has read any task. For each run it clones one fresh
            runner, so a sample pays a fork instead of an interpreter start and inherits nothing
            the supervisor knows.
runner      one per run (one per stdin case, one per call/assert sample). It starts in its own user,
            PID, mount and IPC namespaces with a fresh /tmp, lowers its resource limits, drops every
            capability and executes the solution. It only ever reports *values* (what a function
            returned, what a program printed); it is never asked whether it passed. A trusted
            judge program (a checker or an interactor, see judges.py) runs in a runner of its
            own too, never in the solution's: for an interactive problem the two are wired
            stdin to stdout, and the supervisor reads the judge's exit code.

A runner is PID 1 of its namespace and a child of the supervisor, which it cannot see: it cannot
signal it, trace it or read its memory. When the runner ends or is killed, every process it
started dies with it (the kernel empties a PID namespace whose init exits). A stdin program runs
in a child of the runner, so that it dies of its own signals as it would anywhere.

Costs that shape the code: a sample is a fork of the zygote, and in a VM each copy-on-write page
fault after a fork costs several microseconds, so the zygote is kept small and warm (see
zygote.zygote_main); a wake-up on another CPU costs far more than on the same one, so a worker's
processes share a CPU, and calls a test will make are queued before it runs (plan.planned_calls).

Modules, in the order they are loaded in the sandbox (each imports only those before it):

syscalls    ctypes bindings: mount, clone with namespaces, prctl, capabilities, pivot_root
framing     length-prefixed JSON messages (the host's only import)
values      the value codec between runner and supervisor (exact builtin types, else references)
compare     return-value and program-output comparison
runner      a run's body: namespaces, private /tmp, limits, executing the solution
zygote      clones runners; warmed up and frozen to make each clone cheap
remote      the test's proxies of the solution's values (Session, Remote)
plan        the calls a test will make first, queued before it runs
pytest_compat  the part of pytest that `pytest` specs use (raises, approx, parametrize, fixtures)
supervisor  the task loop: stdin, call and assert tests, every verdict
root        the read-only root that `unshare` mode builds for itself
main        start-up: root, privileges, zygote, probe, then the task loop
"""

MODULES = (
    "syscalls", "framing", "values", "compare", "runner", "zygote",
    "remote", "plan", "pytest_compat", "supervisor", "root", "main",
)  # fmt: skip
