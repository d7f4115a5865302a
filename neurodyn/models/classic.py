"""Classic low-dimensional circuits for teaching and validation.

Every scalar parameter is a named tensor on the model (``model.mu0``,
``model.wEE``): a buffer by default, an ``nn.Parameter`` when listed in
``trainable``. Either can be swept by name (continuation, bifurcation
diagrams) or set with ``torch.func.functional_call``. Pass ``dtype=torch.float64``
to hold the published values exactly in double precision (``.double()`` on a
float32 model keeps their float32 rounding).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ..validation import as_int, as_real
from .base import Model
from .linear import linear
from .params import check_trainable, register_tensor


class ClassicModel(Model):
    """A low-dimensional model whose parameters are named scalar tensors."""

    def _register_parameters(self, values: dict[str, Any], positive: Iterable[str], trainable: Iterable[str],
                             dtype: torch.dtype | None) -> None:
        chosen, positive = check_trainable(trainable, values), set(positive)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype such as torch.float64; got {dtype!r}")
        for name, value in values.items():
            register_tensor(self, name, value, trainable=name in chosen, positive=name in positive,
                            dtype=dtype or torch.get_default_dtype())
        self.parameter_names: tuple[str, ...] = tuple(values)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={float(getattr(self, k).detach()):g}" for k in self.parameter_names)


def _linear_over_expm1(u: Tensor) -> Tensor:
    """``u / (1 - exp(-u))``, finite with a finite gradient for every real ``u`` (limit 1 at u = 0)."""
    # each branch sees only arguments where it is finite, so unused branches keep gradients finite
    pos = torch.where(u >= 1e-2, u, torch.ones_like(u))
    neg = torch.where(u <= -1e-2, u, -torch.ones_like(u))
    near = torch.where(u.abs() < 1e-2, u, torch.zeros_like(u))
    return torch.where(
        u >= 1e-2,
        pos / -torch.expm1(-pos),
        torch.where(u <= -1e-2, neg * torch.exp(neg) / torch.expm1(neg), 1 + near / 2 + near**2 / 12 - near**4 / 720),
    )


class WongWang(ClassicModel):
    r"""Reduced two-variable decision model (Wong & Wang 2006, J. Neurosci. 26:1314).

    Time in seconds; ``S1, S2`` are the NMDA gating variables of the two
    selective populations, ``x_i`` their input currents (nA), ``H`` their rates (Hz)::

        dS_i/dt = -S_i / tau_S + (1 - S_i) gamma H(x_i)
        x_1 = J_N11 S1 - J_N12 S2 + I_0 + J_ext mu0 (1 + coherence/100) + x_in[0]
        x_2 = J_N22 S2 - J_N21 S1 + I_0 + J_ext mu0 (1 - coherence/100) + x_in[1]
        H(x) = (a x - b) / (1 - exp(-d (a x - b)))

    ``mu0 >= 0`` is the stimulus strength (Hz) and ``coherence`` c' (percent, in [-100, 100]).
    Defaults are the published ones: a = 270 Hz/nA, b = 108 Hz, d = 0.154 s,
    gamma = 0.641, tau_S = 0.1 s, J_N11 = J_N22 = 0.2609 nA, J_N12 = J_N21 = 0.0497 nA,
    I_0 = 0.3255 nA, J_ext = 5.2e-4 nA/Hz. The optional input ``x_in (B, 2)``
    adds currents (nA) to each population, e.g. a time-varying stimulus from
    :meth:`stimulus_current`.

    Noise: ``simulate(noise_std=...)`` adds white noise to ``S`` itself,
    ``noise_std sqrt(2 dt / tau_S) N(0, 1)`` per step, which is not the paper's
    noise and can push ``S`` outside [0, 1]. Wong & Wang 2006 put the noise on the
    input currents, an Ornstein–Uhlenbeck process with ``tau_AMPA = 2 ms`` and
    ``sigma = 0.02 nA``: pass such a current as ``x_in`` instead.
    """

    state_vars = {"S1": 1, "S2": 1}
    n_in = 2

    def __init__(
        self,
        *,
        mu0: float = 0.0,
        coherence: float = 0.0,
        a: float = 270.0,
        b: float = 108.0,
        d: float = 0.154,
        gamma: float = 0.641,
        tau_S: float = 0.1,
        J_N11: float = 0.2609,
        J_N22: float = 0.2609,
        J_N12: float = 0.0497,
        J_N21: float = 0.0497,
        I_0: float = 0.3255,
        J_ext: float = 5.2e-4,
        trainable: Iterable[str] = (),
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        as_real("mu0", mu0, ge=0)
        as_real("coherence", coherence, ge=-100, le=100)
        values = dict(mu0=mu0, coherence=coherence, a=a, b=b, d=d, gamma=gamma, tau_S=tau_S, J_N11=J_N11,
                      J_N22=J_N22, J_N12=J_N12, J_N21=J_N21, I_0=I_0, J_ext=J_ext)
        self._register_parameters(values, positive=("a", "d", "gamma", "tau_S"), trainable=trainable, dtype=dtype)

    def H(self, x: Tensor) -> Tensor:  # noqa: N802 - the paper's symbol
        """Population rate (Hz) ``H(x) = (a x - b) / (1 - exp(-d (a x - b)))``, smooth through ``a x = b``."""
        return _linear_over_expm1(self.d * (self.a * x - self.b)) / self.d

    def stimulus_current(self, mu0: Tensor | float, coherence: Tensor | float) -> Tensor:
        """Stimulus currents ``J_ext mu0 (1 ± coherence/100)`` stacked on a last axis of size 2."""
        mu0 = torch.as_tensor(mu0, dtype=self.dtype, device=self.device)
        coherence = torch.as_tensor(coherence, dtype=self.dtype, device=self.device)
        return torch.stack(torch.broadcast_tensors(self.J_ext * mu0 * (1 + coherence / 100),
                                                   self.J_ext * mu0 * (1 - coherence / 100)), dim=-1)

    def currents(self, state: Any, drive: Tensor | None = None) -> Tensor:
        """Total input currents ``(B, 2)`` (nA) of the two populations."""
        S1, S2 = state[0], state[1]
        x = torch.cat([self.J_N11 * S1 - self.J_N12 * S2, self.J_N22 * S2 - self.J_N21 * S1], dim=-1)
        x = x + self.I_0 + self.stimulus_current(self.mu0, self.coherence)
        return x if drive is None else x + drive

    def rates(self, state: Any, drive: Tensor | None = None) -> Tensor:
        """Firing rates ``H(x_i)`` (Hz) of the two populations ``(B, 2)``."""
        return self.H(self.currents(state, drive))

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        S = torch.cat([state[0], state[1]], dim=-1)
        dS = -S / self.tau_S + (1 - S) * self.gamma * self.rates(state, drive)
        return self.State(dS[:, :1], dS[:, 1:])

    @property
    def timescale(self) -> float:
        return float(self.tau_S.detach())

    def state_tau(self) -> Tensor:
        return self.tau_S.expand(2).to(self.dtype)


def _shifted_sigmoid(z: Tensor, a: Tensor, theta: Tensor) -> Tensor:
    return torch.sigmoid(a * (z - theta)) - torch.sigmoid(-a * theta)


def _logistic(z: Tensor, a: Tensor, theta: Tensor) -> Tensor:
    return torch.sigmoid(a * (z - theta))


class WilsonCowan(ClassicModel):
    r"""Wilson–Cowan excitatory/inhibitory population model (Wilson & Cowan 1972, Biophys. J. 12:1).

    ::

        tauE dE/dt = -E + (1 - rE E) F(wEE E - wEI I + I_ext_E + x[0]; aE, thetaE)
        tauI dI/dt = -I + (1 - rI I) F(wIE E - wII I + I_ext_I + x[1]; aI, thetaI)

    ``sigmoid="shifted"`` uses ``F(z) = 1/(1 + exp(-a (z - theta))) - 1/(1 + exp(a theta))``
    so that ``F(0) = 0`` (Wilson & Cowan 1972); ``"logistic"`` drops the shift.
    The refractory factor implemented is ``(1 - rE E)`` (Neuromatch Academy's
    form). Wilson & Cowan 1972 write ``(k_e - r_e E)`` with ``k_e = F(inf) =
    1 - 1/(1 + exp(aE thetaE))`` (0.966 for the default aE, thetaE; ``k_i`` likewise):
    this model has 1 in place of ``k_e`` and ``k_i``.
    Defaults (Wilson & Cowan 1972's gains and thresholds with the Neuromatch
    Academy couplings): tauE = 1, tauI = 2, aE = 1.2, thetaE = 2.8, aI = 1,
    thetaI = 4, wEE = 9, wEI = 4, wIE = 13, wII = 11, no refractory term
    (rE = rI = 0); fixed points (0, 0) stable, (0.3369, 0.1684) saddle,
    (0.9384, 0.6725) stable.
    """

    state_vars = {"E": 1, "I": 1}
    n_in = 2

    def __init__(
        self,
        *,
        tauE: float = 1.0,
        tauI: float = 2.0,
        aE: float = 1.2,
        thetaE: float = 2.8,
        aI: float = 1.0,
        thetaI: float = 4.0,
        wEE: float = 9.0,
        wEI: float = 4.0,
        wIE: float = 13.0,
        wII: float = 11.0,
        I_ext_E: float = 0.0,
        I_ext_I: float = 0.0,
        rE: float = 0.0,
        rI: float = 0.0,
        sigmoid: str = "shifted",
        trainable: Iterable[str] = (),
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sigmoids = {"shifted": _shifted_sigmoid, "logistic": _logistic}
        if sigmoid not in sigmoids:
            raise ValueError(f"sigmoid must be one of {list(sigmoids)}; got {sigmoid!r}")
        self.sigmoid, self._F = sigmoid, sigmoids[sigmoid]
        values = dict(tauE=tauE, tauI=tauI, aE=aE, thetaE=thetaE, aI=aI, thetaI=thetaI, wEE=wEE, wEI=wEI,
                      wIE=wIE, wII=wII, I_ext_E=I_ext_E, I_ext_I=I_ext_I, rE=rE, rI=rI)
        self._register_parameters(values, positive=("tauE", "tauI", "aE", "aI"), trainable=trainable, dtype=dtype)

    def F(self, z: Tensor, a: Tensor, theta: Tensor) -> Tensor:  # noqa: N802 - the paper's symbol
        """The population gain function (see the class docstring)."""
        return self._F(z, a, theta)

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        E, I = state[0], state[1]  # noqa: E741 - the paper's symbol
        zE = self.wEE * E - self.wEI * I + self.I_ext_E + drive[:, :1]
        zI = self.wIE * E - self.wII * I + self.I_ext_I + drive[:, 1:]
        dE = (-E + (1 - self.rE * E) * self.F(zE, self.aE, self.thetaE)) / self.tauE
        dI = (-I + (1 - self.rI * I) * self.F(zI, self.aI, self.thetaI)) / self.tauI
        return self.State(dE, dI)

    @property
    def timescale(self) -> float:
        return float(torch.minimum(self.tauE, self.tauI).detach())

    def state_tau(self) -> Tensor:
        return torch.stack([self.tauE, self.tauI]).to(self.dtype)


class LinearIntegrator(ClassicModel):
    r"""Linear line attractor along a unit direction ``u``, with leak (Seung 1996, PNAS 93:13339).

    ::

        tau dr/dt = -r + (1 - leak) u (u . r) + W_in x,      y = u . r

    Along ``u`` the eigenvalue is ``-leak / tau`` (``leak = 0``: a perfect
    integrator, a line of fixed points); every orthogonal direction decays with
    ``-1 / tau``. ``W_in`` defaults to ``u`` for each input channel.
    """

    n_out = 1

    def __init__(
        self,
        n: int = 2,
        n_in: int = 1,
        *,
        direction: Tensor | None = None,
        tau: float = 0.1,
        leak: float = 0.0,
        W_in: Tensor | None = None,
        trainable: Iterable[str] = (),
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        n, n_in = as_int("n", n, 1), as_int("n_in", n_in, 0)
        self.n, self.n_in = n, n_in
        self.state_vars = {"r": n}
        given = isinstance(direction, Tensor) and torch.is_floating_point(direction)
        dtype = dtype or (direction.dtype if given else torch.get_default_dtype())
        direction = torch.ones(n) if direction is None else torch.as_tensor(direction)
        direction = direction.detach().to(torch.float64)
        if tuple(direction.shape) != (n,) or not torch.isfinite(direction).all() or direction.norm() == 0:
            raise ValueError(f"direction must be a finite nonzero vector of shape ({n},); got {direction!r}")
        self.register_buffer("direction", (direction / direction.norm()).to(dtype))
        chosen = check_trainable(trainable, ("tau", "leak", "W_in"))
        self._register_parameters(dict(tau=tau, leak=leak), positive=("tau",), trainable=chosen - {"W_in"}, dtype=dtype)
        W_in = self.direction[:, None].expand(n, n_in) if W_in is None else torch.as_tensor(W_in, dtype=dtype)
        register_tensor(self, "W_in", W_in, shapes=((n, n_in),), trainable="W_in" in chosen, dtype=dtype)

    def input_drive(self, x: Tensor) -> Tensor:
        return linear(x, self.W_in)

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        r = state[0]
        u = self.direction
        return self.State((-r + (1 - self.leak) * (r @ u)[:, None] * u + drive) / self.tau)

    def output(self, state: Any) -> Tensor:
        return (state[0] @ self.direction)[:, None]

    @property
    def timescale(self) -> float:
        return float(self.tau.detach())


class FitzHughNagumo(ClassicModel):
    r"""FitzHugh–Nagumo excitable neuron (FitzHugh 1961, Biophys. J. 1:445; Nagumo et al. 1962).

    ::

        dv/dt = v - v^3 / 3 - w + I_ext + x
        tau dw/dt = v + a - b w

    Defaults a = 0.7, b = 0.8, tau = 12.5 (FitzHugh 1961), ``I_ext = 0``: a stable
    rest state; ``I_ext = 0.5`` gives a limit cycle (a Hopf bifurcation near
    ``I_ext = 0.33``).
    """

    state_vars = {"v": 1, "w": 1}
    n_in = 1

    def __init__(
        self,
        *,
        a: float = 0.7,
        b: float = 0.8,
        tau: float = 12.5,
        I_ext: float = 0.0,
        trainable: Iterable[str] = (),
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._register_parameters(dict(a=a, b=b, tau=tau, I_ext=I_ext), positive=("tau",), trainable=trainable,
                                  dtype=dtype)

    def vector_field(self, t: Any, state: Any, drive: Tensor) -> Any:
        v, w = state[0], state[1]
        return self.State(v - v**3 / 3 - w + self.I_ext + drive, (v + self.a - self.b * w) / self.tau)

    @property
    def timescale(self) -> float:
        return min(1.0, float(self.tau.detach()))

    def state_tau(self) -> Tensor:
        return torch.stack([torch.ones_like(self.tau), self.tau]).to(self.dtype)


__all__ = ["ClassicModel", "FitzHughNagumo", "LinearIntegrator", "WilsonCowan", "WongWang"]
