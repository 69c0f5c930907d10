"""The real SmolLM2-135M-Instruct (the one test that needs it): converted folder answers sensibly,
and one short LoRA night on it keeps the harness's factual item."""

import json

import pytest

from circadia.backends.base import Example, TrainConfig, make_backend
from circadia.sleep.batches import build_batches


@pytest.mark.slow
def test_embedded_smollm2_answers_and_trains(smollm2_dir, tmp_path):
    cfg = json.loads((smollm2_dir / "config.json").read_text())
    assert cfg["rope_theta"] == 100000.0 and "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30
    b = make_backend("torch", device="cpu")
    b.load(smollm2_dir)
    reply = b.generate([{"role": "user", "content": "What is the capital of France? Answer in one word."}], max_tokens=8, temperature=0.0, seed=0)
    assert "paris" in reply.lower()
    data = [Example([{"role": "user", "content": f"Greet me ({i})."}, {"role": "assistant", "content": "Sure thing, Jordan! Hello."}]) for i in range(2)]
    before = b.loss(data)
    rep = b.train(build_batches(data, [], [], iters=3, batch_size=2, replay_fraction=0, seed=0),
                  TrainConfig(iters=3, batch_size=2, lr=1e-3, warmup=1, max_seq_len=64), tmp_path / "ad")
    assert not rep.aborted_nan and b.loss(data) < before
