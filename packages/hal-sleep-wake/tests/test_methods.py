"""The method registry and what each reference method must do (Mammoth's definitions)."""

from __future__ import annotations

import pytest
import torch

from hal_sleep_wake.config import METHODS
from hal_sleep_wake.learner import Learner
from hal_sleep_wake.methods import get_method, method_names
from hal_sleep_wake.plan import METHOD_TEXT
from hal_sleep_wake.studies import metrics_of


def observe(learner: Learner, x: torch.Tensor, y: torch.Tensor, t: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    tasks = torch.full((len(y),), t, dtype=torch.long)
    return learner.method.observe(x, y, tasks, t, torch.arange(len(y)))


def test_registry_config_and_plan_name_the_same_methods():
    assert sorted(METHODS) == method_names() == sorted(METHOD_TEXT)
    with pytest.raises(KeyError, match="unknown method 'sgd'.*registered: agem"):
        get_method("sgd")


@pytest.mark.parametrize("method", METHODS)
def test_every_method_learns_the_first_task(seq, tiny_cfg, method):
    """On well-separated patterns each method gets task 0 well above chance (joint: at the end)."""
    torch.manual_seed(0)
    learner = Learner(tiny_cfg(method=method, wake={"epochs": 8}), seq, "one-head", seed=0)
    result = learner.fit()
    row = -1 if method == "joint" else 0
    assert result.matrices["task"][row][0] > 0.75 and result.matrices["class"][row][0] > 0.75
    assert len(result.matrices["class"]) == seq.n_tasks


def test_joint_learns_only_at_the_end_and_has_no_forgetting(seq, tiny_cfg):
    learner = Learner(tiny_cfg(method="joint", wake={"epochs": 3}), seq, "one-head", seed=0)
    result = learner.fit()
    assert result.losses[0] == [] and learner.method.continual is False  # nothing observed while streaming
    assert min(result.matrices["task"][-1]) > 0.75  # every task learned at the end
    m = metrics_of([type("V", (), {"view": v, "matrix": r})() for v, r in result.matrices.items()], continual=False)
    assert m["cil_acc"] is not None and m["cil_forgetting"] is None and m["til_bwt"] is None


def test_er_and_derpp_push_every_batch_and_derpp_keeps_its_logits(seq, tiny_cfg):
    learner = Learner(tiny_cfg(method="derpp"), seq, "one-head")
    x, y = seq.x_train[0][:16], seq.y_train[0][:16]
    learner.model.eval()  # no augmentation noise in the comparison below
    with torch.no_grad():
        expected = learner.forward(learner.model, learner.prepare(x, train=False))
    learner.cfg.data.crop_pad = 0  # the pushed logits are those of the (now unaugmented) training forward
    learner.model.eval()
    observe(learner, x, y)
    assert len(learner.memory) == 16
    torch.testing.assert_close(learner.memory.logits[:16], expected)


def test_derpp_loss_adds_logit_matching_and_buffer_labels(seq, tiny_cfg):
    """alpha and beta change the loss only once L1 holds something."""
    losses = {}
    for alpha, beta in ((0.0, 0.0), (5.0, 0.0), (0.0, 5.0)):
        torch.manual_seed(0)
        learner = Learner(tiny_cfg(method="derpp", der={"alpha": alpha, "beta": beta}), seq, "one-head", seed=0)
        x, y = seq.x_train[0], seq.y_train[0]
        first, _ = observe(learner, x[:16], y[:16])
        with torch.no_grad():  # make the stored logits wrong, so logit matching has something to say
            learner.memory.logits.add_(3.0)
        second, _ = observe(learner, x[16:32], y[16:32])
        losses[(alpha, beta)] = (float(first), float(second))
    base = losses[(0.0, 0.0)]
    assert losses[(5.0, 0.0)][0] == losses[(0.0, 5.0)][0] == base[0]  # empty L1: plain cross-entropy
    assert losses[(5.0, 0.0)][1] > base[1] + 1.0 and losses[(0.0, 5.0)][1] > base[1]


def test_agem_projection_never_increases_the_loss_on_the_buffer(seq, tiny_cfg, monkeypatch):
    """The applied gradient g~ satisfies g~ . g_ref >= 0; a conflicting g is changed, an agreeing one is not."""
    from hal_sleep_wake.methods import agem

    learner = Learner(tiny_cfg(method="agem", wake={"optimizer": "sgd", "lr": 0.1, "epochs": 4}), seq, "one-head",
                      seed=0)
    learner.train_task(0)
    grads: list[tuple[torch.Tensor, ...]] = []
    real_grad = agem._grad
    monkeypatch.setattr(agem, "_grad", lambda loss, params: grads.append(real_grad(loss, params)) or grads[-1])
    applied = {}
    step = learner.opt.step

    def spy(*args, **kwargs):
        applied["g"] = [p.grad.clone() for p in learner.trainable()]
        return step(*args, **kwargs)

    learner.opt.step = spy
    conflicts = 0
    for s in [0, 16, 32] * 4:  # task 1 batches: their gradients tend to conflict with task 0's
        grads.clear()
        observe(learner, seq.x_train[1][s : s + 16], seq.y_train[1][s : s + 16], 1)
        g, ref = grads
        dot = lambda a, b: sum((u * v).sum() for u, v in zip(a, b))  # noqa: E731
        assert dot(applied["g"], ref) >= -1e-4 * dot(ref, ref)
        if dot(g, ref) < 0:
            conflicts += 1
            assert not all(torch.equal(a, b) for a, b in zip(applied["g"], g))
        else:
            assert all(torch.equal(a, b) for a, b in zip(applied["g"], g))
    assert conflicts  # the projection was exercised


def test_lwf_warms_up_only_the_new_head_then_distils(seq, tiny_cfg):
    learner = Learner(tiny_cfg(method="lwf", wake={"optimizer": "sgd", "lr": 0.1}), seq, "one-head", seed=0)
    learner.train_task(0)
    trunk = {n: p.detach().clone() for n, p in learner.model.named_parameters() if not n.startswith("fc.")}
    head = learner.model.fc.weight.detach().clone()
    learner.method.begin_task(1)
    for n, p in learner.model.named_parameters():
        if not n.startswith("fc."):
            assert torch.equal(p, trunk[n]), f"warm-up moved {n}"
    moved = (learner.model.fc.weight - head).abs().sum(1)
    assert moved[2:].sum() > 0 and moved[:2].sum() == 0  # only task 1's rows of the head trained
    assert learner.method.old_logits.shape == (len(seq.y_train[1]), 4)


def test_lwf_loss_is_cross_entropy_plus_distillation_at_temperature(seq, tiny_cfg):
    """The loss of a step, by hand: CE over the seen classes + alpha * H(softmax(old/T), softmax(new/T)) over
    the old classes (Mammoth's smooth(softmax(z), T) is softmax(z / T))."""
    import torch.nn.functional as F

    learner = Learner(tiny_cfg(method="lwf", lwf={"alpha": 2.0, "temperature": 3.0, "warmup_epochs": 0},
                               data={"crop_pad": 0}), seq, "one-head", seed=0)
    learner.train_task(0)
    learner.method.begin_task(1)
    old_logits = torch.randn(len(seq.y_train[1]), 4, generator=torch.Generator().manual_seed(5))
    learner.method.old_logits = old_logits
    idx = torch.arange(8)
    x, y = seq.x_train[1][idx], seq.y_train[1][idx]
    with torch.no_grad():
        z = learner.forward(learner.model, learner.prepare(x, train=False))
    ce = F.cross_entropy(z, y)  # classes 0..3 are all seen after task 1
    p_old = F.softmax(old_logits[idx, :2] / 3.0, dim=1)
    smooth = lambda p, t: p ** (1 / t) / (p ** (1 / t)).sum(1, keepdim=True)  # noqa: E731  (Mammoth's)
    torch.testing.assert_close(smooth(F.softmax(old_logits[idx, :2], 1), 3.0), p_old)
    expected = ce + 2.0 * -(p_old * F.log_softmax(z[:, :2] / 3.0, dim=1)).sum(1).mean()
    loss, _ = learner.method.observe(x, y, torch.ones(8, dtype=torch.long), 1, idx)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_derpp_one_forward_is_the_same_loss_without_batchnorm(seq, tiny_cfg):
    """The diagnostic only changes what BatchNorm sees: with GroupNorm (per sample) and no augmentation the
    one-forward loss equals Mammoth's three-forward loss on the same draws."""
    losses = []
    for one in (False, True):
        torch.manual_seed(0)
        learner = Learner(tiny_cfg(method="derpp", der={"alpha": 0.5, "beta": 0.5, "one_forward": one},
                                   data={"crop_pad": 0}), seq, "one-head", seed=0)
        x, y = seq.x_train[0], seq.y_train[0]
        observe(learner, x[:16], y[:16])
        with torch.no_grad():
            learner.memory.logits.add_(1.0)
        losses.append(observe(learner, x[16:32], y[16:32])[0])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["er", "derpp"])
