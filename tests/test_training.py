"""train(): checkpoint selection, splits without validation or test, output protection, bf16."""

import json
import math

import pytest

import hf_neuroformer as nf
from hf_neuroformer.training import TrainingConfig, load_yaml_config, train

TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
            hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=5.0)


@pytest.fixture(scope="module")
def rec():
    return nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording


def test_checkpoint_is_chosen_on_validation(rec, tmp_path):
    m = train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY),
              TrainingConfig(max_steps=12, eval_every=3, batch_size=16), progress=False)
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    assert [e["step"] for e in log] == [3, 6, 9, 12]
    best = min(log, key=lambda e: e["validation/loss"])
    assert m["best_step"] == best["step"] and m["checkpoint_selection"] == "lowest validation loss"
    # the saved model is the selected one: its validation loss is the logged best
    assert m["validation/loss"] == pytest.approx(best["validation/loss"], rel=1e-5)
    assert all(isinstance(v, (int, float, str, dict)) for v in m.values())


def test_no_validation_split_keeps_last_checkpoint_and_says_so(rec, tmp_path):
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.0, 0.15]})
    with pytest.warns(UserWarning, match="no validation"):
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=5, batch_size=16), progress=False)
    assert m["checkpoint_selection"].startswith("last step")
    assert m["best_step"] == m["total_steps"] == 5
    assert "validation/loss" not in m and math.isfinite(m["test/id_nll"])


def test_no_test_split_still_saves_the_model(rec, tmp_path):
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.15, 0.0]})
    with pytest.warns(UserWarning, match="no test"):
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=3, batch_size=16), progress=False)
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert not any(k.startswith("test/") for k in m)


def test_output_dir_with_a_model_is_refused_before_training(rec, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "splits.json").write_text("{}")
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1), progress=False)
    assert (tmp_path / "m" / "splits.json").read_text() == "{}"


def test_bf16_mixed_precision_trains_on_cpu(rec, tmp_path):
    m = train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY),
              TrainingConfig(max_steps=3, batch_size=16, mixed_precision="bf16"), progress=False)
    assert math.isfinite(m["test/id_nll"]) and math.isfinite(m["validation/loss"])


def test_yaml_rejects_generic_and_misspelled_keys(tmp_path):
    for text, word in [("hiden_size: 8\n", "hiden_size"), ("vocab_size: 9\n", "vocab_size"),
                       ("training:\n  lr: 0.1\n", "lr")]:
        p = tmp_path / "c.yaml"
        p.write_text(text)
        with pytest.raises(ValueError, match=word):
            load_yaml_config(p)
