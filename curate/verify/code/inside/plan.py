"""Which calls a `check(candidate)` test will make first, so they can be queued before it runs."""

from __future__ import annotations

import functools


@functools.cache
def _ast():
    """`ast`, imported on first use: the zygote, forked before any test runs, does without it
    (every module it holds makes each runner's clone dearer)."""
    import ast

    return ast


@functools.cache
def _kinds() -> tuple[tuple, tuple]:
    """(plain statements, constructs that may skip or reorder the calls inside them)."""
    ast = _ast()
    unordered = (ast.BoolOp, ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
    unordered += (ast.Dict, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)
    return (ast.Assert, ast.Expr, ast.Assign, ast.Pass), unordered


def _post_order(node, children):
    for child in children(node):
        yield from _post_order(child, children)
    yield node


def planned_calls(source: str) -> list[tuple[list, dict]]:
    """The calls a `check(candidate)` test makes first, unconditionally and with literal arguments,
    in the order it makes them: they can be queued for the runner before the test even starts.
    (Almost every HumanEval/LeetCode test is such straight-line asserts.) The plan stops at the
    first statement that is not a plain assert/expression/assignment or whose calls might be
    skipped or reordered; a test that strays from it anyway only loses the head start."""
    ast = _ast()
    simple, unordered = _kinds()
    tree = ast.parse(source)
    check = next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None
    )
    if check is None or not check.args.args:
        return []
    target, calls = check.args.args[0].arg, []
    for statement in check.body:
        if not isinstance(statement, simple) or any(isinstance(n, unordered) for n in ast.walk(statement)):
            break
        if isinstance(statement, ast.Assign):
            if not all(isinstance(name, ast.Name) and name.id != target for name in statement.targets):
                break
            statement = statement.value  # evaluated before its targets
        for node in _post_order(statement, ast.iter_child_nodes):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == target:
                try:
                    args = [ast.literal_eval(arg) for arg in node.args]
                    kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return calls
                if None in kwargs:  # **mapping
                    return calls
                calls.append((args, kwargs))
    return calls
