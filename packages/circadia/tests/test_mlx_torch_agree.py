"""The MLX and torch backends agree: same batches and seed -> same first-step loss and schedule,
the same loss of the same weights, and each one's adapter scores the same in the other."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx", reason="mlx is not installed (pip install 'circadia[mlx]')")
from circadia.adapters_convert import convert
from circadia.backends.base import Example, TrainConfig, make_backend
from circadia.sleep.batches import build_batches

# peft calls a deprecated transformers property
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

CHATS = [
    ("Where do I keep my notes?", "In the blue notebook on the desk."),
    ("What's my favourite tea?", "Earl Grey, no sugar."),
    ("Remind me of the meeting time.", "Tuesday at 10:30."),
    ("How do you greet me?", "Good morning, captain!"),
    ("Summarise: cats sleep a lot.", "Cats sleep many hours a day."),
]
EXAMPLES = [Example([{"role": "user", "content": q}, {"role": "assistant", "content": a}]) for q, a in CHATS]
REPLAY = [
    Example([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], source="replay"),
    Example(
        [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome."}],
        source="replay",
    ),
]
CFG = TrainConfig(
    iters=3, batch_size=3, lr=5e-3, warmup=1, lora_rank=4, lora_alpha=8.0, max_seq_len=48, seed=3
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def batches():
    return build_batches(
        EXAMPLES, [], REPLAY, iters=CFG.iters, batch_size=CFG.batch_size, replay_fraction=0.3, seed=CFG.seed
    )


@pytest.fixture(scope="module")
def runs(tiny_model_dir, batches, tmp_path_factory):
    out = {}
    for name in ("torch", "mlx"):
        backend = make_backend(name, device="cpu")
        backend.load(tiny_model_dir)
        base_loss = backend.loss(EXAMPLES)
        report = backend.train(batches, CFG, tmp_path_factory.mktemp(f"agree-{name}") / "adapter")
        out[name] = (backend, base_loss, report)
    return out


def test_base_model_loss_is_the_same(runs):
    assert runs["mlx"][1] == pytest.approx(runs["torch"][1], abs=ATOL)


def test_first_step_loss_schedule_and_tokens_agree(runs):
    (_, _, torch_report), (_, _, mlx_report) = runs["torch"], runs["mlx"]
    assert not torch_report.aborted_nan and not mlx_report.aborted_nan
    # LoRA B starts at zero in both: step 0 scores the base model on the identical first batch
    assert mlx_report.losses[0] == pytest.approx(torch_report.losses[0], abs=ATOL)
    assert mlx_report.lrs == pytest.approx(torch_report.lrs, rel=1e-9)
    assert mlx_report.tokens == torch_report.tokens
    # later steps differ only through the random LoRA A initialisation of each library
    assert mlx_report.losses == pytest.approx(torch_report.losses, abs=0.05)


@pytest.mark.parametrize("trained_by", ["mlx", "torch"])
def test_an_adapter_scores_the_same_in_the_other_backend(runs, trained_by, tiny_model_dir, tmp_path):
    backend, _, report = runs[trained_by]
    other = make_backend("torch" if trained_by == "mlx" else "mlx", device="cpu")
    adapter = report.adapter_dir
    if trained_by == "mlx":  # the torch backend reads peft adapters only
        adapter = convert(adapter, tmp_path / "peft")
    other.load(tiny_model_dir, adapter)  # the MLX backend converts a peft adapter itself
    assert other.loss(EXAMPLES) == pytest.approx(backend.loss(EXAMPLES), abs=ATOL)


def test_same_initial_adapter_gives_the_same_trajectory(tiny_model_dir, batches, tmp_path):
    """Starting both from one adapter (random A, zero B) removes the only difference: every step's
    loss and gradient norm then match, which pins AdamW (bias correction, decoupled weight decay),
    the schedule and gradient clipping (active here: the limit is below the gradient norms)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    start = tmp_path / "start"
    get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, lora_alpha=8.0, target_modules=list(CFG.target_modules)),
    ).save_pretrained(str(start))
    cfg = TrainConfig(**{**CFG.to_json(), "grad_clip": 0.2, "weight_decay": 0.01})
    reports = {}
    for name in ("torch", "mlx"):
        backend = make_backend(name, device="cpu")
        backend.load(tiny_model_dir, start)
        reports[name] = backend.train(batches, cfg, tmp_path / name)
    assert min(reports["torch"].grad_norms) > cfg.grad_clip
    assert reports["mlx"].losses == pytest.approx(reports["torch"].losses, abs=ATOL)
    assert reports["mlx"].grad_norms == pytest.approx(reports["torch"].grad_norms, rel=1e-3)
