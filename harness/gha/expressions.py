"""GitHub's `${{ }}` expression language, as documented ("Evaluate expressions in workflows and
actions" on docs.github.com): literals, property access (case-insensitive; `*` filters), index,
`!`, comparisons, `==`/`!=` with loose typing, `&&`/`||` returning an operand, and the documented
functions, hashFiles included. Values are Python's None, bool, int or float, str, list and dict.
Also the places a workflow uses them: text with `${{ }}` in it, a boolean setting, an `if:`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

GITHUB_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)

_TOKEN = re.compile(
    r"""(?P<space>\s+)"""
    r"""|(?P<string>'(?:[^']|'')*')"""
    r"""|(?P<number>-?(?:0x[0-9a-fA-F]+|0o[0-7]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))"""
    r"""|(?P<operator>&&|\|\||==|!=|<=|>=|[<>!()\[\],.*])"""
    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"""
)
_CONTEXTS = {
    "github",
    "env",
    "vars",
    "secrets",
    "inputs",
    "steps",
    "needs",
    "runner",
    "job",
    "jobs",
    "matrix",
    "strategy",
}


class ExpressionError(ValueError):
    pass


class _Filtered(list):
    """The result of an object filter (`x.*`): a further `.name` applies to each element."""


def _number(value: Any) -> float:
    """A value as GitHub casts it to a number: null 0, booleans 1 and 0, strings parsed as a JSON
    number (also hex, octal; '' is 0), anything else NaN."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            return _parse_number(text)
        except ValueError:
            return math.nan
    return math.nan


def _parse_number(text: str) -> float:
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    lowered = digits.lower()
    if lowered.startswith("0x"):
        return sign * int(digits[2:], 16)
    if lowered.startswith("0o"):
        return sign * int(digits[2:], 8)
    if lowered in {"infinity", "nan"}:
        return sign * float(lowered)
    if not re.fullmatch(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", digits):
        raise ValueError(text)
    number = float(digits)
    return sign * (int(number) if number.is_integer() and abs(number) < 2**53 else number)


def _string(value: Any) -> str:
    """A value as GitHub casts it to a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, str):
        return value
    return "Array" if isinstance(value, list) else "Object"


def _truthy(value: Any) -> bool:
    """Falsy: false, 0, -0, '', null (and NaN); arrays and objects are truthy, even empty."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fold(text: str) -> str:
    """Strings compare ignoring case, as in upper case ('a' < '[' as 'A' < '[' does)."""
    return text.upper()


def _equal(left: Any, right: Any) -> bool:
    kind = _kind(left)
    if kind != _kind(right):
        return _number(left) == _number(right)  # NaN equals nothing
    if kind == "string":
        return _fold(left) == _fold(right)
    if kind in {"array", "object"}:
        return left is right  # only the same instance
    return left == right


def _less(left: Any, right: Any) -> bool | None:
    """left < right as GitHub compares; None when the values do not compare (NaN, objects)."""
    kind = _kind(left)
    if kind == _kind(right) == "string":
        return _fold(left) < _fold(right)
    if kind in {"array", "object"} or _kind(right) in {"array", "object"}:
        return None
    a, b = _number(left), _number(right)
    return None if math.isnan(a) or math.isnan(b) else a < b


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    if _kind(left) not in {"array", "object"} and _equal(left, right):
        return operator in {"<=", ">="}
    if operator in {"<", "<="}:
        return bool(_less(left, right))
    return bool(_less(right, left))


def _lookup(value: Any, key: Any) -> Any:
    """value.key or value[key]: case-insensitive for objects, null when missing."""
    if isinstance(value, _Filtered):
        found = [_lookup(item, key) for item in value]
        return _Filtered(item for item in found if item is not None)
    if isinstance(value, dict):
        if isinstance(key, str):
            for name, item in value.items():
                if name.lower() == key.lower():
                    return item
        return None
    if isinstance(value, list) and not isinstance(key, (str, bool)):
        index = _number(key)
        if not math.isnan(index) and float(index).is_integer() and 0 <= index < len(value):
            return value[int(index)]
    return None


def _filter(value: Any) -> Any:
    if isinstance(value, _Filtered):
        return _Filtered(x for item in value for x in (_filter(item) or []))
    if isinstance(value, dict):
        return _Filtered(value.values())
    if isinstance(value, list):
        return _Filtered(value)
    return _Filtered()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, _Filtered) else value


