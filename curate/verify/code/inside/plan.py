"""Which calls a `check(candidate)` test will make first, so they can be queued before it runs."""

from __future__ import annotations

import ast

_SIMPLE_STATEMENTS = (ast.Assert, ast.Expr, ast.Assign, ast.Pass)
# Constructs that may skip or reorder the calls inside them.
_UNORDERED = (ast.BoolOp, ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
_UNORDERED += (ast.Dict, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)


def _post_order(node: ast.AST):
    for child in ast.iter_child_nodes(node):
        yield from _post_order(child)
    yield node


def planned_calls(source: str) -> list[tuple[list, dict]]:
    """The calls a `check(candidate)` test makes first, unconditionally and with literal arguments,
    in the order it makes them: they can be queued for the runner before the test even starts.
    (Almost every HumanEval/LeetCode test is such straight-line asserts.) The plan stops at the
    first statement that is not a plain assert/expression/assignment or whose calls might be
    skipped or reordered; a test that strays from it anyway only loses the head start."""
    tree = ast.parse(source)
    check = next(
        (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"), None
    )
    if check is None or not check.args.args:
        return []
    target, calls = check.args.args[0].arg, []
    for statement in check.body:
        if not isinstance(statement, _SIMPLE_STATEMENTS) or any(
            isinstance(n, _UNORDERED) for n in ast.walk(statement)
        ):
            break
        if isinstance(statement, ast.Assign):
            if not all(isinstance(name, ast.Name) and name.id != target for name in statement.targets):
                break
            statement = statement.value  # evaluated before its targets
        for node in _post_order(statement):
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