def test_mammoth_mlp_learns_with_replay_and_has_no_norm_layers(seq, tiny_cfg, method):
    """arch: mlp is Mammoth's MNIST network (flatten, two ReLU layers of ``hidden``, the classifier): every
    parameter is a Linear's, its width is ``hidden``, and a replay method on it learns the first task."""
    torch.manual_seed(0)
    learner = Learner(tiny_cfg(method=method, model={"arch": "mlp", "hidden": 32}, wake={"epochs": 8}), seq,
                      "one-head", seed=0)
    linears = [m for m in learner.model.modules() if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [32, 32, seq.n_classes]
    assert linears[0].in_features == int(torch.tensor(seq.item_shape).prod())
    assert sum(p.numel() for p in learner.model.parameters()) == sum(
        p.numel() for lin in linears for p in lin.parameters())
    result = learner.fit()
    assert result.matrices["class"][0][0] > 0.75


def test_mlp_refuses_the_lora_method():
    from circadian_core.config import ConfigError
    from hal_sleep_wake.config import load_config

    with pytest.raises(ConfigError, match="hal.model.arch: 'mlp' with method 'hal'.*use arch: resnet18"):
        load_config({"method": "hal", "model": {"arch": "mlp"}})
    assert load_config({"method": "er", "model": {"arch": "mlp"}}).model.hidden == 100
