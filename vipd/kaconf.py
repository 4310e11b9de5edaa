"""keepalived.conf's grammar, read the way keepalived reads it (keepalived.conf(5), "ADVANCED
CONFIGURATION"), into a tree of ``Node``s that remember the file and line they came from.

Line by line, in this order (as keepalived's parser does):
  - ``@ID line`` / ``@^ID line``: kept only when ID is (is not) the config id (``-i``; default
    the first label of the host name);
  - ``$NAME=value`` defines a parameter (``$NAME= \\`` starts a multiline one); ``${NAME}`` and
    ``$NAME`` followed by white space are replaced, recursively, at use; undefined ones stay;
  - ``~SEQ(var, [start,] [step,] end)`` repeats the rest of the line (``~SEQx``: hexadecimal);
  - ``#`` and ``!`` outside quotes start a comment;
  - ``include GLOB`` reads the matching files (relative to the including file's directory);
  - words, double-quoted strings, and braces, which may sit on the same or on the next line.
The tree does not know keywords: vipd.kaimport gives them meaning.
"""
from __future__ import annotations

import glob
import os
import re
import socket
from dataclasses import dataclass, field

MAX_DEPTH = 32      # include nesting and parameter recursion, against loops


@dataclass
class Node:
    keyword: str
    args: list[str]
    file: str
    line: int
    children: list["Node"] | None = None      # None: a plain line; []: an empty block

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def child_lines(self) -> list["Node"]:
        return self.children or []


@dataclass
class ParseError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class _Logical:
    file: str
    line: int
    text: str


_DEF = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_SEQ = re.compile(r"~SEQ(x?)\(([^)]*)\)\s*")
_USE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)")
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"?|([{}])|([^\s{}"]+)')


def default_config_id() -> str:
    return socket.gethostname().split(".")[0]


