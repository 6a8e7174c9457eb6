"""harness/gha/expressions.py: GitHub's `${{ }}` expressions give GitHub's documented results
("Evaluate expressions in workflows and actions" on docs.github.com, and GitHub's own expression
test data in actions/languageservices), first for what the generated workflows
(template/.github/workflows/) use, then for the rest of the language; `if:` conditions and
hashFiles as a job evaluates them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from harness.gha.expressions import ExpressionError, condition, evaluate, hash_files, interpolate

CONTEXT: dict[str, Any] = {
    "github": {
        "repository": "octo/churn",
        "ref": "refs/tags/v1.2.0",
        "ref_name": "v1.2.0",
        "sha": "0123abcd",
        "run_id": 7,
        "event_name": "push",
        "event": {
            "repository": {"default_branch": "main"},
            "issue": {"labels": [{"name": "bug"}, {"name": "help wanted"}]},
        },
    },
    "vars": {"AWS_ROLE_ARN": "arn:aws:iam::1:role/ci", "RETRAIN_ON_DRIFT": "false"},
    "inputs": {"current": ""},
    "env": {"DVC_PULL": "true"},
    "steps": {
        "data": {"outputs": {"available": "true"}, "outcome": "success"},
        "verdict": {"outputs": {"drift": "false"}, "outcome": "success"},
    },
    "needs": {
        "pipeline": {"result": "success", "outputs": {"trained": "true"}},
        "drift": {"result": "failure", "outputs": {"drift": "true"}},
    },
}


def _kind(value: Any) -> tuple[str, Any]:
    """A value with its GitHub type, so that True and 1, or 2 and 2.0, compare as GitHub's do."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", [_kind(v) for v in value])
    return ("object", {k: _kind(v) for k, v in value.items()})


# What template/.github/workflows/ use (grep '${{' and 'if:'), as the generated workflows run them.
TEMPLATE_EXPRESSIONS = [
    ("steps.data.outputs.available == 'true'", True),
    ("env.DVC_PULL == 'true'", True),
    ("needs.pipeline.outputs.trained == 'true'", True),
    ("needs.drift.outputs.drift == 'true' && vars.RETRAIN_ON_DRIFT != 'false'", False),
    ("needs.drift.outputs.drift == 'true' && vars.NOT_SET != 'false'", True),
    ("vars.AWS_ROLE_ARN != ''", True),
    ("vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''", False),  # unset: null, which equals ''
    ("vars.AWS_REGION || 'us-east-1'", "us-east-1"),
    ("inputs.current || 'data/current/customers.csv'", "data/current/customers.csv"),
    ("github.event.repository.default_branch", "main"),
    ("github.ref_name", "v1.2.0"),
    ("steps.verdict.outputs.drift", "false"),
    ("steps.no_such_step.outputs.drift", None),
    ("github.run_id", 7),
]

# The rest of the language, each with the result GitHub documents.
LANGUAGE = [
    # literals
    ("null", None),
    ("true", True),
    ("false", False),
    ("711", 711),
    ("-9.2", -9.2),
    ("0xff", 255),
    ("-2.99e-2", -0.0299),
    ("'It''s open source!'", "It's open source!"),
    # ! and what is falsy: false, 0, -0, '', null; everything else is truthy
    ("!false", True),
    ("!0", True),
    ("!-0", True),
    ("!''", True),
    ("!null", True),
    ("!'false'", False),
    ("!'0'", False),
    ("!fromJSON('[]')", False),
    ("!fromJSON('{}')", False),
    # && and || give an operand, not a boolean; && binds tighter than ||
    ("1 == 1 && 2", 2),
    ("'a' == 'a' && 'b'", "b"),
    ("false || ''", ""),
    ("0 || 0 || 2 || 3", 2),
    ("false || null", None),
    ("false && 0 || null", None),
    ("1 || 2 && 3", 1),
    ("(1 || 2) && 3", 3),
    # precedence: ! before comparisons, comparisons before ==, each left to right
    ("!2 < 3", True),
    ("!(2 < 3)", False),
    ("3 < 2 < 1", True),
    ("2 > 2 > 0", False),
    ("2 <= 3 == true", True),
    ("2 == 2 == 1", True),
    ("2 == (2 == 1)", False),
    # loose equality: strings ignore case; different types compare as numbers
    ("'ABC' == 'abc'", True),
    ("'ü' == 'Ü'", True),
    ("'abc' != 'ABC'", False),
    ("'abc' < 'ABD'", True),
    ("'a' < '['", True),  # compared in upper case: 'A' < '['
    ("null == 0", True),
    ("null == ''", True),
    ("'' == 0", True),
    ("true == 1", True),
    ("false == 0", True),
    ("'1' == 1", True),
    ("' 0xff ' == 255", True),
    ("'true' == true", False),  # 'true' is not a number: NaN
    ("'abc' == 0", False),
    ("'abc' < 1 || 'abc' >= 1", False),  # NaN compares false with everything
    ("fromJSON('[]') == fromJSON('[]')", False),  # arrays and objects: the same instance only
    ("github.event == github.event", True),
    ("1 < 2", True),
    ("false < true", True),
    # property access: case-insensitive, null when missing, index, object filters
    ("github.EVENT.Repository.DEFAULT_BRANCH", "main"),
    ("github['ref_name']", "v1.2.0"),
    ("github.event.issue.labels[1].name", "help wanted"),
    ("github.event.issue.labels.*.name", ["bug", "help wanted"]),
    ("needs.*.result", ["success", "failure"]),
    ("github.event.no.such.thing", None),
    ('fromJSON(\'{"one": "one val"}\').one', "one val"),
    # contains: an element of an array, or a substring of a string; case-insensitive
    ("contains('Hello world', 'llo')", True),
    ("contains('Hello world', 'LLO')", True),
    ("contains(github.event.issue.labels.*.name, 'BUG')", True),
    ("contains(github.event.issue.labels.*.name, 'help')", False),
    ('contains(fromJSON(\'["push", "pull_request"]\'), github.event_name)', True),
    ("contains(needs.*.result, 'failure')", True),
    ("contains(true, 'ru')", True),  # values cast to strings
    # startsWith, endsWith: case-insensitive, values cast to strings
    ("startsWith('Hello world', 'he')", True),
    ("startsWith(github.ref, 'refs/tags/')", True),
    ("endsWith('Hello world', 'LD')", True),
    ("endsWith(github.run_id, '7')", True),
    # format: {N}, braces escaped by doubling, values cast to strings
    ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"),
    ("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"),
    ("format('{0}{0}', 'ab')", "abab"),
    ("format('[{0}|{1}|{2}|{3}|{4}]', null, true, 2.0, 0.5, 1.2e2)", "[|true|2|0.5|120]"),
    # join: the default separator is ','
    ("join(github.event.issue.labels.*.name, ', ')", "bug, help wanted"),
    ("join(fromJSON('[1, true, \"a\"]'))", "1,true,a"),
    ("join('abc')", "abc"),
    # toJSON: pretty-printed; fromJSON: any JSON value
    ("toJSON(fromJSON('[1, 2]'))", "[\n  1,\n  2\n]"),
    ("toJSON(needs.pipeline.outputs)", '{\n  "trained": "true"\n}'),
    ("toJSON('abc')", '"abc"'),
    ("toJSON(null)", "null"),
    ("toJSON(true)", "true"),
    ("fromJSON('true')", True),
    ("fromJSON('null')", None),
    ("fromJSON(' 3 ') == 3", True),
    ("fromJSON('{\"a\": [1]}')", {"a": [1]}),
    # function names are case-insensitive
    ("fromjson('1')", 1),
    ("CONTAINS('abc', 'B')", True),
]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [pytest.param(e, r, id=e) for e, r in TEMPLATE_EXPRESSIONS + LANGUAGE],
)
def test_expression(expression: str, expected: Any) -> None:
    assert _kind(evaluate(expression, CONTEXT)) == _kind(expected)


