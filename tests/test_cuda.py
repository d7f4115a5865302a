"""The public API on CUDA gives the CPU's float64 numbers (skipped without a GPU; CI has none)."""

import pytest
import torch

import neurodyn as nd
from neurodyn.learning import fit
from neurodyn.tasks import PerceptualDecisionMaking

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
F64 = torch.float64


def _pair(factory):
    """The same float64 model on the CPU and on CUDA."""
    cpu = factory().double()
    gpu = factory().double()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.cuda()


def _rnn():
    torch.manual_seed(0)
    return nd.RateRNN(24, 2, 1, tau=0.1, g=1.5)


@pytest.mark.parametrize("solver, gradient", [("euler", "backprop"), ("euler", "checkpoint"), ("rk4", "backprop"),
                                              ("midpoint", "checkpoint"), ("dopri5", "backprop"),
                                              ("dopri5", "adjoint"), ("rk4", "adjoint")])
def test_simulate_and_gradients_match_the_cpu(solver, gradient):
    cpu, gpu = _pair(_rnn)
    t = torch.linspace(0, 0.5, 26, dtype=F64)
    x = torch.randn(3, 26, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        xd = x.to(device).detach().requires_grad_(True)
        traj = nd.simulate(model, t.to(device), xd, solver=solver, dt=0.01, gradient=gradient, rtol=1e-10,
                           atol=1e-12)
        assert traj.outputs.device.type == device
        traj.outputs.pow(2).sum().backward()
        results.append([traj.flat().detach().cpu(), xd.grad.cpu()] + [p.grad.cpu() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-11)


def test_noise_is_reproducible_with_a_cuda_generator():
    _, gpu = _pair(_rnn)
    t = torch.linspace(0, 0.3, 31, dtype=F64, device="cuda")
    runs = [nd.simulate(gpu, t, state0=torch.zeros(4, 24, dtype=F64, device="cuda"), noise_std=0.5,
                        generator=torch.Generator(device="cuda").manual_seed(3))["r"] for _ in range(2)]
    assert torch.equal(runs[0], runs[1]) and runs[0].std() > 0


def test_fit_on_cuda_trains_the_same_network_as_on_the_cpu():
    task = PerceptualDecisionMaking(dt=0.05)
    cpu, gpu = _pair(lambda: nd.RateRNN(16, task.n_in, task.n_out, tau=0.1))
    options = {"steps": 3, "lr": 1e-2, "batch_size": 8, "progress": False, "eval_every": 3}
    losses = [fit(model, task, **options).loss for model in (cpu, gpu)]
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=1e-9, atol=0)
    for p, q in zip(cpu.parameters(), gpu.parameters(), strict=True):
        assert q.device.type == "cuda"
        torch.testing.assert_close(q.cpu(), p, rtol=1e-9, atol=1e-12)


def test_ensemble_on_cuda_matches_its_networks_on_the_cpu():
    task = PerceptualDecisionMaking(dt=0.05)
    ens = nd.ensemble(lambda seed: nd.RateRNN(12, task.n_in, task.n_out, tau=0.1).double(), 4)
    members = ens.unstack()
    ens.cuda()
    options = {"steps": 2, "lr": 1e-2, "batch_size": 4, "progress": False, "eval_every": 2}
    ens.fit(task, **options)
    for k, model in enumerate(members):
        fit(model, task, **options)
        for p, q in zip(model.parameters(), ens.unstack()[k].parameters(), strict=True):
            torch.testing.assert_close(q.cpu(), p, rtol=1e-9, atol=1e-12)


def test_fixed_points_jacobians_and_line_attractor_on_cuda():
    cpu, gpu = _pair(_rnn)
    init = torch.randn(32, 24, dtype=F64, generator=torch.Generator().manual_seed(2))
    for method in ("newton", "adam"):
        a = nd.find_fixed_points(cpu, init, method=method, max_iter=None if method == "newton" else 3000)
        b = nd.find_fixed_points(gpu, init.cuda(), method=method, max_iter=None if method == "newton" else 3000)
        assert b.states.device.type == "cuda" and len(b) == len(a) >= 1
        order_a, order_b = torch.argsort(a.q), torch.argsort(b.q.cpu())
        torch.testing.assert_close(b.states.cpu()[order_b], a.states[order_a], rtol=0, atol=1e-6)
        assert sorted(b.stability) == sorted(a.stability)
    J = nd.analysis.jacobian(gpu, init[:3].cuda())
    torch.testing.assert_close(J.cpu(), nd.analysis.jacobian(cpu, init[:3]), rtol=1e-12, atol=1e-12)
    W = torch.zeros(8, 8, dtype=F64)
    W[:2, :2] = torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=F64)  # eigenvalue 1: a line attractor along (1, 1)
    linear = nd.RateRNN(8, activation="linear", W=W, bias=False).cuda()
    line = nd.line_attractor(nd.find_fixed_points(linear, torch.randn(4, 8, dtype=F64).cuda()))
    assert abs(float(line.direction[:2].sum().abs() / line.direction.norm())) == pytest.approx(2**0.5, abs=1e-6)


