"""NeuromodulatedBlock: k-WTA, maturity protection, consolidation, neurogenesis, modes, freezing."""

import pytest
import torch
from torch.nn import functional as F

from circadian_vision.plastic import BlockConfig, NeuromodulatedBlock

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(**kw):
    cfg = {"hidden_dim": 64, "k": 5, **kw}
    return NeuromodulatedBlock(8, BlockConfig(**cfg), generator=torch.Generator().manual_seed(0))


def test_topk_keeps_exactly_k_active():
    block = make(k=7)
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(1))
    _, _, code = block.encode(x)
    assert code.shape == (50, 64)
    assert ((code != 0).sum(1) == 7).all()
    assert torch.allclose(code.sum(1), torch.ones(50))  # softmax over the winners
    # the winners are the k largest cosines
    _, pre, _ = block.encode(x)
    top = pre.topk(7, dim=1).indices
    assert torch.equal(torch.sort(top, 1).values, torch.sort((code != 0).nonzero()[:, 1].view(50, 7), 1).values)


def test_forward_is_gated_residual_of_normalized_input():
    block = make(gate_init=0.0)
    x = torch.randn(4, 8)
    assert torch.allclose(block(x), F.normalize(x, dim=1))


def test_mature_neurons_do_not_move_in_plastic_mode():
    block = make()
    block.mature[:32] = True
    enc, dec = block.w_enc.clone(), block.w_dec.clone()
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        x = torch.randn(16, 8, generator=gen)
        reward = torch.where(torch.rand(16, generator=gen) > 0.5, 1.0, -1.0)
        block.learn(x, reward, mode="plastic")
    assert torch.equal(block.w_enc[:32], enc[:32])  # bit for bit
    assert torch.equal(block.w_dec[:, :32], dec[:, :32])
    assert not torch.equal(block.w_enc[32:], enc[32:])  # the others did learn


def test_panic_mode_moves_mature_neurons_only_when_allowed():
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(3))
    reward = torch.ones(64)
    locked = make(panic_mature_scale=0.0)
    locked.mature[:] = True
    before = locked.w_enc.clone()
    locked.learn(x, reward, mode="panic")
    assert torch.equal(locked.w_enc, before)
    leaky = make(panic_mature_scale=0.5)
    leaky.mature[:] = True
    before = leaky.w_enc.clone()
    leaky.learn(x, reward, mode="panic")
    assert not torch.equal(leaky.w_enc, before)
    with pytest.raises(ValueError, match="unknown mode"):
        leaky.learn(x, reward, mode="sleepy")


def test_reward_sign_moves_winners_toward_or_away_from_the_input():
    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(4))
    for sign in (1.0, -1.0):
        block = make(lr=0.1)
        _, pre0, code = block.encode(x)
        winners = (code[0] != 0).nonzero().flatten()
        block.learn(x, torch.tensor([sign]))
        _, pre1, _ = block.encode(x)
        change = pre1[0, winners] - pre0[0, winners]
        assert (change > 0).all() if sign > 0 else (change < 0).all()
        losers = (code[0] == 0).nonzero().flatten()
        assert torch.allclose(pre1[0, losers], pre0[0, losers])
        assert torch.allclose(block.w_enc.norm(dim=1), torch.ones(64))


def test_frequency_and_utility_emas():
    block = make(ema=0.5)
    x = torch.randn(8, 8)
    _, _, code = block.encode(x)
    active = (code != 0).float().mean(0)
    f0, u0 = block.freq.clone(), block.utility.clone()
    block.learn(x, -torch.ones(8))  # punished: utility only decays
    assert torch.allclose(block.freq, 0.5 * f0 + 0.5 * active)
    assert torch.allclose(block.utility, 0.5 * u0)


def test_consolidation_marks_high_utility_neurons_up_to_the_cap():
    block = make(max_mature_fraction=0.25, consolidate_ratio=1.0)
    block.utility.zero_()
    block.utility[:40] = torch.linspace(1.0, 0.5, 40)  # 40 candidates, cap 16
    assert block.consolidate() == 16
    assert block.mature[:16].all() and not block.mature[16:].any()
    assert block.consolidate() == 0  # cap reached


def test_neurogenesis_replaces_only_non_mature_low_utility_neurons():
    block = make(recycle_ratio=0.5)
    uniform = block.k / block.hidden_dim
    block.utility.fill_(uniform)  # nobody is a candidate ...
    block.utility[10:20] = 0.0  # ... except these low-utility neurons,
    block.mature[10:15] = True  # of which these are mature
    block.utility[30] = 0.1 * uniform  # one more candidate, non-mature
    enc = block.w_enc.clone()
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(5))
    replaced = block.neurogenesis(x, max_new=100)
    assert sorted(replaced.tolist()) == [15, 16, 17, 18, 19, 30]
    assert torch.equal(block.w_enc[:15], enc[:15])  # mature and useful neurons kept bit for bit
    changed = (block.w_enc != enc).any(1).nonzero().flatten().tolist()
    assert changed == [15, 16, 17, 18, 19, 30]
    assert block.births == 6
    # the lowest-utility candidates go first when the budget is short
    block2 = make(recycle_ratio=0.5)
    block2.utility.fill_(uniform)
    block2.utility[3], block2.utility[7], block2.utility[9] = 0.2 * uniform, 0.0, 0.1 * uniform
    assert sorted(block2.neurogenesis(x, max_new=2).tolist()) == [7, 9]
    # new prototypes are the worst-represented inputs
    _, pre, _ = make(recycle_ratio=0.5).encode(x)
    worst = F.normalize(x, dim=1)[pre.max(1).values.argsort()[:2]]
    assert torch.allclose(torch.sort(block2.w_enc[[7, 9]], 0).values, torch.sort(worst, 0).values)


def test_frozen_block_never_learns_or_grows():
    block = make()
    block.frozen = True
    enc, dec = block.w_enc.clone(), block.w_dec.clone()
    block.utility.zero_()
    block.learn(torch.randn(16, 8), torch.ones(16), mode="panic")
    assert len(block.neurogenesis(torch.randn(4, 8), 4)) == 0
    assert block.consolidate() == 0
    assert torch.equal(block.w_enc, enc) and torch.equal(block.w_dec, dec)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="k must be"):
        NeuromodulatedBlock(8, BlockConfig(hidden_dim=4, k=5))
