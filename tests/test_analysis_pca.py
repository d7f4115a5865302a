"""PCA of trajectories and fixed points in one space."""

import numpy as np
import pytest
import torch

import neurodyn as nd

D64 = torch.float64


def test_pca_matches_numpy_and_recovers_a_known_plane():
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2, generator=gen, dtype=D64))[0]
    z = torch.randn(500, 2, generator=gen, dtype=D64) * torch.tensor([3.0, 1.0], dtype=D64)
    data = z @ basis.T + 0.01 * torch.randn(500, 6, generator=gen, dtype=D64) + 2.0
    fit = nd.pca(data, 2)
    centred = (data - data.mean(0)).numpy()
    eigval, eigvec = np.linalg.eigh(np.cov(centred.T))
    np.testing.assert_allclose(fit.explained_variance.numpy(), eigval[::-1][:2], rtol=1e-10)
    for k in range(2):
        assert abs(float(fit.components[k] @ torch.from_numpy(eigvec[:, ::-1][:, k].copy()))) == pytest.approx(1)
    assert float(fit.explained_variance_ratio.sum()) > 0.999
    torch.testing.assert_close(fit.components @ fit.components.T, torch.eye(2, dtype=D64))
    torch.testing.assert_close(fit.inverse_transform(fit.transform(data)), data, atol=0.1, rtol=0)


def test_trajectories_and_fixed_points_share_the_space():
    model = nd.WilsonCowan(dtype=D64)
    t = torch.linspace(0, 5, 51, dtype=D64)
    traj = nd.simulate(model, t, state0=torch.rand(4, 2, generator=torch.Generator().manual_seed(1), dtype=D64),
                       dt=0.01)
    fit = nd.pca(traj, 2)
    fps = nd.find_fixed_points(model, nd.sample_states(traj, 20, noise=0.05))
    assert fit.transform(traj).shape == (4, 51, 2)
    torch.testing.assert_close(fit.transform(fps), (fps.states - fit.mean) @ fit.components.T)
    with pytest.raises(ValueError, match="n_components"):
        nd.pca(traj, 3)
    with pytest.raises(ValueError, match="D=3"):
        fit.transform(torch.zeros(2, 3, dtype=D64))