def _contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(_equal(element, item) for element in search)
    return _fold(_string(item)) in _fold(_string(search))


def _format(template: Any, *args: Any) -> str:
    text, out, index = _string(template), [], 0
    while index < len(text):
        char = text[index]
        if text.startswith(("{{", "}}"), index):
            out.append(char)
            index += 2
        elif char == "{":
            match = re.match(r"\{(\d+)\}", text[index:])
            if not match:
                raise ExpressionError(f"format: invalid format string {text!r}")
            position = int(match.group(1))
            if position >= len(args):
                raise ExpressionError(f"format: {{{position}}} but {len(args)} argument(s)")
            out.append(_string(args[position]))
            index += match.end()
        elif char == "}":
            raise ExpressionError(f"format: invalid format string {text!r}")
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _join(values: Any, separator: Any = ",") -> str:
    if isinstance(separator, (list, dict)):
        separator = ","
    if isinstance(values, list):
        return _string(separator).join(_string(value) for value in values)
    return "" if isinstance(values, dict) else _string(values)


def _to_json(value: Any) -> str:
    def plain(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: plain(v) for key, v in item.items()}
        if isinstance(item, list):
            return [plain(v) for v in item]
        return item

    return json.dumps(plain(value), indent=2, ensure_ascii=False)


def _from_json(text: Any) -> Any:
    try:
        return json.loads(_string(text))
    except json.JSONDecodeError as error:
        raise ExpressionError(f"fromJSON: {error}") from None


def hash_files(workspace: Path, *patterns: str) -> str:
    """hashFiles: a SHA-256 over the SHA-256 of each file the patterns match (relative to the
    workspace, `!` excluding), in path order; '' when none matches."""
    matched: set[Path] = set()
    for pattern in patterns:
        negate = pattern.startswith("!")
        found = {p for p in workspace.glob(pattern.lstrip("!").lstrip("/")) if p.is_file()}
        matched = matched - found if negate else matched | found
    if not matched:
        return ""
    total = hashlib.sha256()
    for path in sorted(matched):
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": _contains,
    "startsWith": lambda text, prefix: _fold(_string(text)).startswith(_fold(_string(prefix))),
    "endsWith": lambda text, suffix: _fold(_string(text)).endswith(_fold(_string(suffix))),
    "format": _format,
    "join": _join,
    "toJSON": _to_json,
    "fromJSON": _from_json,
}
_STATUS = ("always", "success", "failure", "cancelled")


def _logical(operator: str, left: Callable[[], Any], right: Callable[[], Any]) -> Callable[[], Any]:
    """a || b is a when a is truthy, else b; a && b is b when a is truthy, else a."""

    def node() -> Any:
        value = left()
        return value if _truthy(value) == (operator == "||") else right()

    return node


def _comparison(
    operator: str, left: Callable[[], Any], right: Callable[[], Any]
) -> Callable[[], Any]:
    return lambda: _compare(operator, _plain(left()), _plain(right()))


