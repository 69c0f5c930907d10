"""EWC against hand-computed values."""

from __future__ import annotations

import torch
from torch import nn

from hal_sleep_wake.ewc import EWC, empirical_fisher


def test_penalty_matches_a_hand_computed_case():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    ewc = EWC(strength=2.0)
    assert ewc.penalty(model).item() == 0.0  # no task consolidated yet
    ewc.add_task({"weight": torch.tensor([[1.0, 0.5]])}, model)  # anchor = [1, 2]
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 4.0]]))
    # (lambda / 2) * (1.0 * (0 - 1)^2 + 0.5 * (4 - 2)^2) = 1 * (1 + 2) = 3
    assert abs(ewc.penalty(model).item() - 3.0) < 1e-6
    ewc.add_task({"weight": torch.tensor([[2.0, 0.0]])}, model)  # second anchor = [0, 4]
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 4.0]]))
    # task 1: 1*(1-1)^2 + 0.5*(4-2)^2 = 2 ; task 2: 2*(1-0)^2 + 0 = 2 ; total (2/2) * 4 = 4
    assert abs(ewc.penalty(model).item() - 4.0) < 1e-6
    loss = ewc.penalty(model)
    loss.backward()
    # d/dw: lambda * sum_t F_t (w - a_t) = 2 * ([0, 0.5*2] + [2*1, 0]) = [4, 2]
    torch.testing.assert_close(model.weight.grad, torch.tensor([[4.0, 2.0]]))


def test_fisher_is_the_mean_squared_per_sample_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    mask = torch.tensor([True, True, False])
    y = y.clamp(max=1)
    fisher = empirical_fisher(model, x, y, mask, batch=2)
    expected = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(5):  # one sample at a time, by hand
        model.zero_grad()
        logits = model(x[i : i + 1]).masked_fill(~mask, float("-inf"))
        nn.functional.cross_entropy(logits, y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            expected[n] += p.grad.pow(2) / 5
    for n in expected:
        torch.testing.assert_close(fisher[n], expected[n])
