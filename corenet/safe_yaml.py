"""YAML with bounded resources: what a config file may hold before corenet builds anything from it.

:func:`load_yaml` reads one YAML document with PyYAML's safe loader (no tags that make
objects) and refuses, with a one-line message naming the file, the line and the key
path (``network.layers[2].args``), and never echoing a value:

- nesting deeper than :data:`MAX_DEPTH` levels, counted while the file is read (a
  ``[[[[...`` file cannot exhaust the stack) and again with aliases followed;
- aliases that expand to more than :data:`MAX_VALUES` values or refer to themselves (a
  "billion laughs" file fails at once: sizes are counted on the shared nodes, never by
  expanding them);
- integers outside ±2**63 (a 5,000-digit integer is refused by its length, before
  Python converts it);
- a key given twice in one mapping (YAML would silently keep the last one).

It also reads ``5e-4`` as a float (YAML 1.1 wants ``5.0e-4``).
"""

from __future__ import annotations

import re
import reprlib

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: mappings and lists inside each other, the document itself being level 1
MAX_DEPTH = 32
#: scalars, lists and mappings in the document once every alias is expanded
MAX_VALUES = 100_000
#: integers must lie in [-INTEGER_BOUND, INTEGER_BOUND)
INTEGER_BOUND = 2**63
#: longest integer literal looked at (2**63 in binary, 0b prefix and underscores included)
MAX_INTEGER_CHARS = 100
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_short = reprlib.Repr()
_short.maxstring = 40


class YAMLLimitError(Exception):
    """A document breaks one of the limits; ``line`` (1-based) and ``path`` say where."""

    def __init__(self, line: int, path: str, message: str) -> None:
        super().__init__(message)
        self.line, self.path, self.message = line, path, message


class _Loader(yaml.SafeLoader):
    """SafeLoader that checks depth, integers and duplicate keys while it composes the node graph
    and remembers each node's key path for messages."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.key_path: list[str] = []
        self.depth = 0
        self.paths: dict[int, str] = {}

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):  # a node composed before: checked then
            return super().compose_node(parent, index)
        step = _step(parent, index)
        self.key_path.append(step)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:  # mapping keys count too: a key can hold a mapping with keys...
                raise YAMLLimitError(self.peek_event().start_mark.line + 1, self.path(),
                                     f"nested more than {MAX_DEPTH} levels deep")
            node = super().compose_node(parent, index)
            self.paths[id(node)] = self.path()
            self._check(node)
            return node
        finally:
            self.depth -= 1
            self.key_path.pop()

    def path(self) -> str:
        return "".join(self.key_path).lstrip(".") or "(top level)"

    def _check(self, node: Node) -> None:
        if isinstance(node, ScalarNode) and node.tag == _INT_TAG:
            self._check_integer(node)
        elif isinstance(node, MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line, identity = key.start_mark.line + 1, (key.tag, key.value)
                if identity in seen:
                    raise YAMLLimitError(line, self.path(), f"duplicate key {_short.repr(key.value)} (first on "
                                                            f"line {seen[identity]}, again on line {line}); "
                                                            f"give each key once")
                seen[identity] = line

    def _check_integer(self, node: ScalarNode) -> None:
        line = node.start_mark.line + 1
        digits = len(re.sub(r"[^0-9a-fA-F]", "", re.sub(r"^[-+]?0[xXoObB]", "", node.value)))
        if len(node.value) > MAX_INTEGER_CHARS:
            raise YAMLLimitError(line, self.path(), f"an integer of {digits} digits; integers must lie "
                                                    f"within ±2**63 (about ±9.2e18)")
        if not -INTEGER_BOUND <= self.construct_yaml_int(node) < INTEGER_BOUND:
            raise YAMLLimitError(line, self.path(), f"an integer of {digits} digits, outside ±2**63 "
                                                    f"(about ±9.2e18)")


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _step(parent, index) -> str:
    """The key path part of a node composed under ``parent``: ``.key``, ``[3]``, or "" (the document,
    a mapping's key, a value under a key that is not a scalar)."""
    if isinstance(parent, SequenceNode) and isinstance(index, int):
        return f"[{index}]"
    if isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
        return f".{_short.repr(index.value)[1:-1]}"
    return ""


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _measure(root: Node, paths: dict[int, str]) -> None:
    """Refuse a node graph that refers to itself, or whose expansion is too large or too deep.

    Iterative depth-first walk over the shared nodes: each node's expanded size and depth
    are computed once from its children's, so a billion-laughs file costs its own size.
    """
    measured: dict[int, tuple[int, int]] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]

    def refuse(node: Node, message: str) -> YAMLLimitError:
        return YAMLLimitError(node.start_mark.line + 1, paths.get(id(node), "(top level)"), message)

    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            entered.discard(key)
            children = _children(node)
            size = 1 + sum(measured[id(child)][0] for child in children)
            depth = 1 + max((measured[id(child)][1] for child in children), default=0)
            if size > MAX_VALUES:
                raise refuse(node, f"its aliases expand to more than {MAX_VALUES} values; a config is small, "
                                   f"so corenet stops here")
            if depth > MAX_DEPTH:
                raise refuse(node, f"its aliases nest values more than {MAX_DEPTH} levels deep")
            measured[key] = (size, depth)
            continue
        if key in measured:
            continue
        entered.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in entered:
                raise refuse(child, "an alias refers to the value that contains it (a cycle)")
            if id(child) not in measured:
                stack.append((child, False))


def load_yaml(text: str):
    """The one document in ``text`` as Python values, or None for an empty document.

    Raises :class:`YAMLLimitError` for a limit (see the module docstring) and
    ``yaml.YAMLError`` for invalid YAML.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, loader.paths)
        return loader.construct_document(node)
    finally:
        loader.dispose()