@dataclass
class Reader:
    config_id: str = field(default_factory=default_config_id)
    errors: list[ParseError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)      # every file read, in order

    def __post_init__(self) -> None:
        self.params: dict[str, str] = {"_INSTANCE": self.config_id, "_HASH": "#", "_BANG": "!"}

    # ---- files -> logical lines -----------------------------------------------------------

    def read(self, path: str) -> list[Node]:
        """The top-level nodes of the file at ``path`` (with its includes)."""
        lines = self._file(os.path.abspath(path), path, 0)
        return self._tree(lines)

    def _file(self, path: str, shown: str, depth: int) -> list[_Logical]:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                raw = f.read().splitlines()
        except OSError as e:
            self.errors.append(ParseError(shown, 0, f"cannot read: {e.strerror or e}"))
            return []
        self.files.append(shown)
        saved_pwd = self.params.get("_PWD")
        self.params["_PWD"] = os.path.dirname(path)
        out: list[_Logical] = []
        pending: tuple[str, list[str]] | None = None      # a multiline $NAME= \ being read
        for n, text in enumerate(raw, 1):
            if pending is not None:
                more = text.rstrip().endswith("\\")
                pending[1].append(text.rstrip()[:-1] if more else text)
                if not more:
                    self.params[pending[0]] = "\n".join(pending[1])
                    pending = None
                continue
            m = _DEF.match(self._conditional(text) or "")
            if m and m[2].strip() == "\\":
                pending = (m[1], [])
                continue
            out += self._expand(path, shown, n, text, depth)
        if saved_pwd is not None:
            self.params["_PWD"] = saved_pwd
        return out

    def _conditional(self, text: str) -> str | None:
        """The line without its @ID prefix, or None when the prefix excludes it."""
        s = text.lstrip()
        if not s.startswith("@"):
            return text
        m = re.match(r"@(\^?)(\S+)\s*(.*)$", s)
        if not m:
            return None
        matches = m[2] == self.config_id
        return m[3] if matches != bool(m[1]) else None

    def _expand(self, path: str, shown: str, n: int, text: str, depth: int,
                comments: bool = True) -> list[_Logical]:
        if depth > MAX_DEPTH:
            self.errors.append(ParseError(shown, n, "parameters or includes nested too deep"))
            return []
        text = self._conditional(text)
        if text is None:
            return []
        if comments:
            # before substitution, so that ${_HASH} and ${_BANG} give a literal # and !
            text = _strip_comment(text)
        m = _DEF.match(text)
        if m:
            self.params[m[1]] = m[2].strip()
            return []
        s = text.lstrip()
        if s.startswith("~SEQ"):
            return self._sequence(path, shown, n, s, depth)
        replaced = self._substitute(text)
        if replaced != text:
            # a value may hold several lines, definitions and more uses: read it again
            out = []
            for part in replaced.split("\n"):
                out += self._expand(path, shown, n, part, depth + 1, comments=False)
            return out
        words = text.split()
        if words and words[0] == "include":
            return self._include(path, shown, n, text, depth)
        return [_Logical(shown, n, text)] if words else []

    def _substitute(self, text: str) -> str:
        def one(m: re.Match) -> str:
            name = m[1] or m[2]
            return self.params[name] if name in self.params else m[0]
        return _USE.sub(one, text)

    def _sequence(self, path: str, shown: str, n: int, s: str, depth: int) -> list[_Logical]:
        m = _SEQ.match(s)
        try:
            parts = [p.strip() for p in m[2].split(",")]
            var, nums = parts[0], [int(p, 0) for p in parts[1:]]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var) or not 1 <= len(nums) <= 3:
                raise ValueError
        except (TypeError, ValueError):
            self.errors.append(ParseError(shown, n, f"bad ~SEQ: {s.split(')')[0]})"))
            return []
        if len(nums) == 1:
            end = nums[0]
            start = 1 if end > 0 else -1
        else:
            start, end = nums[0], nums[-1]
        step = nums[1] if len(nums) == 3 else (1 if end >= start else -1)
        rest = s[m.end():]
        out: list[_Logical] = []
        value = start
        while step and (value <= end if step > 0 else value >= end):
            self.params[var] = format(value, "x") if m[1] else str(value)
            out += self._expand(path, shown, n, rest, depth + 1)
            value += step
        return out

    def _include(self, path: str, shown: str, n: int, text: str, depth: int) -> list[_Logical]:
        pattern = " ".join(_tokens(text)[1:]) if len(text.split()) > 1 else ""
        if not pattern:
            self.errors.append(ParseError(shown, n, "include without a file"))
            return []
        base = os.path.dirname(path)
        full = pattern if os.path.isabs(pattern) else os.path.join(base, pattern)
        found = sorted(glob.glob(full))
        if not found:
            self.errors.append(ParseError(shown, n, f"include {pattern}: no such file"))
        out = []
        for f in found:
            # named as the including file is: relative when it was given relative
            out += self._file(f, os.path.normpath(os.path.join(os.path.dirname(shown),
                                                               os.path.relpath(f, base))),
                              depth + 1)
        return out

    # ---- logical lines -> tree --------------------------------------------------------------

    def _tree(self, lines: list[_Logical]) -> list[Node]:
        root: list[Node] = []
        stack: list[tuple[list[Node], Node | None]] = [(root, None)]
        for ln in lines:
            words: list[str] = []

            def finish() -> None:
                if words:
                    stack[-1][0].append(Node(words[0], words[1:], ln.file, ln.line))
                    words.clear()
            for tok in _tokens(ln.text, keep_braces=True):
                if tok == "{":
                    if words:
                        node = Node(words[0], words[1:], ln.file, ln.line, [])
                        stack[-1][0].append(node)
                        words.clear()
                    elif stack[-1][0] and stack[-1][0][-1].children is None:
                        node = stack[-1][0][-1]       # the brace is on the line after the keyword
                        node.children = []
                    else:
                        self.errors.append(ParseError(ln.file, ln.line, "'{' without a keyword"))
                        node = Node("", [], ln.file, ln.line, [])   # read on, report once
                    stack.append((node.children, node))
                elif tok == "}":
                    finish()
                    if len(stack) == 1:
                        self.errors.append(ParseError(ln.file, ln.line, "'}' without a '{'"))
                    else:
                        stack.pop()
                else:
                    words.append(tok)
            finish()
        for _, node in stack[1:]:
            if node.keyword:
                self.errors.append(ParseError(node.file, node.line,
                                              f"{node.keyword} {{ is never closed"))
        return root


def _strip_comment(text: str) -> str:
    """Cut at the first # or ! outside double quotes."""
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c in "#!" and not quoted:
            return text[:i]
    return text


def _tokens(text: str, keep_braces: bool = False) -> list[str]:
    """Words, quoted strings (without their quotes) and braces."""
    out = []
    for m in _TOKEN.finditer(text):
        if m[1] is not None:
            out.append(m[1].replace('\\"', '"'))
        elif m[2] is not None:
            if keep_braces:
                out.append(m[2])
        else:
            out.append(m[3])
    return out


def parse(path: str, config_id: str | None = None) -> tuple[list[Node], Reader]:
    reader = Reader(config_id or default_config_id())
    return reader.read(path), reader