class _Parser:
    """Recursive descent, lowest precedence first: || && (== !=) (< <= > >=) ! then property
    access, index and calls. Parsing builds closures, so && and || evaluate lazily."""

    def __init__(
        self, expression: str, context: dict[str, Any], functions: dict[str, Callable[..., Any]]
    ) -> None:
        self.expression = expression
        self.context = {name.lower(): value for name, value in context.items()}
        self.functions = {name.lower(): f for name, f in {**FUNCTIONS, **functions}.items()}
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(expression):
            match = _TOKEN.match(expression, position)
            if not match:
                raise self.error(f"cannot read {expression[position:]!r}")
            position = match.end()
            if match.lastgroup != "space":
                self.tokens.append((match.lastgroup or "", match.group(0)))
        self.position = 0

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in {self.expression!r}")

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise self.error("unexpected end")
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise self.error(f"expected {expected!r}, found {token[1]!r}")
        self.position += 1
        return token

    def parse(self) -> Callable[[], Any]:
        node = self.or_()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()!r}")
        return node

    def or_(self) -> Callable[[], Any]:
        return self.logical("||", self.and_)

    def and_(self) -> Callable[[], Any]:
        return self.logical("&&", self.equality)

    def logical(self, operator: str, operand: Callable[[], Callable[[], Any]]) -> Callable[[], Any]:
        node = operand()
        while self.peek() == operator:
            self.take()
            node = _logical(operator, node, operand())
        return node

    def binary(
        self, operators: set[str], operand: Callable[[], Callable[[], Any]]
    ) -> Callable[[], Any]:
        node = operand()
        while self.peek() in operators:
            operator = self.take()[1]
            node = _comparison(operator, node, operand())
        return node

    def equality(self) -> Callable[[], Any]:
        return self.binary({"==", "!="}, self.comparison)

    def comparison(self) -> Callable[[], Any]:
        return self.binary({"<", "<=", ">", ">="}, self.unary)

    def unary(self) -> Callable[[], Any]:
        if self.peek() == "!":
            self.take()
            operand = self.unary()
            return lambda: not _truthy(operand())
        return self.postfix()

    def postfix(self) -> Callable[[], Any]:
        node = self.primary()
        while self.peek() in {".", "["}:
            if self.take()[1] == ".":
                kind, name = self.take()
                if name == "*":
                    node = lambda node=node: _filter(node())  # noqa: E731
                elif kind == "name":
                    node = lambda node=node, name=name: _lookup(node(), name)  # noqa: E731
                else:
                    raise self.error(f"unexpected {name!r} after '.'")
            elif self.peek() == "*":
                self.take()
                self.take("]")
                node = lambda node=node: _filter(node())  # noqa: E731
            else:
                index = self.or_()
                self.take("]")
                node = lambda node=node, index=index: _lookup(node(), _plain(index()))  # noqa: E731
        return node

    def primary(self) -> Callable[[], Any]:
        kind, text = self.take()
        if kind == "string":
            value = text[1:-1].replace("''", "'")
            return lambda: value
        if kind == "number":
            number = _parse_number(text)
            return lambda: number
        if text == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind != "name":
            raise self.error(f"unexpected {text!r}")
        if text in {"true", "false", "null"}:
            constant = {"true": True, "false": False, "null": None}[text]
            return lambda: constant
        if self.peek() == "(":
            return self.call(text)
        if text.lower() not in _CONTEXTS:
            raise self.error(f"unknown context {text!r}")
        return lambda: self.context.get(text.lower())

    def call(self, name: str) -> Callable[[], Any]:
        function = self.functions.get(name.lower())
        if function is None:
            raise self.error(f"unknown function {name!r}")
        self.take("(")
        args: list[Callable[[], Any]] = []
        while self.peek() != ")":
            if args:
                self.take(",")
            args.append(self.or_())
        self.take(")")
        return lambda: function(*(_plain(arg()) for arg in args))


def evaluate(
    expression: str, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Evaluate one GitHub expression (without `${{ }}`) against `context`; `functions` adds or
    replaces functions (the status functions and hashFiles, which need a job)."""
    return _plain(_Parser(expression.strip(), context, functions or {}).parse()())


def as_text(value: Any) -> str:
    """An expression's value where a string is needed (an `${{ }}` inside text, an env value)."""
    if isinstance(value, (dict, list)):
        return _to_json(value)
    return _string(value)


def interpolate(
    text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """Replace every `${{ ... }}` in a string (other values pass through)."""
    if not isinstance(text, str):
        return text
    return GITHUB_EXPRESSION.sub(lambda m: as_text(evaluate(m.group(1), context, functions)), text)


def flag(value: Any, context: dict[str, Any]) -> bool:
    """A boolean setting that may be an expression (`continue-on-error: ${{ ... }}`)."""
    if isinstance(value, str):
        whole = GITHUB_EXPRESSION.fullmatch(value.strip())
        value = evaluate(whole.group(1), context) if whole else value
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return _truthy(value)


def condition(text: Any, context: dict[str, Any], functions: dict[str, Callable[..., Any]]) -> bool:
    """An `if:`: an expression with or without `${{ }}`; without a status function in it,
    `success() && (...)` is implied."""
    if text is None:
        text = "success()"
    if isinstance(text, bool):
        return text
    text = str(text).strip()
    whole = GITHUB_EXPRESSION.fullmatch(text)
    if whole:
        text = whole.group(1)
    if not re.search(rf"\b({'|'.join(_STATUS)})\s*\(", text, re.IGNORECASE):
        text = f"success() && ({text})"
    return _truthy(evaluate(text, context, functions))
