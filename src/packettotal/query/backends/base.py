"""What every backend's translator implements: one method per node kind, dispatched by the node's
class, and the neutral mapping every backend shares (catalogue fields behind a name or alias,
typed values from query/values.py). A new backend subclasses Translator and renders each node."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, TypeVar

from .. import fields as catalog
from ..nodes import And, Captures, Cidr, Exists, MatchAll, Node, Not, Or, Phrase, Range, Term, Wildcard

Q = TypeVar("Q")


class OutsideCatalogue(LookupError):
    """The field is not in the catalogue: the backend searches its generic JSON index instead."""


class Translator(ABC, Generic[Q]):
    def translate(self, node: Node) -> Q:
        method: Callable[[Node], Q] = getattr(self, "convert_" + type(node).__name__.lower())
        return method(node)

    def each_field(self, name: str, build: Callable[[catalog.Field], Q]) -> Q:
        """One query per catalogue field behind `name` (an alias names several), any of them."""
        fs = catalog.resolve(name)
        if fs is None:
            raise OutsideCatalogue(name)
        qs = [build(f) for f in fs]
        return qs[0] if len(qs) == 1 else self.any_of(qs)

    @abstractmethod
    def any_of(self, queries: list[Q]) -> Q: ...

    @abstractmethod
    def convert_matchall(self, node: MatchAll) -> Q: ...

    @abstractmethod
    def convert_captures(self, node: Captures) -> Q: ...

    @abstractmethod
    def convert_and(self, node: And) -> Q: ...

    @abstractmethod
    def convert_or(self, node: Or) -> Q: ...

    @abstractmethod
    def convert_not(self, node: Not) -> Q: ...

    @abstractmethod
    def convert_term(self, node: Term) -> Q: ...

    @abstractmethod
    def convert_phrase(self, node: Phrase) -> Q: ...

    @abstractmethod
    def convert_wildcard(self, node: Wildcard) -> Q: ...

    @abstractmethod
    def convert_range(self, node: Range) -> Q: ...

    @abstractmethod
    def convert_cidr(self, node: Cidr) -> Q: ...

    @abstractmethod
    def convert_exists(self, node: Exists) -> Q: ...
