"""Evaluating a parsed expression: JMESPath's interpreter, held to a ``Budget``.

Every value a node builds is accounted for, the clock is looked at every few nodes and after every
function call and comparison, and every failure becomes an ``ExpressionError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import jmespath.exceptions
from jmespath.visitor import Options, TreeInterpreter

from latchflow.flows.budget import Budget
from latchflow.flows.functions import LatchflowFunctions
from latchflow.flows.values import show
from latchflow.plugin.errors import ExpressionError

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode

__all__ = ["Interpreter", "one_line"]

# Node types whose result is a value built by the expression (not a part of the scope); function
# results are accounted for in visit_function_expression.
_BUILDING = frozenset(
    {
        "multi_select_list",
        "multi_select_dict",
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "slice",
    }
)
#: Node visits between two looks at the clock (function calls and comparisons look every time).
_LOOK_EVERY = 16


def one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _type_message(exc: jmespath.exceptions.JMESPathTypeError) -> str:
    expected = " or ".join(str(t) for t in exc.expected_types)
    return (
        f"{exc.function_name}(): invalid type for value {show(exc.current_value)}:"
        f" expected {expected}, received {exc.actual_type}"
    )


class Interpreter(TreeInterpreter):
    """JMESPath's interpreter, measuring every value it builds and watching the clock."""

    def __init__(self, budget: Budget) -> None:
        self._library = LatchflowFunctions(budget)
        super().__init__(Options(custom_functions=self._library))
        self._budget = budget
        self._countdown = _LOOK_EVERY

    def run(self, tree: dict[str, Any], data: Any) -> tuple[Any, int]:
        """The value of a parsed expression over ``data``, checked to be JSON, and its size."""
        try:
            result = self.visit(cast("_TreeNode", tree), data)
        except ExpressionError:
            raise
        except jmespath.exceptions.JMESPathTypeError as exc:
            raise ExpressionError(_type_message(exc)) from None
        except jmespath.exceptions.JMESPathError as exc:
            raise ExpressionError(one_line(str(exc))) from None
        except RecursionError:
            raise ExpressionError("the expression nests too deeply to evaluate") from None
        except MemoryError:
            raise ExpressionError("the expression needs too much memory") from None
        except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
            raise ExpressionError(
                f"cannot evaluate: {one_line(str(exc))[:200] or type(exc).__name__}"
            ) from None
        except Exception as exc:  # any other failure is still the expression's
            raise ExpressionError(f"cannot evaluate: {type(exc).__name__}: {exc}") from None
        return result, self._budget.check_result(result)

    def visit(self, node: _TreeNode, *args: Any, **kwargs: Any) -> Any:
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = _LOOK_EVERY
            self._budget.look()
        result = super().visit(node, *args, **kwargs)
        if node["type"] in _BUILDING and isinstance(result, list | dict):
            self._budget.check(result)
        return result

    def visit_function_expression(self, node: _TreeNode, value: Any) -> Any:
        arguments = [self.visit(child, value) for child in node["children"]]
        result = self._library.call_function(node["value"], arguments)
        self._budget.look()
        if isinstance(result, list | dict | str) and not any(result is a for a in arguments):
            self._budget.check(result)
        return result

    def visit_comparator(self, node: _TreeNode, value: Any) -> Any:
        result = super().visit_comparator(node, value)
        self._budget.look()
        return result