def test_equations_and_continuation_on_cuda():
    model = nd.Equations("dx/dt = mu + x - x**3/3", params={"mu": -1.0}, dtype=F64).cuda()
    branch = nd.continuation(model, "mu", (-1.0, 1.0), init=torch.tensor([-2.1], dtype=F64, device="cuda"))
    folds = sorted(b.param for b in branch.bifurcations if b.kind == "fold")
    assert folds == pytest.approx([-2 / 3, 2 / 3], abs=1e-3)
    t = torch.linspace(0, 1, 11, dtype=F64, device="cuda")
    traj = nd.simulate(model, t, state0=torch.tensor([[0.5]], dtype=F64, device="cuda"), solver="dopri5")
    assert traj.flat().device.type == "cuda" and torch.isfinite(traj.flat()).all()


def test_similarity_and_pca_accept_cuda_tensors():
    g = torch.Generator().manual_seed(0)
    R1 = torch.randn(10, 30, dtype=F64, generator=g)
    R2 = R1 @ torch.randn(30, 20, dtype=F64, generator=g)
    assert nd.analysis.cka(R1.cuda(), R2.cuda()) == pytest.approx(nd.analysis.cka(R1, R2), abs=1e-10)
    assert nd.analysis.rsa(R1.cuda(), R2.cuda()) == pytest.approx(nd.analysis.rsa(R1, R2), abs=1e-10)
    proj = nd.pca(R1.cuda(), 3).transform(R1.cuda())
    torch.testing.assert_close(proj.abs().cpu(), nd.pca(R1, 3).transform(R1).abs(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("data", ["task", "recording"])
def test_fit_resumes_a_cuda_run_from_its_checkpoint(tmp_path, data):
    """QA: resuming on CUDA raised "RNG state must be a torch.ByteTensor": load_checkpoint(map_location=cuda)
    had moved the generator states to the GPU. They stay CPU ByteTensors; the resumed run repeats the losses."""
    from neurodyn.data import synthetic_recording
    from neurodyn.learning import load_checkpoint

    task = PerceptualDecisionMaking(dt=0.05)
    if data == "task":
        source, sizes = task, (task.n_in, task.n_out)
    else:
        teacher = nd.RateRNN(6, 2, 3, tau=0.05)
        source = synthetic_recording(teacher, torch.arange(20) * 0.01, torch.randn(10, 20, 2),
                                     generator=torch.Generator().manual_seed(0))
        sizes = (2, 3)

    def model():
        torch.manual_seed(0)
        return nd.RateRNN(16, *sizes, tau=0.1).cuda()

    options = {"steps": 4, "lr": 1e-2, "batch_size": 8, "progress": False, "eval_every": 2, "noise_std": 0.05,
               "loss": "mse" if data == "task" else "poisson"}
    straight = fit(model(), source, **options)
    path = tmp_path / "run.pt"
    first = fit(model(), source, **options, checkpoint=path, callbacks=[lambda step, h, m: step == 2])
    assert first.steps == 2
    state = load_checkpoint(path, map_location="cuda")
    assert state["generator"].device.type == "cpu" and state["noise"].device.type == "cpu"
    resumed = fit(model(), source, **options, checkpoint=path)
    assert resumed.loss == straight.loss
