"""Where in a setup file Postgres failed: the file's line for an error.

A setup file is sent whole, as one simple query; Postgres gives a position only for errors it
finds while parsing. For the others (a missing table, a RAISE in a DO block) the line comes from
which statement failed: the statements before it each answered with a result, so their count
is the failing one's index in the file, found here by a lexer that knows where statements end
(quotes, dollar quotes, comments, BEGIN ATOMIC bodies), as psql's does. It only locates:
nothing is ever sent split."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*'?)
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<ident>"(?:[^"]|"")*"?)
    | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][A-Za-z_0-9\x80-\uffff]*)?\$)
    | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z_0-9$\x80-\uffff]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_INLINE_BLOCK_LINE = re.compile(r"inline_code_block line (\d+)")
_ROUTINE_HEADS = (("create", "function"), ("create", "procedure"))


@dataclass(frozen=True)
class Statement:
    """One statement of a file: where its first token starts and, if it has a string literal
    (a DO block's or a function's body), where that literal's text starts."""

    start: int
    body: int | None = None


class _Scan:
    """The lexer's state: the statements found, and what it knows of the current one."""

    def __init__(self) -> None:
        self.found: list[Statement] = []
        self._reset()

    def _reset(self) -> None:
        self.start: int | None = None
        self.body: int | None = None
        self.words: list[str] = []  # the first few, to spot CREATE [OR REPLACE] FUNCTION
        self.parens = 0
        self.begin_depth = 0

    def token(self, offset: int, body: int | None = None) -> None:
        if self.start is None:
            self.start = offset
        if self.body is None:
            self.body = body

    def word(self, offset: int, text: str) -> None:
        self.token(offset)
        word = text.lower()
        if len(self.words) < 4:
            self.words.append(word)
        # psql's heuristic: in CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN (ATOMIC) ... END
        # holds semicolons that do not end the statement; CASE ... END nests inside it
        head = tuple(w for w in self.words if w not in ("or", "replace"))[:2]
        if head not in _ROUTINE_HEADS or self.parens:
            return
        if word == "begin" or (word == "case" and self.begin_depth):
            self.begin_depth += 1
        elif word == "end" and self.begin_depth:
            self.begin_depth -= 1

    def punctuation(self, offset: int, char: str) -> None:
        if char == ";" and not self.begin_depth and not self.parens:
            self.end()
            return
        self.token(offset)
        if char == "(":
            self.parens += 1
        elif char == ")" and self.parens:
            self.parens -= 1

    def end(self) -> None:
        if self.start is not None:
            self.found.append(Statement(self.start, self.body))
        self._reset()


def statements(text: str) -> list[Statement]:
    """The statements Postgres would see in `text`, in order (empty ones, like `;;` or a
    trailing comment, are none: they give no result)."""
    scan = _Scan()
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        assert match is not None  # `other` matches any character
        kind, token, end = match.lastgroup, match.group(), match.end()
        if kind == "block_comment":
            end = _comment_end(text, at)
        elif kind == "dollar":
            close = text.find(token, end)
            scan.token(at, body=end)
            end = len(text) if close < 0 else close + len(token)
        elif kind in ("string", "estring"):
            scan.token(at, body=at + token.index("'") + 1)
        elif kind == "ident":
            scan.token(at)
        elif kind == "word":
            scan.word(at, token)
        elif kind == "other":
            scan.punctuation(at, token)
        at = end
    scan.end()
    return scan.found


def _comment_end(text: str, at: int) -> int:
    """The end of the (nested) block comment opening at `at`."""
    depth, i = 0, at
    while i < len(text):
        pair = text[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def line_at(text: str, offset: int) -> int:
    """The 1-based line of a 0-based character offset."""
    return text.count("\n", 0, max(0, min(offset, len(text)))) + 1


def failure_line(text: str, done: int, position: int | None, context: str | None) -> int | None:
    """The line of `text` where the error is: `position` (Postgres's 1-based character
    position, given for errors found while parsing), else the statement after the `done` ones
    that succeeded; for a DO block, its line that raised ("inline_code_block line N" of the
    context counts from the line its body starts on). None if the file has no such statement."""
    if position is not None and position > 0:
        return line_at(text, position - 1)
    found = statements(text)
    if done >= len(found):
        return None
    statement = found[done]
    lines = _INLINE_BLOCK_LINE.findall(context or "")
    if lines and statement.body is not None:
        # the context lists frames innermost first: the last inline block is the file's DO
        return line_at(text, statement.body) + int(lines[-1]) - 1
    return line_at(text, statement.start)
