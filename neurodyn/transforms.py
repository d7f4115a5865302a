"""Whether autodiff that neurodyn's custom ``torch.autograd.Function``\\ s stay out of is running."""

from __future__ import annotations

import torch
from torch._C._functorch import TransformType, get_interpreter_stack
from torch.autograd import forward_ad


def transforms_active() -> bool:
    """A ``torch.func`` transform (grad, jvp, jacrev, vmap, ...) or forward-mode AD
    (``torch.autograd.forward_ad``) is active: the fused kernels then give way to plain torch ops."""
    return torch._C._are_functorch_transforms_active() or forward_ad._current_level >= 0


def vmap_active() -> bool:
    """``torch.func.vmap`` is among the active transforms (tensors then carry a hidden batch of values)."""
    return any(level.key() == TransformType.Vmap for level in get_interpreter_stack() or ())
