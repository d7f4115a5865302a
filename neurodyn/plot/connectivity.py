"""Connectivity matrices sorted into E/I blocks or by selectivity (primer Fig. 7; Song et al. 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..analysis.selectivity import SelectivityOrder
from ._common import axes, to_numpy


def connectivity(
    model: Any,
    *,
    selectivity: Any = None,
    threshold: float | None = None,
    n_e: int | None = None,
    ax: Any = None,
    cmap: str = "RdBu",
) -> Any:
    """The effective recurrent matrix ``W[post, pre]`` as an image, sorted for reading.

    Units are grouped into excitatory then inhibitory blocks (``model.n_e``, or
    ``n_e`` for a plain matrix) and, within each block, sorted by decreasing
    ``selectivity`` (e.g. d' for choice 1 vs choice 2), as in the primer's
    Fig. 7 and as :func:`~neurodyn.analysis.selectivity.sort_by_selectivity` orders
    them. With ``threshold``, only units with ``|selectivity| >= threshold`` are shown.
    The colour scale is symmetric about 0: blue excitatory, red inhibitory weights (the
    primer's colours for E and I).

    Args:
        model: a model with ``.W`` (``(n, n)`` tensor) or the matrix itself.
        selectivity: ``(n,)`` per-unit values to sort units by within their block, or the
            ``SelectivityOrder`` that ``sort_by_selectivity`` returns.
        threshold: keep only units whose ``|selectivity|`` reaches it.
        n_e: number of excitatory units for a plain matrix (default ``model.n_e`` or none).

    Returns:
        The Axes; the image (gid ``"connectivity"``) shows ``W[order][:, order]``
        with ``order = np.concatenate(unit_blocks(...))``.
    """
    W = getattr(model, "W", model)
    if not isinstance(W, (torch.Tensor, np.ndarray, list, tuple)):
        raise TypeError(f"connectivity needs a model with an (n, n) tensor W, or the matrix itself; got "
                        f"{type(model).__name__} (for a wrapped or ensembled network, pass its matrix)")
    W = to_numpy(W).astype(float)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"the connectivity must be a square (n, n) matrix; got shape {W.shape}")
    n = W.shape[0]
    n_e = getattr(model, "n_e", None) if n_e is None else n_e
    blocks = unit_blocks(n, n_e=n_e, selectivity=selectivity, threshold=threshold)
    order = np.concatenate(blocks)
    shown = W[np.ix_(order, order)]
    vmax = float(np.abs(shown).max()) or 1.0
    ax = axes(ax)
    image = ax.imshow(shown, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest", gid="connectivity")
    ax.figure.colorbar(image, ax=ax, label="W (post, pre)")
    if n_e is not None:
        edge = len(blocks[0]) - 0.5
        ax.axhline(edge, color="black", linewidth=1.0, gid="ei-boundary")
        ax.axvline(edge, color="black", linewidth=1.0, gid="ei-boundary")
        for start, stop, name in ((0, len(blocks[0]), "E"), (len(blocks[0]), len(order), "I")):
            if stop > start:
                ax.text((start + stop - 1) / 2, -1.0, name, ha="center", va="bottom",
                        color="tab:blue" if name == "E" else "tab:red", fontweight="bold")
    ax.set(xlabel="presynaptic unit" + (" (sorted by selectivity)" if selectivity is not None else ""),
           ylabel="postsynaptic unit")
    ax.set_title("recurrent connectivity", pad=16)
    return ax


def unit_blocks(n: int, *, n_e: int | None = None, selectivity: Any = None,
                threshold: float | None = None) -> list[np.ndarray]:
    """Unit indices of each block (E then I, or one block), by decreasing ``selectivity`` within it (ties in
    unit order)."""
    if n_e is not None and not 0 <= int(n_e) <= n:
        raise ValueError(f"n_e must be between 0 and n={n}; got {n_e}")
    blocks = [np.arange(n)] if n_e is None else [np.arange(int(n_e)), np.arange(int(n_e), n)]
    if selectivity is None:
        if threshold is not None:
            raise ValueError("threshold needs selectivity; pass selectivity=... or drop threshold")
        return blocks
    if isinstance(selectivity, SelectivityOrder):  # its values are in sorted order: back to per-unit ones
        per_unit = np.empty(len(selectivity.order))
        per_unit[to_numpy(selectivity.order)] = to_numpy(selectivity.selectivity)
        selectivity = per_unit
    sel = to_numpy(selectivity).astype(float).reshape(-1)
    if sel.shape[0] != n:
        raise ValueError(f"selectivity must have one value per unit (n={n}); got {sel.shape[0]}")
    keep = np.ones(n, bool) if threshold is None else np.abs(sel) >= threshold
    if not keep.any():
        raise ValueError(f"no unit reaches |selectivity| >= {threshold}; lower the threshold")
    return [b[keep[b]][np.argsort(-sel[b[keep[b]]], kind="stable")] for b in blocks]
