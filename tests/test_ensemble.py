"""neurodyn.Ensemble: K stacked networks == the K networks run one by one (float64, 1e-10)."""

from __future__ import annotations

import pytest
import torch

import neurodyn as nd
from neurodyn.learning import fit
from neurodyn.models import STPRateRNN
from neurodyn.tasks import PerceptualDecisionMaking

F64 = torch.float64
K, B, N = 3, 4, 6


def rate_rnn(seed: int) -> nd.RateRNN:
    """A RateRNN whose weights, bias and tau all differ with the seed."""
    g = torch.Generator().manual_seed(seed)
    tau = 0.05 + 0.1 * torch.rand(N, generator=g, dtype=F64)
    return nd.RateRNN(N, 2, 2, tau=tau, W=1.5 * torch.randn(N, N, generator=g, dtype=F64) / N**0.5,
                      W_in=torch.randn(N, 2, generator=g, dtype=F64), b=0.1 * torch.randn(N, generator=g, dtype=F64))


def stp(seed: int) -> STPRateRNN:
    """A three-variable model (r, u, x) in float64; its weights come from the seeded global RNG."""
    return STPRateRNN(N, 2, 1, U=0.2 + 0.1 * seed / 10).double()


def inputs(t: torch.Tensor, rows: int = B) -> torch.Tensor:
    return torch.randn(rows, len(t), 2, dtype=F64, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("factory", [rate_rnn, stp])
@pytest.mark.parametrize("solver,gradient", [("rk4", "backprop"), ("euler", "checkpoint")])
def test_ensemble_trajectories_and_gradients_match_the_networks_run_one_by_one(factory, solver, gradient):
    ens = nd.ensemble(factory, K, seed=10)
    members = ens.unstack()
    t = torch.linspace(0, 0.4, 21, dtype=F64)
    x = inputs(t)
    state0 = torch.rand(B, members[0].dim, dtype=F64)
    traj = ens.simulate(t, x, state0, solver=solver, dt=0.01, gradient=gradient)
    assert traj.flat().shape == (K * B, len(t), members[0].dim)
    ens_out = ens.split(traj.outputs)
    # loss = sum over networks of each one's own mean squared output
    (ens_out.pow(2).mean((1, 2, 3)).sum()).backward()
    stacked = {n: p.grad for n, p in ens.stacked.items()}

    for k, model in enumerate(members):
        one = nd.simulate(model, t, x, state0, solver=solver, dt=0.01, gradient=gradient)
        torch.testing.assert_close(ens.split(traj.flat())[k], one.flat(), rtol=0, atol=1e-10)
        torch.testing.assert_close(ens_out[k], one.outputs, rtol=0, atol=1e-10)
        one.outputs.pow(2).mean().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(stacked[name.replace(".", "__")][k], p.grad, rtol=0, atol=1e-10)


def dale_rate_rnn(seed: int) -> nd.RateRNN:
    """A RateRNN with Dale's law, a sparse mask, a fixed part, no trainable bias, relu and a learned tau."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.tensor([1.0] * (N - 2) + [-1.0] * 2, dtype=F64)
    tau, W = 0.05 + 0.1 * torch.rand(N, generator=g, dtype=F64), torch.rand(N, N, generator=g, dtype=F64)
    b, mask = 0.1 * torch.randn(N, generator=g, dtype=F64), torch.rand(N, N, generator=g) < 0.7
    return nd.RateRNN(N, 2, 2, tau=tau, activation="relu", W=W * mask * sign / N**0.5, sign=sign, bias=False, b=b,
                      mask=mask,
                      W_fix=0.01 * torch.rand(N, N, generator=g, dtype=F64) * sign, learn_tau=True,
                      W_in=torch.randn(N, 2, generator=g, dtype=F64))


@pytest.mark.parametrize("shared_input", [False, True])
def test_ensemble_batched_rate_rnn_path_matches_with_dale_mask_and_learned_tau(shared_input):
    # RateRNN members run as batched matmuls over the stacked weights (not vmap); check that path in full
    ens = nd.ensemble(dale_rate_rnn, K, seed=4)
    members = ens.unstack()
    t = torch.linspace(0, 0.3, 16, dtype=F64)
    x = inputs(t, 1 if shared_input else K * B)
    rows = K if shared_input else K * B
    state0 = torch.rand(rows, N, dtype=F64, generator=torch.Generator().manual_seed(2))
    traj = nd.simulate(ens, t, x, state0, solver="midpoint", dt=0.01)
    traj.outputs.pow(2).sum().backward()
    b = rows // K
    for k, model in enumerate(members):
        one = nd.simulate(model, t, x if shared_input else x[k * b:(k + 1) * b], state0[k * b:(k + 1) * b],
                          solver="midpoint", dt=0.01)
        torch.testing.assert_close(ens.split(traj.outputs)[k], one.outputs, rtol=0, atol=1e-10)
        one.outputs.pow(2).sum().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(ens.stacked[name.replace(".", "__")].grad[k], p.grad, rtol=0, atol=1e-10)
    with torch.no_grad():  # the no-graph (in-place) branch gives the same trajectory
        torch.testing.assert_close(nd.simulate(ens, t, x, state0, solver="midpoint", dt=0.01).flat(),
                                   traj.flat(), rtol=0, atol=0)


def test_ensemble_of_rate_rnns_without_input_or_readout():
    ens = nd.ensemble(lambda seed: nd.RateRNN(N, tau=0.1).double(), K)
    t = torch.linspace(0, 0.5, 11, dtype=F64)
    state0 = torch.randn(B, N, dtype=F64, generator=torch.Generator().manual_seed(1))
    traj = ens.simulate(t, None, state0)
    assert traj.outputs is None
    for k, model in enumerate(ens.unstack()):
        one = nd.simulate(model, t, None, state0)
        torch.testing.assert_close(ens.split(traj["r"])[k], one["r"], rtol=0, atol=1e-10)


def test_ensemble_is_a_model_for_simulate_with_different_inputs_per_network():
    ens = nd.ensemble(rate_rnn, K, seed=3)
    t = torch.linspace(0, 0.3, 16, dtype=F64)
    x = inputs(t, K * B)  # network-major: rows k*B ... (k+1)*B - 1 drive network k
    traj = nd.simulate(ens, t, x, ens.initial_state(K * B), solver="midpoint", dt=0.005)
    for k, model in enumerate(ens.unstack()):
        one = nd.simulate(model, t, x[k * B:(k + 1) * B], solver="midpoint", dt=0.005)
        torch.testing.assert_close(ens.split(traj["r"])[k], one["r"], rtol=0, atol=1e-10)
    shared = nd.simulate(ens, t, x[:1], ens.initial_state(K))  # one input row shared by all networks
    assert shared["r"].shape == (K, len(t), N)


def test_ensemble_fit_equals_sequential_fits_with_the_same_seed():
    task = PerceptualDecisionMaking(dt=0.05)
    factory = lambda seed: nd.RateRNN(N, task.n_in, task.n_out, tau=0.1).double()  # noqa: E731
    ens = nd.ensemble(factory, K, seed=0)
    members = ens.unstack()
    kwargs = {"steps": 3, "lr": 1e-2, "batch_size": 4, "progress": False, "seed": 5, "eval_every": 100}
    history = ens.fit(task, **kwargs)
    assert len(history.loss) == 3
    losses = []
    for k, model in enumerate(members):
        losses.append(fit(model, task, **kwargs).loss)
        trained = ens.unstack()[k]
        for (name, p), q in zip(model.named_parameters(), trained.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=0, atol=1e-10, msg=f"network {k}, {name}")
    # the ensemble's loss is the mean of the networks' losses
    torch.testing.assert_close(torch.tensor(history.loss, dtype=F64), torch.tensor(losses, dtype=F64).mean(0),
                               rtol=1e-12, atol=0)
    assert all(not p._post_accumulate_grad_hooks for p in ens.parameters())  # the gradient scaling is removed


@pytest.mark.parametrize("gradient", ["checkpoint", "adjoint"])
def test_ensemble_fit_step_equals_sequential_steps_with_recomputing_gradients(gradient):
    """One SGD step: each network moves exactly as in its own fit (the K-scaling ran once per backward pass,
    not on each partial gradient inside the checkpointed segments or the adjoint: K^2 before)."""
    task = PerceptualDecisionMaking(dt=0.05)
    factory = lambda seed: nd.RateRNN(N, task.n_in, task.n_out, tau=0.1).double()  # noqa: E731
    ens = nd.ensemble(factory, K, seed=0)
    members = ens.unstack()
    kwargs = {"steps": 1, "batch_size": 4, "eval_batch_size": 4, "progress": False, "seed": 1, "solver": "rk4",
              "gradient": gradient, "optimizer": lambda params: torch.optim.SGD(params, lr=1.0)}
    ens.fit(task, **kwargs)
    for k, model in enumerate(members):
        fit(model, task, **kwargs)
        for (name, p), q in zip(model.named_parameters(), ens.unstack()[k].parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-7, atol=1e-9, msg=f"network {k}, {name}")


def test_ensemble_find_fixed_points_per_network():
    ens = nd.ensemble(rate_rnn, K, seed=1)
    init = torch.randn(5, N, dtype=F64, generator=torch.Generator().manual_seed(0))
    found = ens.find_fixed_points(init)
    assert len(found) == K
    for fps, model in zip(found, ens.unstack(), strict=True):
        alone = nd.find_fixed_points(model, init)
        torch.testing.assert_close(fps.states, alone.states, rtol=0, atol=1e-10)
        F = model.vector_field(0.0, model.State(fps.states), model.input_drive(torch.zeros(1, 2, dtype=F64)))
        assert F.r.abs().max() < 1e-6
    per_network = ens.find_fixed_points(init.expand(K, -1, -1))
    assert [len(f) for f in per_network] == [len(f) for f in found]


def test_ensemble_factory_seeds_each_network_and_restores_the_rng():
    before = torch.get_rng_state()
    ens = nd.ensemble(lambda seed: nd.RateRNN(N, 1, 1), K, seed=20)
    assert torch.equal(torch.get_rng_state(), before)
    for k, model in enumerate(ens.unstack()):
        torch.manual_seed(20 + k)
        ref = nd.RateRNN(N, 1, 1)
        for a, b in zip(model.parameters(), ref.parameters(), strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(*(m.W_in for m in ens.unstack()[:2]))


def test_ensemble_moves_dtype_and_keeps_the_originals_untouched():
    models = [nd.RateRNN(N, 2, 1) for _ in range(K)]
    original = models[0].W_in.detach().clone()
    ens = nd.Ensemble(models).double()
    assert ens.dtype == F64 and all(m.dtype == F64 for m in ens.unstack())
    with torch.no_grad():
        ens.stacked["W_in"].add_(1.0)
    assert torch.equal(models[0].W_in, original)
    torch.testing.assert_close(ens.unstack()[0].W_in, original.double() + 1)


def test_ensemble_bad_input():
    with pytest.raises(ValueError, match="models is empty"):
        nd.Ensemble([])
    with pytest.raises(TypeError, match="list of neurodyn Models"):
        nd.Ensemble(nd.RateRNN(3))
    with pytest.raises(TypeError, match=r"models\[1\] must be a neurodyn Model"):
        nd.Ensemble([nd.RateRNN(3), "net"])
    with pytest.raises(ValueError, match=r"models\[1\] is a WilsonCowan"):
        nd.Ensemble([nd.RateRNN(2), nd.WilsonCowan()])
    with pytest.raises(ValueError, match=r"models\[1\]\.state_vars"):
        nd.Ensemble([nd.RateRNN(3), nd.RateRNN(4)])
    with pytest.raises(ValueError, match=r"models\[1\]\.W_in is \(3, 1\) torch.float64"):
        nd.Ensemble([nd.RateRNN(3, 1), nd.RateRNN(3, 1).double()])
    frozen = nd.RateRNN(3, 1)
    frozen.W_in.requires_grad_(False)
    with pytest.raises(ValueError, match=r"models\[1\]\.W_in has requires_grad=False"):
        nd.Ensemble([nd.RateRNN(3, 1), frozen])
    with pytest.raises(ValueError, match="n must be a positive int"):
        nd.ensemble(lambda s: nd.RateRNN(3), 0)
    with pytest.raises(TypeError, match="model_factory must be callable"):
        nd.ensemble("RateRNN", 2)
    ens = nd.ensemble(lambda s: nd.RateRNN(3, 1), 2)
    t = torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="needs a batch of K\\*B rows"):
        nd.simulate(ens, t, torch.zeros(3, 5, 1))
    with pytest.raises(ValueError, match=r"per-network init must be \(K=2"):
        ens.find_fixed_points(torch.zeros(3, 4, 3))
    with pytest.raises(TypeError, match="trains on a neurodyn Task"):
        ens.fit("data", steps=1)


@pytest.mark.parametrize("shared_input", [True, False])
@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_ensemble_fused_euler_equals_the_generic_steps(shared_input, gradient, monkeypatch):
    # Euler on RateRNN members runs as one fused scan over the K stacked weights; it must equal the generic steps
    ens = nd.ensemble(dale_rate_rnn, K, seed=5)
    assert ens.euler_scan() is not None
    t = torch.linspace(0, 0.3, 16, dtype=F64)
    x = inputs(t, 1 if shared_input else K * B)
    state0 = torch.rand(K * B, N, dtype=F64, generator=torch.Generator().manual_seed(3))

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        ens.zero_grad()
        traj = nd.simulate(ens, t, x, state0, dt=0.01, gradient=gradient)
        (traj.outputs.pow(2).sum() + traj.flat().sin().sum()).backward()
        return traj.flat(), [p.grad.clone() for p in ens.parameters() if p.requires_grad]

    fused, fused_grads = run()
    monkeypatch.setattr(nd.Ensemble, "euler_scan", lambda self: None)
    generic, generic_grads = run()
    torch.testing.assert_close(fused, generic, rtol=0, atol=1e-12)
    for a, b in zip(fused_grads, generic_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_ensemble_readout_second_derivatives_and_forward_mode_match_the_networks():
    # the K readouts run as one batched op with its own backward (W's gradient formed in W's layout): it must
    # stay differentiable twice (create_graph) and support forward mode, as the members' F.linear does
    ens = nd.ensemble(rate_rnn, K, seed=2)
    r = torch.randn(K * B, N, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    torch.autograd.gradcheck(lambda r: ens.output(ens.State(r)), (r,))
    w = ens.stacked["W_out"]
    (g,) = torch.autograd.grad(ens.output(ens.State(r)).pow(3).sum(), w, create_graph=True)
    (h,) = torch.autograd.grad(g.pow(2).sum(), w)
    v = torch.randn_like(r)
    _, tangent = torch.func.jvp(lambda r: ens.output(ens.State(r)), (r.detach(),), (v,))
    for k, model in enumerate(ens.unstack()):
        rows = slice(k * B, (k + 1) * B)
        model.W_out.requires_grad_(True)
        (gk,) = torch.autograd.grad(model.output(model.State(r[rows])).pow(3).sum(), model.W_out, create_graph=True)
        (hk,) = torch.autograd.grad(gk.pow(2).sum(), model.W_out)
        torch.testing.assert_close(g[k], gk, rtol=0, atol=1e-10)
        torch.testing.assert_close(h[k], hk, rtol=0, atol=1e-10)
        torch.testing.assert_close(tangent[rows], v[rows] @ model.W_out.detach().T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dt", [None, 0.025])
def test_ensemble_large_no_graph_run_equals_the_recorded_run(dt):
    # 8192 rows: each pass's states exceed the cache, so the no-graph loop copies them out state by state
    ens = nd.ensemble(rate_rnn, 4, seed=6)
    t = torch.linspace(0, 0.5, 11, dtype=F64)
    x = torch.randn(2048, len(t), 2, dtype=F64, generator=torch.Generator().manual_seed(8))
    recorded = ens.simulate(t, x, dt=dt)
    assert recorded.flat().requires_grad
    with torch.no_grad():
        plain = ens.simulate(t, x, dt=dt)
    torch.testing.assert_close(plain.flat(), recorded.flat().detach(), rtol=0, atol=0)
    torch.testing.assert_close(plain.outputs, recorded.outputs.detach(), rtol=0, atol=0)


def test_ensemble_finite_states_whose_sum_overflows_are_not_a_divergence():
    # K*B rows of large but finite states: their sum overflows (float32 max 3.4e38), the states do not
    def relu_net(gain: float) -> nd.Ensemble:  # relu(W r) = gain r for r > 0: still at gain 1, exploding at 1e3
        return nd.ensemble(lambda seed: nd.RateRNN(N, tau=0.1, activation="relu", W=gain * torch.eye(N)), K)

    t = torch.linspace(0, 0.1, 11)
    start = torch.full((64, N), 1e37)
    traj = relu_net(1.0).simulate(t, None, start)
    assert torch.equal(traj["r"], torch.full_like(traj["r"], 1e37))
    with pytest.raises(nd.DivergenceError, match=r"by t\[1\]"):
        relu_net(1e3).simulate(t, None, start)


def test_ensemble_members_may_differ_in_tensor_values_but_not_in_settings():
    """Values held in tensors (a trainable WilsonCowan weight) may differ; plain settings (an activation) may not."""
    ens = nd.Ensemble([nd.WilsonCowan(wEE=9.0, trainable=("wEE",)), nd.WilsonCowan(wEE=10.0, trainable=("wEE",))])
    with torch.no_grad():
        ens.stacked["wEE"][1] += 1.0
    assert [float(m.wEE) for m in nd.Ensemble(ens.unstack()).unstack()] == [9.0, 11.0]  # the round trip rebuilds
    with pytest.raises(ValueError, match=r"models\[1\]\.activation is .* may differ only in their tensors"):
        nd.Ensemble([nd.RateRNN(3, activation="tanh"), nd.RateRNN(3, activation="relu")])


@pytest.mark.parametrize("factory", [
    lambda s: nd.WilsonCowan(dtype=F64),
    lambda s: nd.Equations("dx/dt = (-x + y)/tau\ndy/dt = (-y - x)/tau", params={"tau": 0.1 + 0.05 * s}).double(),
])
def test_ensemble_of_models_without_a_fused_scan_runs_euler_as_the_networks_one_by_one(factory):
    ens = nd.ensemble(factory, 2)
    t = torch.linspace(0, 0.2, 5, dtype=F64)
    state0 = torch.rand(1, ens.dim, dtype=F64, generator=torch.Generator().manual_seed(0))  # shared, tiled
    together = ens.simulate(t, state0=state0, dt=0.01).flat()  # the default solver: euler
    for k, model in enumerate(ens.unstack()):
        alone = nd.simulate(model, t, state0=state0, dt=0.01).flat()
        torch.testing.assert_close(ens.split(together)[k], alone, rtol=0, atol=1e-12)


def test_single_network_analysis_of_an_ensemble_points_to_its_own_method():
    ens = nd.ensemble(lambda s: nd.RateRNN(3), 2)
    init = torch.zeros(4, 3)
    for call in (lambda: nd.find_fixed_points(ens, init), lambda: nd.jacobian(ens, ens.tile(init))):
        with pytest.raises(ValueError, match=r"Ensemble of K=2 networks.*ens\.find_fixed_points"):
            call()


def test_ensemble_noise_follows_each_networks_own_time_constant():
    """Euler–Maruyama with sigma sqrt(2 dt / tau) on linear units with W = 0 is, per network, the AR(1) process
    r' = (1 - a) r + sigma sqrt(2 a) xi, a = dt / tau: stationary variance sigma^2 / (1 - a / 2) and correlation
    (1 - a)^m over m steps, each with the network's own tau."""
    sigma, taus, dt, m, trials = 0.5, (0.05, 0.2), 0.005, 10, 4000
    ens = nd.Ensemble([nd.RateRNN(2, activation="linear", tau=tau, W=torch.zeros(2, 2, dtype=F64), bias=False)
                       for tau in taus])
    t = torch.arange(81, dtype=F64) * dt
    gen = torch.Generator().manual_seed(0)
    state0 = sigma * torch.randn(2 * trials, 2, generator=gen, dtype=F64)
    r = nd.simulate(ens, t, state0=state0, noise_std=sigma, generator=gen)["r"].detach()
    for k, tau in enumerate(taus):
        a = dt / tau
        block = r[k * trials:(k + 1) * trials]
        variance = sigma**2 / (1 - a / 2)
        assert abs(float(block[:, -1].var()) / variance - 1) < 0.08
        assert abs(float((block[:, -1 - m] * block[:, -1]).mean()) / variance - (1 - a) ** m) < 0.05


def test_ensemble_simulate_names_the_batch_sizes_given_and_broadcasts_one_initial_state():
    ens = nd.ensemble(lambda seed: nd.RateRNN(4, 1, 1).double(), 3)
    t = torch.linspace(0, 1, 5, dtype=F64)
    x = torch.randn(2, 5, 1, dtype=F64)
    with pytest.raises(ValueError, match="x has batch size 2 but state0 has 5"):  # said 6 and 15 (tiled)
        ens.simulate(t, x, torch.zeros(5, 4, dtype=F64))
    one = torch.randn(1, 4, dtype=F64)  # one initial state for all trials, as simulate takes it (was an error)
    torch.testing.assert_close(ens.simulate(t, x, one).outputs, ens.simulate(t, x, one.expand(2, -1)).outputs)


@pytest.mark.parametrize("dt", [None, 0.013])  # every step an output (copied whole into the result), or substeps
def test_ensemble_euler_scan_without_a_graph_equals_the_recorded_run(dt):
    ens = nd.ensemble(lambda seed: nd.RateRNN(N, 2, 1, tau=0.1).double(), K)
    t = torch.linspace(0, 0.4, 21, dtype=F64)
    x = torch.randn(K * B, 21, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    recorded = nd.simulate(ens, t, x, dt=dt)
    assert recorded.flat().requires_grad
    with torch.no_grad():
        plain = nd.simulate(ens, t, x, dt=dt)
    torch.testing.assert_close(plain.flat(), recorded.flat().detach(), rtol=0, atol=1e-13)
    for k, model in enumerate(ens.unstack()):
        with torch.no_grad():
            one = nd.simulate(model, t, x[k * B:(k + 1) * B], dt=dt)
        torch.testing.assert_close(ens.split(plain.flat())[k], one.flat(), rtol=0, atol=1e-12)


def test_members_with_other_plain_timescales_are_refused_and_a_bad_state0_is_named():
    """QA: Ensemble([slow, fast]) of Equations with timescale=1 and 0.01 reported 1 (network 0's) and so gave no
    dt warning; a state0 with a wrong number of rows was reported as x."""
    fast = nd.Equations("dx/dt = -x/tau", params={"tau": 0.01}, timescale=0.01)
    slow = nd.Equations("dx/dt = -x/tau", params={"tau": 0.01}, timescale=1.0)
    with pytest.raises(ValueError, match=r"models\[1\].timescale is 0.01.*gives 1; give every network the same"):
        nd.Ensemble([slow, fast])
    taus = [nd.Equations("dx/dt = -x/tau", params={"tau": tau}) for tau in (0.5, 0.02)]
    assert nd.Ensemble(taus).timescale == pytest.approx(0.02)  # derived from the tensors: per network
    ens = nd.Ensemble([nd.RateRNN(4) for _ in range(3)])
    with pytest.raises(ValueError, match=r"x \(all zero: with x=None, simulate makes it with state0's rows\) has 4"):
        nd.simulate(ens, torch.linspace(0, 1, 11), None, torch.zeros(4, 4))
