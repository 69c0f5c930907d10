"""Head updates against small cases worked out by hand (1 sample, 1-2 features, 2 classes)."""

from __future__ import annotations

import math

import torch

from circadian_vision.heads import BackpropConfig, BackpropHead, PredictiveCodingConfig, PredictiveCodingHead
from circadian_vision.heads.base import minibatches


def _softmax2(a: float, b: float) -> tuple[float, float]:
    ea, eb = math.exp(a), math.exp(b)
    return ea / (ea + eb), eb / (ea + eb)


def test_backprop_sgd_step_by_hand():
    head = BackpropHead(2, 2, BackpropConfig(lr=0.1, momentum=0.0))
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
    x = torch.tensor([[1.0, 2.0]])
    loss = head.train_step(x, torch.tensor([0]))
    # z = 0 -> p = (1/2, 1/2); dL/dz = p - y = (-1/2, 1/2); dW = (p - y) x^T; W <- -0.1 dW
    assert math.isclose(float(loss), math.log(2.0), rel_tol=1e-6)
    torch.testing.assert_close(head.linear.weight, torch.tensor([[0.05, 0.10], [-0.05, -0.10]]))
    torch.testing.assert_close(head.linear.bias, torch.tensor([0.05, -0.05]))


def _pc_head(steps: int, eta: float, lr: float) -> PredictiveCodingHead:
    head = PredictiveCodingHead(1, 2, PredictiveCodingConfig(hidden=1, lr=lr, inference_steps=steps, inference_lr=eta))
    with torch.no_grad():
        head.W1.fill_(1.0)
        head.b1.zero_()
        head.W2.copy_(torch.tensor([[1.0], [-1.0]]))
        head.b2.zero_()
    return head


def test_predictive_coding_one_inference_step_by_hand():
    eta, lr, x = 0.5, 0.1, 0.5
    head = _pc_head(steps=1, eta=eta, lr=lr)
    energy = head.train_step(torch.tensor([[x]]), torch.tensor([0]))
    # hand: mu = tanh(0.5); z = (h, -h); one inference step from h = mu
    mu = math.tanh(x)
    p0, p1 = _softmax2(mu, -mu)
    grad_h = 1.0 * (p0 - 1.0) + (-1.0) * (p1 - 0.0) + (mu - mu)
    h = mu - eta * grad_h
    q0, q1 = _softmax2(h, -h)
    expected_energy = -math.log(q0) + 0.5 * (h - mu) ** 2
    # local updates: dW2 = (q - y) h, db2 = q - y, dW1 = -(h - mu)(1 - mu^2) x, db1 = -(h - mu)(1 - mu^2)
    w2 = [1.0 - lr * (q0 - 1.0) * h, -1.0 - lr * q1 * h]
    w1 = 1.0 + lr * (h - mu) * (1.0 - mu * mu) * x
    b1 = 0.0 + lr * (h - mu) * (1.0 - mu * mu)
    assert math.isclose(float(energy), expected_energy, rel_tol=1e-5)
    torch.testing.assert_close(head.W2.flatten(), torch.tensor(w2), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(head.b2, torch.tensor([-lr * (q0 - 1.0), -lr * q1]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(head.W1.flatten(), torch.tensor([w1]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(head.b1, torch.tensor([b1]), rtol=1e-5, atol=1e-7)
    assert h > mu  # inference pushed the hidden state toward the label's side


def test_predictive_coding_without_inference_leaves_lower_layer_alone():
    head = _pc_head(steps=0, eta=0.5, lr=0.1)
    head.train_step(torch.tensor([[0.5]]), torch.tensor([1]))
    # h = mu: no hidden prediction error, so W1 and b1 do not move; W2 gets the delta rule
    assert float(head.W1) == 1.0 and float(head.b1) == 0.0
    mu = math.tanh(0.5)
    p0, p1 = _softmax2(mu, -mu)
    torch.testing.assert_close(head.W2.flatten(), torch.tensor([1.0 - 0.1 * p0 * mu, -1.0 - 0.1 * (p1 - 1.0) * mu]))


def test_inference_lowers_the_energy():
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    energies = []
    for steps in (0, 1, 5, 20):
        head = PredictiveCodingHead(5, 3, PredictiveCodingConfig(hidden=4, inference_steps=steps, inference_lr=0.1), seed=1)
        energies.append(float(head.infer(x, y).energy))
    assert energies == sorted(energies, reverse=True) and energies[-1] < energies[0]


def test_minibatches_fold_a_small_remainder():
    sizes = [len(b) for b in minibatches(torch.arange(70), 32)]
    assert sizes == [32, 38]  # 6 left over < 16: joins the last batch
    assert [len(b) for b in minibatches(torch.arange(80), 32)] == [32, 32, 16]
    assert torch.equal(torch.cat(minibatches(torch.arange(70), 32)), torch.arange(70))
