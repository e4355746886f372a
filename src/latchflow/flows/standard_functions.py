"""The JMESPath built-in functions, refusing before they build more than the budget allows.

Each built-in that builds a string or an array keeps its name and meaning, and first works out
the size of what it would build: a result larger than the per-value limit is refused before
anything is allocated. The built-ins that return a number, a boolean or one of their arguments
are JMESPath's own.
"""

from __future__ import annotations

from typing import Any

from jmespath.functions import Functions, signature

from latchflow.flows.budget import Budget
from latchflow.plugin.errors import ExpressionError

__all__ = ["BoundedFunctions"]

#: The built-ins as JMESPath has them.
_JMESPATH: dict[str, dict[str, Any]] = Functions.FUNCTION_TABLE


class BoundedFunctions(Functions):
    """JMESPath's built-ins, measured against one evaluation's budget."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    @signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, str):
            return arg
        try:
            text = self.budget.text(arg, self.budget.limit, ascii=True)
        except TypeError:  # JMESPath would write the object's repr (and its address)
            raise ExpressionError("to_string(): an &expression cannot be written as text") from None
        if text is None:
            self.budget.refuse("to_string", self.budget.limit + 1)
        return text or ""

    @signature({"types": []})
    def _func_to_array(self, arg: Any) -> list[Any]:
        if isinstance(arg, list):
            return arg
        size = 1 + self.budget.size(arg)
        self.budget.refuse("to_array", size)
        return self.budget.measured([arg], size)

    @signature({"types": ["array", "string"]})
    def _func_reverse(self, arg: list[Any] | str) -> list[Any] | str:
        size = self.budget.size(arg)
        self.budget.refuse("reverse", size)
        return self.budget.measured(arg[::-1], size)

    @signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator: str, array: list[str]) -> str:
        length = sum(map(len, array)) + len(separator) * max(len(array) - 1, 0)
        self.budget.refuse("join", length)
        return separator.join(array)

    @signature({"types": ["array-string", "array-number"]})
    def _func_sort(self, arg: list[Any]) -> list[Any]:
        size = self.budget.size(arg)
        self.budget.refuse("sort", size)
        return self.budget.measured(sorted(arg), size)

    @signature({"types": ["array"]}, {"types": ["expref"]})
    def _func_sort_by(self, array: list[Any], expref: Any) -> list[Any]:
        size = self.budget.size(array)
        self.budget.refuse("sort_by", size)
        result: list[Any] = _JMESPATH["sort_by"]["function"](self, array, expref)
        return self.budget.measured(result, size)

    @signature({"types": ["object"]})
    def _func_keys(self, arg: dict[str, Any]) -> list[str]:
        size = 1 + sum(map(len, arg)) + ("" in arg)  # an empty string counts one
        self.budget.refuse("keys", size)
        return self.budget.measured(list(arg), size)

    @signature({"types": ["object"]})
    def _func_values(self, arg: dict[str, Any]) -> list[Any]:
        keys = sum(map(len, arg))
        size = self.budget.size(arg, self.budget.limit + keys) - keys
        self.budget.refuse("values", size)
        return self.budget.measured(list(arg.values()), size)

    @signature({"types": ["object"], "variadic": True})
    def _func_merge(self, *arguments: dict[str, Any]) -> dict[str, Any]:
        bound = 1 + sum(self.budget.size(a) - 1 for a in arguments)
        if bound > self.budget.limit:  # keys may repeat: add up the entries that stay
            size, seen = 1, set()
            for argument in reversed(arguments):
                for key, value in argument.items():
                    if key not in seen:
                        seen.add(key)
                        size += len(key) + self.budget.size(value, self.budget.limit - size)
                        self.budget.refuse("merge", size)
        merged: dict[str, Any] = {}
        for argument in arguments:
            merged.update(argument)
        return merged

    @signature({"types": ["expref"]}, {"types": ["array"]})
    def _func_map(self, expref: Any, arg: list[Any]) -> list[Any]:
        result: list[Any] = []
        size = 1
        for element in arg:
            value = expref.visit(expref.expression, element)
            size += self.budget.size(value, self.budget.limit - size)
            self.budget.refuse("map", size)
            result.append(value)
        return self.budget.measured(result, size)
