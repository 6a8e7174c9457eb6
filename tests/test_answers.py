"""Fast checks of tests/answers.py: the answer combinations derived from copier.yml cover every
choice, respect copier's validators, and grow by themselves when copier.yml gains a choice."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import yaml

from tests import answers
from tests.answers import COPIER_YML, FILL_INS, accepted, choices, linked_groups, matrix, questions


def _value(combination: dict[str, str], name: str, copier_yml: Path = COPIER_YML) -> str:
    return combination.get(name, str(questions(copier_yml)[name]["default"]))


def test_every_choice_of_every_question_is_in_a_combination() -> None:
    combinations = matrix()
    assert combinations[0] == {}, "the first combination is copier's defaults"
    for name, question in questions().items():
        for value in choices(question):
            assert any(_value(c, name) == value for c in combinations), f"{name}={value}"


def test_questions_that_constrain_each_other_are_covered_together() -> None:
    # model's choices name the task in their validators: every pair copier accepts is
    # rendered, and no pair it rejects.
    assert ("task", "model") in linked_groups()
    pairs = {(_value(c, "task"), _value(c, "model")) for c in matrix()}
    spec = questions()
    defaults = {name: _value({}, name) for name in ("task", "model")}
    for pair in itertools.product(choices(spec["task"]), choices(spec["model"])):
        answer = dict(zip(("task", "model"), pair, strict=True))
        valid = accepted({k: v for k, v in answer.items() if v != defaults[k]}) is not None
        assert (pair in pairs) == valid, pair
    assert ("regression", "logistic_regression") not in pairs
    assert ("classification", "ridge") not in pairs


def test_fill_ins_are_answers_copier_needs() -> None:
    # Each is a question copier asks only after some choice, and without it copier rejects
    # the combination that uses it: the table cannot silently outlive copier.yml.
    spec = questions()
    for name in FILL_INS:
        assert "when" in spec.get(name, {}), f"{name} is no longer a conditional question"
        using = next((c for c in matrix() if name in c), None)
        assert using is not None, f"no combination needs {name}"
        without = {key: value for key, value in using.items() if key != name}
        assert not answers._copier_accepts(COPIER_YML, without), f"{name} is not needed"


def test_a_choice_added_to_copier_yml_extends_the_combinations(tmp_path: Path) -> None:
    # A small copier.yml of the same shape: a free choice, and a choice valid for one task only.
    copier_yml = tmp_path / "copier.yml"
    copier_yml.write_text(
        textwrap.dedent(
            """\
            _subdirectory: template
            license:
              type: str
              default: MIT
              choices: [MIT, Proprietary]
            task:
              type: str
              default: classification
              choices: [classification, regression]
            model:
              type: str
              default: forest
              choices:
                Forest: forest
                Ridge:
                  value: ridge
                  validator: "{% if task != 'regression' %}Only for regression{% endif %}"
            """
        )
    )
    before = matrix(copier_yml)
    assert [_value(c, "task", copier_yml) for c in before if c.get("model") == "ridge"] == [
        "regression"
    ]

    data = yaml.safe_load(copier_yml.read_text())
    data["license"]["choices"].append("Apache-2.0")
    data["model"]["choices"]["Lasso"] = dict(data["model"]["choices"]["Ridge"], value="lasso")
    extended = tmp_path / "extended" / "copier.yml"
    extended.parent.mkdir()
    extended.write_text(yaml.safe_dump(data, sort_keys=False))
    after = matrix(extended)
    assert any(c.get("license") == "Apache-2.0" for c in after)
    assert [_value(c, "task", extended) for c in after if c.get("model") == "lasso"] == [
        "regression"
    ]
    assert len(after) == len(before) + 1  # one more (task, model) pair, nothing else new
