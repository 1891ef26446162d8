"""Acceptance 3: AutoConfig / AutoTokenizer / AutoModelForPreTraining reload a saved model in a
fresh Python process and give the same logits (atol 1e-6) on a fixed batch."""

import json
import subprocess
import sys
import textwrap

import torch

import hf_neuroformer as nf
from hf_neuroformer.io import load_recording
from hf_neuroformer.training import save_atomically
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets


def test_auto_classes_reload_in_fresh_process(tmp_path, shared_data):
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, max_past_length=128)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    ds, _ = build_window_datasets(rec, tok, cfg)
    rows = ds["test"][:16]
    batch = NeuroformerCollator()([dict(zip(rows, v)) for v in zip(*rows.values())])
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    with torch.no_grad():
        out = model(**batch)
    save_atomically(tmp_path / "model", model, tok, {"note.json": {"what": "test"}})
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not list((tmp_path / "model").glob(".tmp-save-*"))
    torch.save({"batch": batch, "logits": out.logits, "dt_logits": out.dt_logits}, tmp_path / "batch.pt")

    script = textwrap.dedent(f"""
        import json, torch
        import hf_neuroformer  # registers the Auto classes
        from transformers import AutoConfig, AutoTokenizer, AutoModelForPreTraining, AutoModel
        d = {str(tmp_path / 'model')!r}
        cfg = AutoConfig.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        model = AutoModelForPreTraining.from_pretrained(d).eval()
        base = AutoModel.from_pretrained(d)
        saved = torch.load({str(tmp_path / 'batch.pt')!r})
        with torch.no_grad():
            out = model(**saved["batch"])
        print(json.dumps({{
            "config": type(cfg).__name__, "tokenizer": type(tok).__name__, "model": type(model).__name__,
            "base": type(base).__name__, "vocab": len(tok), "dt_resolution": tok.dt_resolution,
            "max_id_diff": (out.logits - saved["logits"]).abs().max().item(),
            "max_dt_diff": (out.dt_logits - saved["dt_logits"]).abs().max().item(),
        }}))
        import gc
        gc.freeze()  # all printed: exit without the final garbage collection (about 1 s)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["config"] == "NeuroformerConfig"
    assert info["tokenizer"] == "NeuroformerTokenizer"
    assert info["model"] == "NeuroformerForPreTraining"
    assert info["base"] == "NeuroformerModel"
    assert info["vocab"] == len(tok) == 18
    assert info["dt_resolution"] == cfg.dt_resolution
    assert info["max_id_diff"] <= 1e-6
    assert info["max_dt_diff"] <= 1e-6
