"""A Dockerfile as the tests read it: its instructions and stages, its labels, and a word as
Docker reads it (no build needed)."""

from __future__ import annotations

import re


def dockerfile_instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current.strip())
        current = ""
    return [
        (text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "")
        for text in logical
    ]


def dockerfile_stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions(dockerfile):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def image_labels(dockerfile: str) -> dict[str, str]:
    """The runtime stage's LABEL keys and their values as written (words, not yet read)."""
    labels = " ".join(args for name, args in dockerfile_stages(dockerfile)[-1] if name == "LABEL")
    word = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|(?:[^\s"'\\]|\\.)+)+"""
    return dict(re.findall(rf"([\w.-]+)=({word})", labels))


def docker_string(word: str) -> str:
    """A word as Docker reads it (BuildKit's shell lexer): quoted and unquoted parts joined; in
    double quotes a backslash escapes only ", $ and itself, any other stays; out of quotes it
    escapes any character. An unescaped $ would expand a variable: not expected here."""
    text, chars, quote = [], iter(word), ""
    for char in chars:
        if char == quote or (not quote and char in "\"'"):
            quote = "" if quote else char
        elif quote == "'":
            text.append(char)
        elif char == "$":
            raise AssertionError(f"Docker would expand the $ in {word}")
        elif char == "\\":
            following = next(chars, "")
            text.append(following if not quote or following in '"$\\' else char + following)
        else:
            text.append(char)
    assert not quote, f"unterminated quote in {word}"
    return "".join(text)
