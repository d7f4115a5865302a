"""The leaf tensors an autograd graph was made from."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor


class Leaves:
    """The leaf tensors requiring grad that outputs were computed from (the ends of their graphs),
    accumulated over calls. The graphs of the ``stop`` tensors are not walked (what they were made from
    belongs to them); the rest of the graph that existed before the first call is walked once, not per
    call: its nodes are older than ``self.start``.
    """

    def __init__(self, stop: Sequence[Tensor] = ()) -> None:
        self.start = _sequence_number(torch.zeros((), requires_grad=True).mul(1).grad_fn)
        self.stops = [v.grad_fn for v in stop if v.grad_fn is not None]
        self.walked: set = set(self.stops)  # nodes made before the first call, already walked
        self.found: dict[int, Tensor] = {}
        self.behind: set[int] | None = None  # ids of the leaves the stop tensors were made from

    def __call__(self, outputs: Sequence[Tensor]) -> list[Tensor]:
        self._walk(out.grad_fn for out in outputs if out.grad_fn is not None)
        return list(self.found.values())

    def behind_stop(self, leaves: Sequence[Tensor]) -> bool:
        """Whether any of ``leaves`` was also used to make a ``stop`` tensor."""
        if self.behind is None:
            upstream = Leaves()
            upstream._walk(self.stops)
            self.behind = set(upstream.found)
        return any(id(v) in self.behind for v in leaves)

    def _walk(self, nodes: Iterable[Any]) -> None:
        nodes, seen = list(nodes), set()
        while nodes:
            node = nodes.pop()
            if node in seen or node in self.walked:
                continue
            seen.add(node)
            if _sequence_number(node) < self.start:
                self.walked.add(node)
            leaf = getattr(node, "variable", None)  # an AccumulateGrad node
            if leaf is not None:
                self.found[id(leaf)] = leaf
            nodes.extend(n for n, _ in node.next_functions if n is not None)


def _sequence_number(node: Any) -> float:
    """The order in which autograd made ``node`` (its backward-ordering counter); inf where torch has none."""
    number = getattr(node, "_sequence_nr", None)
    return number() if number is not None else math.inf
