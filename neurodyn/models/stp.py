"""Rate network with short-term synaptic plasticity (primer Eqs. 48-49; Mongillo et al. 2008; Masse et al. 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .linear import recurrent
from .params import register_tensor
from .rate_rnn import RateRNN


class STPRateRNN(RateRNN):
    r"""Rate network whose synapses facilitate (``u``) and depress (``x``) with presynaptic activity.

    ::

        tau dr/dt = -r + f(W (u ⊙ x ⊙ r+) + W_in x_in + b)
        dx/dt = (1 - x) / tau_x - u x r+                       (Eq. 48)
        du/dt = (U - u) / tau_u + U (1 - u) r+                 (Eq. 49)

    so the effective weight from presynaptic unit ``j`` is ``w~_ij u_j x_j``
    (Mongillo, Barak & Tsodyks 2008; Masse et al. 2019). ``U`` in (0, 1], ``tau_u``
    and ``tau_x`` are scalars or per-neuron ``(n,)`` tensors, trainable with
    ``learn_stp=True``. The initial state is the resting one, ``r = 0, u = U, x = 1``
    (``u`` carries the gradient to ``U``). Other :class:`RateRNN` keywords keep their meaning.

    Bounds: with ``r+ = max(r, 0)`` the exact dynamics keep ``u`` and ``x`` in [0, 1]
    (at ``x = 0``, ``dx/dt = 1/tau_x > 0``; at ``x = 1``, ``dx/dt = -u r+ <= 0``; likewise
    for ``u``). A solver step need not: the Euler step is
    ``x <- (1 - dt a_x) x + dt/tau_x`` with ``a_x = 1/tau_x + u r+`` (and ``u`` likewise
    with ``a_u = 1/tau_u + U r+``), a convex combination of the old value and its
    target in [0, 1] exactly when ``dt a_x <= 1`` and ``dt a_u <= 1``. A larger ``dt``
    can overshoot (r+ = 110 Hz, dt = 0.02 s: x = -0.11), and ``dt a_x > 2`` oscillates
    with growing amplitude (r+ = 250 Hz, dt = 0.01 s). These rates grow with ``r+``, so
    :attr:`timescale` (``min(tau, tau_u, tau_x)``, state-independent) does not bound
    them: keep ``dt <= 1 / (1/min(tau_u, tau_x) + max r+)``, which bounds both, or use
    an adaptive solver. Nothing is clamped; ``simulate`` refuses a ``U`` outside (0, 1]
    (:meth:`check_parameters`; a trained ``U`` can step out of it).

    Noise: ``simulate(noise_std=...)`` adds noise to ``r`` only; the resource
    fractions ``u``, ``x`` take none (:meth:`state_noise` is 0 there).
    """

    def __init__(
        self,
        n: int,
        n_in: int = 0,
        n_out: int = 0,
        *,
        U: float | Tensor = 0.2,
        tau_u: float | Tensor = 1.5,
        tau_x: float | Tensor = 0.2,
        learn_stp: bool = False,
        activation: Any = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__(n, n_in, n_out, activation=activation, **kwargs)
        self.state_vars = {"r": n, "u": n, "x": n}
        shapes = ((), (n,))
        register_tensor(self, "U", U, trainable=learn_stp, positive=True, shapes=shapes, dtype=self.dtype)
        for name, value in (("tau_u", tau_u), ("tau_x", tau_x)):
            register_tensor(self, name, value, trainable=learn_stp, positive=True, shapes=shapes, dtype=self.dtype)
        self.check_parameters()

    def check_parameters(self) -> None:
        """``U`` must lie in (0, 1] (else ``u`` leaves [0, 1]); a trained ``U`` can step out of it."""
        U = self.U.detach()
        if not bool(((U > 0) & (U <= 1)).all()):
            raise ValueError(f"U must be in (0, 1], else u leaves [0, 1]; got {U.flatten().tolist()[:8]} (a trained "
                             "U can step out: clamp it, e.g. model.U.data.clamp_(1e-3, 1), or train with a smaller lr)")

    def initial_state(self, batch_size: int = 1) -> Any:
        r = torch.zeros(batch_size, self.n, device=self.device, dtype=self.dtype)
        return self.State(r, self.U.expand(batch_size, self.n).clone(), torch.ones_like(r))

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r, u, x = state
        pre = torch.relu(r)
        dr = self.rate_derivative(r, recurrent(u * x * pre, self.W, drive))
        dx = (1 - x) / self.tau_x - u * x * pre
        du = (self.U - u) / self.tau_u + self.U * (1 - u) * pre
        return self.State(dr, du, dx)

    @property
    def timescale(self) -> float:
        return float(min(tau.detach().min() for tau in (self.tau, self.tau_u, self.tau_x)))

    def state_tau(self) -> Tensor:
        n = self.n
        return torch.cat([self.tau.expand(n), self.tau_u.expand(n), self.tau_x.expand(n)])

    def state_noise(self) -> Tensor:
        """The default ``sqrt(2 / tau)`` on ``r``, 0 on ``u`` and ``x`` (bounded fractions take no additive noise)."""
        return torch.cat([super().state_noise()[: self.n], self.tau.new_zeros(2 * self.n)])
