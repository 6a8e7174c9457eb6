"""Fast checks of harness/answers.py: the answer combinations derived from copier.yml cover every
choice, respect copier's validators, and grow by themselves when copier.yml gains a choice."""

from __future__ import annotations

import itertools
import textwrap
from email.headerregistry import Address
from pathlib import Path

import pytest
import yaml

from harness import answers
from harness.answers import (
    COPIER_YML,
    FILL_INS,
    accepted,
    ask_copier,
    choices,
    linked_groups,
    matrix,
    questions,
)


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


# --- free-text answers: refused when they would break a file they go into ---------------------

INJECTION = "s3://bucket/path\nremote.storage.endpointurl=http://attacker.example:9000"
CONTROL = "cannot hold a control character"


def _free_text() -> list[str]:
    """The questions answered in free text: asked (not derived), without choices."""
    return [
        name
        for name, spec in questions().items()
        if spec.get("when") is not False and not choices(spec)
    ]


def _refusal(answers: dict[str, str]) -> str | None:
    """copier's message when its validators refuse these answers, else None."""
    try:
        ask_copier(answers)
    except ValueError as error:
        return str(error)
    return None


def test_every_free_text_answer_refuses_control_characters() -> None:
    """A line break in any free answer could add a line (a key of .dvc/config, a YAML key):
    each is refused, wherever copier asks it (a question asked only after some choice is
    tried with the combinations that ask it). A new free-text question is checked too."""
    contexts = [{}, *matrix()]
    for name in _free_text():
        messages = [_refusal({**context, name: INJECTION}) for context in contexts]
        assert any(m and f"question '{name}'" in m and CONTROL in m for m in messages), (
            f"{name} accepts a line break: {messages}"
        )


@pytest.mark.parametrize("character", ["\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u2028"])
def test_each_control_character_is_refused(character: str) -> None:
    refused = _refusal({"description": f"A model{character}that churns"})
    assert refused is not None and CONTROL in refused, refused


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("s3", "s3://my-bucket/my-model"),
        ("s3", "s3://my.bucket.example"),
        ("gs", "gs://my_bucket/models/churn-2026"),
        ("azure", "azure://models/churn"),
        ("azure", "azure://" + "a" * 63 + "/x"),
    ],
)
def test_a_remote_url_of_the_remotes_shape_is_accepted(remote: str, url: str) -> None:
    assert _refusal({"dvc_remote": remote, "dvc_remote_url": url}) is None


@pytest.mark.parametrize(
    ("remote", "url", "message"),
    [
        ("s3", INJECTION, CONTROL),
        ("s3", "gs://bucket/x", "must start with s3://"),
        ("s3", "s3://My_Bucket/x", "is not a valid s3 URL"),
        ("s3", "s3://ab/x", "is not a valid s3 URL"),  # a bucket has 3 characters or more
        ("s3", "s3://", "is not a valid s3 URL"),
        ("s3", "s3://bucket/a b", "is not a valid s3 URL"),
        ("s3", "s3://bucket/x#comment", "is not a valid s3 URL"),  # '#' starts a comment in INI
        ("s3", 's3://bucket/x"y', "is not a valid s3 URL"),
        ("gs", "gs://bucket/x'y", "is not a valid gs URL"),
        ("azure", "azure://mo--dels/x", "is not a valid azure URL"),
        ("azure", "azure://" + "a" * 64 + "/x", "is not a valid azure URL"),
    ],
)
def test_a_remote_url_of_another_shape_is_refused(remote: str, url: str, message: str) -> None:
    refused = _refusal({"dvc_remote": remote, "dvc_remote_url": url})
    assert refused is not None and message in refused, refused


def test_the_default_remote_url_is_valid_for_the_longest_name() -> None:
    # The bucket named after the project is cut to fit 63 characters.
    for remote in ("s3", "gs", "azure"):
        longest = {"project_name": "x" * 100, "package_name": "m", "dvc_remote": remote}
        assert _refusal(longest) is None, remote


# The addresses a user might type; the build (hatchling) formats each with Python's
# email.headerregistry.Address, which raises on what it cannot parse.
ADDRESSES = [
    "jane.doe@example.com",
    "jane..doe@example.com",
    ".jane@example.com",
    "jane.@example.com",
    "jane doe@example.com",
    '"jane doe"@example.com',
    "jane@ex..ample.com",
    "jane@example.com.",
    "jane@@example.com",
    "ja,ne@example.com",
    "j<a>ne@x.com",
    "zoé@example.com",
    "zoe.o'brien+churn#1@exämple.org",
    "a/b=c?d{e}|~!$%&*^`@x.co",
    "first.last+tag@sub.example.co.uk",
    "jane@example",
    "jane@[127.0.0.1]",
    "jane\\x@x.com",
]


def test_an_e_mail_address_copier_accepts_is_one_the_build_accepts() -> None:
    accepted = [email for email in ADDRESSES if _refusal({"author_email": email}) is None]
    for email in accepted:
        Address(display_name="Jane Doe", addr_spec=email)  # raises what hatchling would
    assert "jane..doe@example.com" not in accepted
    assert {"jane.doe@example.com", "first.last+tag@sub.example.co.uk"} <= set(accepted)
    assert "zoe.o'brien+churn#1@exämple.org" in accepted, "a domain with accents is welcome"


def test_a_project_name_too_long_for_a_file_name_is_refused() -> None:
    refused = _refusal({"project_name": "a" * 300, "package_name": "m"})
    assert refused is not None and "is 300 characters long: at most 100" in refused, refused


REPOSITORIES_ACCEPTED = [
    "jane-doe/my-model",
    "Octo-Org/Churn.Model_2",
    "a/...",
    "a" * 39 + "/x",
    "x/" + "b" * 100,
]
NOT_A_REPOSITORY = "is not a GitHub repository: give owner/name, e.g. jane-doe/my-model"


@pytest.mark.parametrize("repository", REPOSITORIES_ACCEPTED)
def test_a_github_repository_is_accepted(repository: str) -> None:
    assert _refusal({"deployment": "kubernetes", "github_repository": repository}) is None


@pytest.mark.parametrize(
    "repository",
    [
        "https://github.com/jane/model",  # a URL, not owner/name
        "jane/model.git",
        "jane",
        "jane/model/deploy",
        "-jane/model",  # an owner: letters, digits and single inner '-'
        "jane-/model",
        "ja--ne/model",
        "j_ane/model",
        "a" * 40 + "/x",
        "x/" + "b" * 101,
        "jane/..",
        "jane/my model",
        "",
    ],
)
def test_what_is_not_a_github_repository_is_refused(repository: str) -> None:
    refused = _refusal({"deployment": "kubernetes", "github_repository": repository})
    assert refused is not None and NOT_A_REPOSITORY in refused, refused
    assert "\n" not in refused.strip(), "one line"


def test_the_repository_is_checked_only_for_kubernetes() -> None:
    # Without a deployment nothing uses it (cookiecutter, which asks every question, passes its
    # default on); with one, the placeholder default is itself an owner/name.
    assert _refusal({"github_repository": "not a repository"}) is None
    placeholder = {"deployment": "kubernetes", "github_repository": "OWNER/my-model"}
    assert _refusal(placeholder) is None