@pytest.mark.parametrize(
    "expression",
    [
        "\"double quotes\" == 'x'",  # strings take single quotes only
        "format('{0}')",  # a placeholder without a value
        "format('{0', 'x')",  # an unclosed brace
        "format('}', 'x')",
        "no_such_context.x",
        "no_such_function()",
        "1 +",
        "(true",
        "fromJSON('{not json')",
    ],
)
def test_invalid_expressions_are_errors(expression: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(expression, CONTEXT)


def test_interpolation_makes_strings() -> None:
    text = "${{ github.repository }}:${{ github.ref_name }}-${{ github.run_id }}"
    assert interpolate(text, CONTEXT) == "octo/churn:v1.2.0-7"
    assert interpolate("[${{ null }}|${{ true }}|${{ 1.50 }}|${{ 0xff }}]", CONTEXT) == (
        "[|true|1.5|255]"
    )
    assert interpolate("no expression", CONTEXT) == "no expression"
    assert interpolate(5, CONTEXT) == 5  # not a string: as it is


def _status(failed: bool) -> dict[str, Any]:
    return {
        "success": lambda: not failed,
        "failure": lambda: failed,
        "always": lambda: True,
        "cancelled": lambda: False,
    }


@pytest.mark.parametrize(
    ("text", "after_success", "after_failure"),
    [
        (None, True, False),  # no `if:` is success()
        ("always()", True, True),
        ("${{ always() }}", True, True),
        ("failure()", False, True),
        ("${{ ALWAYS() }}", True, True),
        ("!cancelled()", True, True),
        # without a status function, `success() && (...)` is implied
        ("steps.data.outputs.available == 'true'", True, False),
        ("${{ steps.data.outputs.available == 'true' }}", True, False),
        ("failure() && steps.data.outputs.available == 'true'", False, True),
        ("'false'", True, False),  # a non-empty string is true, whatever it says
        ("vars.NOT_SET", False, False),
        ("needs.pipeline.outputs.trained == 'TRUE'", True, False),
        (True, True, True),
        (False, False, False),
    ],
)
def test_if_conditions(text: Any, after_success: bool, after_failure: bool) -> None:
    assert condition(text, CONTEXT, _status(failed=False)) is after_success
    assert condition(text, CONTEXT, _status(failed=True)) is after_failure


def test_hash_files(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv.dvc").write_text("outs: []\n")
    (tmp_path / "data" / "skip.dvc").write_text("outs: [1]\n")
    assert hash_files(tmp_path, "no-such-file") == ""
    single = hash_files(tmp_path, "dvc.lock")
    per_file = hashlib.sha256(b"stages: {}\n").digest()
    assert single == hashlib.sha256(per_file).hexdigest()  # a SHA-256 of the files' SHA-256s
    both = hash_files(tmp_path, "dvc.lock", "**/*.dvc")
    assert both not in {"", single}
    assert hash_files(tmp_path, "dvc.lock", "**/*.dvc", "!data/skip.dvc") not in {"", both}
    (tmp_path / "data" / "raw.csv.dvc").write_text("outs: [2]\n")
    assert hash_files(tmp_path, "dvc.lock", "**/*.dvc") != both
    expression = "hashFiles('dvc.lock') != '' && hashFiles('nothing') == ''"
    assert evaluate(expression, {}, {"hashFiles": lambda *p: hash_files(tmp_path, *p)}) is True
