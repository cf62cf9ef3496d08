"""Digests of Python source that change with the code, not with its comments, docstrings or layout.

The numerics-revisions ledger (benchmark/engine/revisions.py) compares these against the code. A digest is
sha256 over the source's tokens (``tokenize``) with comments, blank-line tokens and docstrings
dropped; string literals are compared by value (the quote style is layout), indentation by depth,
a trailing comma before a closing bracket is dropped, and Python 3.12's split f-string tokens are
joined back into the one token 3.10 and 3.11 give, so a digest is the same on every Python this
package runs on. Neither ``ast.dump`` nor the byte code are used: both differ between versions.

A function's digest (``function_digest``) covers the function and, transitively, the module-level
functions, classes and constants of the same module that it names; names imported from other
modules are not followed (a part that depends on them lists their files itself).
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize

DIGEST_LENGTH = 16  # hex characters kept: enough to tell two versions of one part apart

_DROPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
# Python 3.12 and later tokenize an f-string as FSTRING_START ... FSTRING_END (3.14: TSTRING_*).
_OPENS = {getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)}
_CLOSES = {getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)}


def _offsets(source: str) -> list[int]:
    """Character offset of the start of each line (1-based line numbers index it)."""
    starts, pos = [0, 0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _docstrings(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every module, class and function docstring."""
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                spans.append(((first.lineno, first.col_offset), (first.end_lineno, first.end_col_offset)))
    return spans


def _string(text: str) -> str:
    """A string literal by its value where it has one (``'a'`` and ``"a"`` are the same code)."""
    try:
        return repr(ast.literal_eval(text))
    except (ValueError, SyntaxError):  # an f-string: its text, which holds code
        return text


def tokens(source: str) -> list[str]:
    """The source's tokens as the digest sees them (see the module docstring)."""
    docs = _docstrings(ast.parse(source))
    starts = _offsets(source)
    out: list[str] = []
    depth, opened = 0, None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in _OPENS:
            if depth == 0:
                opened = tok.start
            depth += 1
            continue
        if depth:
            if tok.type in _CLOSES:
                depth -= 1
                if depth == 0:  # the whole f-string, as one STRING token, as before 3.12
                    a = starts[opened[0]] + opened[1]
                    b = starts[tok.end[0]] + tok.end[1]
                    out.append(source[a:b])
            continue
        if tok.type in _DROPPED:
            continue
        if tok.type == tokenize.STRING:
            if any(s <= tok.start and tok.end <= e for s, e in docs):
                continue
            out.append(_string(tok.string))
        elif tok.type == tokenize.NEWLINE:
            if out and out[-1] != "\n":
                out.append("\n")
        elif tok.type == tokenize.INDENT:
            out.append("<indent>")
        elif tok.type == tokenize.DEDENT:
            out.append("<dedent>")
        elif tok.type == tokenize.OP and tok.string in ")]}" and out and out[-1] == ",":
            out[-1] = tok.string  # a trailing comma is layout
        else:
            out.append(tok.string)
    return out


def _hash(parts: list[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:DIGEST_LENGTH]


def source_digest(source: str) -> str:
    """The digest of a whole module's source."""
    return _hash(tokens(source))


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Module-level name -> the statement that defines it (functions, classes, assignments)."""
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defs[name.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defs[node.target.id] = node
    return defs


def referenced(source: str, names: list[str]) -> list[str]:
    """``names`` and every module-level name they reach through the names they use, sorted.
    KeyError for a name the module does not define."""
    tree = ast.parse(source)
    defs = _top_level(tree)
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in defs:
            raise KeyError(name)
        seen.add(name)
        todo.extend(n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and n.id in defs)
    return sorted(seen)


def function_digest(source: str, names: list[str]) -> str:
    """The digest of the functions ``names`` of a module and of what they reference in it."""
    tree = ast.parse(source)
    defs = _top_level(tree)
    lines = source.splitlines(keepends=True)
    parts = []
    for name in referenced(source, names):
        node = defs[name]
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        parts += [name, *tokens("".join(lines[first - 1:node.end_lineno]))]
    return _hash(parts)
