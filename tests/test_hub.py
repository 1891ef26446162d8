"""Hub sharing through the real huggingface_hub / transformers / datasets clients against the
loopback Hub server of ``tests/hub_server.py`` (issue 8).

1. push a trained tiny model (tokenizer, card, windows dataset) with ``neuroformer push``; in a
   fresh process where ``hf_neuroformer`` cannot be imported, load it with
   ``AutoModelForPreTraining.from_pretrained(repo, trust_remote_code=True)``: same logits;
2. ``datasets.load_dataset(repo)`` of the pushed windows: same features and rows;
3. ``ModelCard.load`` of the pushed card: the metrics of ``metrics.json``;
4. a missing model directory, malformed repo ids, server errors and an unreachable server give
   clear errors, and the local model directory is left byte-for-byte as it was.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.generation import load_pretrained
from hf_neuroformer.hub import HubPushError, card_metrics, model_index_metrics, push_to_hub, save_for_hub
from hf_neuroformer.io import load_recording
from hf_neuroformer.training import TrainingConfig, train
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """A tiny model trained for 8 steps on the first 360 s of A2929's wake epoch ([600, 960) s;
    metrics.json included). The whole epoch (600 s) cost every push with windows, and the run's
    evaluation and test generation, 5/3 as many windows; 360 s still gives each split two or
    three segments and the test split six 10 s bootstrap blocks (5 are needed for an interval). A push
    with ``--data NWB --epoch wake`` (the whole epoch) gives the same windows: they lie in the
    model's splits, as in test_push_says_when_a_split_has_fewer_windows_than_num_shards."""
    d = tmp_path_factory.mktemp("hub")
    nwb = shared_data(A2929)
    rec = load_recording(nwb, epoch="wake").restrict(600.0, 960.0)
    assert tuple(map(float, rec.time_domain)) == (600.0, 960.0), rec.time_domain  # wake starts at 600 s
    cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, max_past_length=128)
    metrics = train(rec, d / "model", cfg, TrainingConfig(max_steps=8, batch_size=32, eval_batch_size=256,
                                                          generation_batch_size=512), progress=False)
    return d, nwb, rec, metrics


def _tree_digest(path):
    """sha256 of every file's relative path, bytes and mtime under ``path``."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(path)).encode())
            h.update(p.read_bytes())
            h.update(str(p.stat().st_mtime_ns).encode())
    return h.hexdigest()


def _run(code_or_args, env, timeout=300):
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def _another_tools_dataset(api, repo_id, message):
    """A dataset repository holding a Parquet file but no Neuroformer manifest (another tool's)."""
    from huggingface_hub import CommitOperationAdd

    api.create_repo(repo_id, repo_type="dataset")
    api.create_commit(repo_id, [CommitOperationAdd("data/train-0.parquet", b"PAR1")], repo_type="dataset",
                      commit_message=message)


def _branches(api, repo_id, repo_type="model"):
    """The branch names of a repository, sorted."""
    return sorted(b.name for b in api.list_repo_refs(repo_id, repo_type=repo_type).branches)


def _point_this_process_at(hub, monkeypatch):
    """huggingface_hub in this process talks to the loopback ``hub``, as ``HF_ENDPOINT`` would make it
    in a fresh process (it is read when huggingface_hub is imported): the endpoint constant, the
    download URL template built from it at import (``hf_hub_download``, ``ModelCard.load``), and the
    token from ``HF_TOKEN``. Without the template a download went to huggingface.co and, offline,
    retried with backoff for about 23 s. transformers' shared ``HfApi`` is made anew for ``hub``. The agent-harness registry that huggingface_hub fetches
    from the hub once per process (the first coloured message) is cached under the hub's own
    ``HF_HOME``, as in a fresh process started with ``hub.env()``, not in this user's."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(huggingface_hub.constants, "AGENT_HARNESSES_PATH",
                        os.path.join(hub.env()["HF_HOME"], ".agent_harnesses.json"))
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_token")
    # transformers' push_to_hub goes through one HfApi it makes once per process (transformers.utils.hub.hf_api),
    # which keeps the endpoint of the first push: a second test's push went to the first test's stopped hub
    import transformers.utils.hub

    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)


def _push_in_process(hub, monkeypatch, capsys, *args):
    """``neuroformer push ARGS`` through ``cli.main`` in this process against the loopback ``hub``:
    ``(exit status, stdout, stderr)``. ``HF_ENDPOINT`` is read when huggingface_hub is imported, so
    its constant is pointed at the hub; the token comes from ``HF_TOKEN`` as in a fresh process.
    (A fresh process pushes in test_refused_model_repo_leaves_no_dataset_and_a_missing_token_is_named;
    each other one costs an interpreter start, about 5 s.)"""
    from hf_neuroformer import cli

    _point_this_process_at(hub, monkeypatch)
    capsys.readouterr()
    code = cli.main(["push", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_push_then_load_without_the_package(trained, loopback_hub, tmp_path, monkeypatch, capsys):
    """Pushed through ``cli.main`` in this process (test_refused_model_repo_leaves_no_dataset_and_a_missing_token_is_named
    pushes from a fresh interpreter; a second one cost an interpreter start and a cold read of the
    recording, about a third of this test); loaded in a fresh interpreter without the package."""
    d, nwb, rec, metrics = trained
    model_dir = d / "model"
    before = _tree_digest(model_dir)

    # reference logits on a fixed batch, from the local model
    model, tok, plan = load_pretrained(model_dir)
    model.eval()
    local, _ = build_window_datasets(rec, tok, model.config, plan)
    rows = local["test"][:8]
    batch = NeuroformerCollator()([dict(zip(rows, v)) for v in zip(*rows.values())])
    with torch.no_grad():
        out = model(**batch)
    torch.save({"batch": dict(batch), "logits": out.logits, "dt_logits": out.dt_logits}, tmp_path / "ref.pt")
    # a folder saved the transformers way, processor.save_pretrained (as Trainer(processing_class=processor) saves
    # its checkpoints): its tokenizer_config.json names the processor class, which AutoProcessor reads before
    # config.json's auto_map; staged as a push stages it, it was loaded without the package as the tokenizer
    saved = tmp_path / "processor-saved"
    shutil.copytree(model_dir, saved)
    nf.NeuroformerProcessor.from_pretrained(saved).save_pretrained(saved)
    (tmp_path / "processor-staged").mkdir()
    save_for_hub(saved, tmp_path / "processor-staged")

    env = loopback_hub.env()
    code, stdout, stderr = _push_in_process(
        loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id", "lab/neuroformer-tiny", "--data", nwb,
        "--epoch", "wake", "--dataset-repo-id", "lab/neuroformer-tiny-windows", "--num-shards", "2", "--provenance",
        "pynapple test data A2929-200711 (Peyrache lab), MIT")
    assert code == 0, stderr[-3000:]
    assert "pushed" in stdout and "lab/neuroformer-tiny-windows" in stdout
    assert _tree_digest(model_dir) == before, "push modified the local model directory"

    files = loopback_hub.files("lab/neuroformer-tiny")
    for name in ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "generation_config.json",
                 "README.md", "metrics.json", "splits.json", "configuration_neuroformer.py",
                 "modeling_neuroformer.py", "tokenization_neuroformer.py", "training_curves.png",
                 "test_generation.png"):
        assert name in files, f"{name} not pushed: {sorted(files)}"
    # the run's figures travel byte for byte and the card shows them
    from hf_neuroformer.hub import CARD_FIGURES
    from hf_neuroformer.training import RUN_FIGURES

    assert set(CARD_FIGURES) == set(RUN_FIGURES)
    for name in ("training_curves.png", "test_generation.png"):  # what train writes (finetune: test_decoding.png)
        assert files[name] == (model_dir / name).read_bytes(), name
        assert f"![{name}]({name})" in files["README.md"].decode(), name
    # only the self-contained files travel as remote code: the three classes' modules, binning.py, which
    # the config and tokenizer import, and argument_checks.py (standard library only), whose number tests the
    # config imports; the card names each file trust_remote_code runs
    remote = sorted(f for f in files if f.endswith(".py"))
    assert remote == ["argument_checks.py", "binning.py", "configuration_neuroformer.py", "modeling_neuroformer.py",
                      "tokenization_neuroformer.py"]
    card_text = " ".join(files["README.md"].decode().split())
    runs = card_text.split("`trust_remote_code=True` runs the", 1)[1].split("read them first", 1)[0]
    assert all(f"`{f}`" in runs for f in remote), runs
    auto_map = json.loads(files["config.json"])["auto_map"]
    assert set(auto_map) >= {"AutoConfig", "AutoModel", "AutoModelForPreTraining", "AutoModelForCausalLM"}
    shards = sorted(f for f in loopback_hub.files("lab/neuroformer-tiny-windows", repo_type="dataset")
                    if f.endswith(".parquet"))
    assert len(shards) == 6, shards  # 3 splits x 2 shards
    # Break test: pulled by the installed classes, a model keeps the repository's auto_map; saved again, the folder
    # named configuration_neuroformer.py etc. without holding them, and trust_remote_code loading failed ("does not
    # appear to have a file named configuration_neuroformer.py"). The code files are written with it now; loaded
    # in the package-free process below. A train folder (no auto_map) still gets none.
    again = tmp_path / "saved-again"
    pull = dict(cache_dir=tmp_path / "pull-cache")
    nf.NeuroformerForPreTraining.from_pretrained("lab/neuroformer-tiny", **pull).save_pretrained(again)
    nf.NeuroformerTokenizer.from_pretrained("lab/neuroformer-tiny", **pull).save_pretrained(again)
    assert sorted(p.name for p in again.glob("*.py")) == remote, sorted(p.name for p in again.iterdir())
    assert json.loads((again / "config.json").read_text())["auto_map"] == auto_map
    # Break test: a decoder fine-tuned from the pulled model (no next-spike heads) was saved with the carried
    # auto_map, whose AutoModelForPreTraining / AutoModelForCausalLM loaded it as the pretraining class with
    # random id/dt heads; it gets the decoder's Auto classes now, as a push gives it. With heads it keeps them.
    from hf_neuroformer.hub import DECODER_AUTO_MAP

    cfg = nf.NeuroformerConfig.from_pretrained("lab/neuroformer-tiny", **pull)
    # Break test: a NeuroformerModel (no heads at all) built from the pulled config kept those two entries too
    nf.NeuroformerModel(cfg).save_pretrained(tmp_path / "base-model")
    assert json.loads((tmp_path / "base-model" / "config.json").read_text())["auto_map"] == \
        {k: v for k, v in auto_map.items() if k in DECODER_AUTO_MAP}
    cfg.decoding_targets = [{"name": "x", "kind": "regression", "mean": 0.0, "std": 1.0}]
    for weight, expected in ((0.0, {k: v for k, v in auto_map.items() if k in DECODER_AUTO_MAP}), (0.5, auto_map)):
        cfg.decoding_generative_loss_weight = weight
        nf.NeuroformerForBehaviorDecoding(cfg).save_pretrained(tmp_path / f"decoder-{weight}")
        assert json.loads((tmp_path / f"decoder-{weight}" / "config.json").read_text())["auto_map"] == expected
        code = sorted(p.name for p in (tmp_path / f"decoder-{weight}").glob("*.py"))
        assert code == remote, code  # tokenization_neuroformer.py too: the auto_map's AutoProcessor names it
    assert "AutoModelForPreTraining" not in DECODER_AUTO_MAP and "AutoModelForPreTraining" in auto_map
    # Break test: that decoder, pulled (its config names no AutoModelForPreTraining) and fine-tuned further with a
    # generative loss (so with next-spike heads), kept the decoder auto_map; it gets the push's full one back (one
    # rule with hub.save_for_hub: auto_map_for_heads), with the repo-- prefix of the carried references
    from hf_neuroformer.configuration_neuroformer import AUTO_MAP, auto_map_for_heads

    cfg = nf.NeuroformerConfig.from_pretrained(tmp_path / "decoder-0.0")
    cfg.decoding_generative_loss_weight = 0.5
    nf.NeuroformerForBehaviorDecoding(cfg).save_pretrained(tmp_path / "decoder-heads-again")
    assert json.loads((tmp_path / "decoder-heads-again" / "config.json").read_text())["auto_map"] == auto_map
    assert auto_map_for_heads(AUTO_MAP, False) == DECODER_AUTO_MAP and auto_map_for_heads(AUTO_MAP, True) == AUTO_MAP
    prefixed = {k: "lab/m--" + v for k, v in DECODER_AUTO_MAP.items()}
    assert auto_map_for_heads(prefixed, True) == {k: "lab/m--" + v for k, v in AUTO_MAP.items()}
    # Break test: saved without its tokenizer (or pushed with model.push_to_hub), the model's config.json kept
    # AutoProcessor -> tokenization_neuroformer without that file: AutoProcessor failed with transformers'
    # missing-file error, not the package's ImportError (checked in the package-free process below)
    model_only = tmp_path / "model-only"
    pulled_model = nf.NeuroformerForPreTraining.from_pretrained("lab/neuroformer-tiny", **pull)
    # Break test: the model's save wrote the auto_map's code files, then the save of its config inside it
    # (transformers' config.save_pretrained) wrote them all again; once now (only these saves write tokenization_*)
    copied, copyfile = [], shutil.copyfile
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shutil, "copyfile", lambda src, dst, **kw: copied.append(os.path.basename(dst)) or
                      copyfile(src, dst, **kw))
        pulled_model.save_pretrained(model_only)
    assert copied.count("tokenization_neuroformer.py") == 1, copied
    assert sorted(p.name for p in model_only.glob("*.py")) == remote, sorted(p.name for p in model_only.iterdir())
    assert json.loads((model_only / "config.json").read_text())["auto_map"] == auto_map
    model.save_pretrained(tmp_path / "train-saved")
    assert not list((tmp_path / "train-saved").glob("*.py"))

    # Break test: a branch name that git allows may hold quotes, a backtick or '#'; the cards wrote it between
    # quotes as it was (``from_pretrained("lab/m", revision="q"u...")``: a syntax error), inside backticks (the
    # code span ended early) and into the links unencoded ('#' cut them). The loading code of both cards now
    # quotes it as a Python string, and is run as written, first thing in the package-free process below
    # (a process of its own for it cost an interpreter start, about 8 s), against the pushed branch.
    import ast

    from huggingface_hub import ModelCard

    revision = "q\"u'o`t#e"
    push_to_hub(model_dir, "lab/quoted", revision=revision, recording=rec, dataset_repo_id="lab/quoted-data",
                endpoint=loopback_hub.url, token="hf_loopback_token")
    quoted_card = ModelCard(loopback_hub.files("lab/quoted", revision=revision)["README.md"].decode()).text
    data_card = loopback_hub.files("lab/quoted-data", "dataset", revision=revision)["README.md"].decode()
    from huggingface_hub import DatasetCard  # its metadata parses as huggingface_hub reads it (strictly)

    assert [c["config_name"] for c in DatasetCard(data_card, ignore_metadata_errors=False).data.configs] == ["default"]
    model_code = re.search(r"```python\n(.*?)```", quoted_card, re.S).group(1)
    data_code = re.search(r"```python\n(.*?)```", data_card, re.S).group(1)
    assert ast.literal_eval(re.search(r"revision=(\S+?), trust", model_code).group(1)) == revision
    # the inline code spans hold the branch whole, and the links encode it
    assert "``AutoProcessor.from_pretrained(\"lab/quoted\", revision=\"q\\\"u'o`t#e\", trust_remote_code=True)``" \
        in quoted_card, quoted_card
    assert "/tree/q%22u%27o%60t%23e)" in quoted_card and "(branch ``q\"u'o`t#e``" in quoted_card
    assert "/tree/q%22u%27o%60t%23e)" in data_card and "(branch ``q\"u'o`t#e``" in data_card
    quoted_code = "\n".join([
        model_code, data_code,
        "assert model.config.model_type == 'neuroformer' and tokenizer.vocab_size == model.config.vocab_size",
        "print('rows', {s: windows[s].num_rows for s in windows})",
    ])

    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["hf_neuroformer"] = None  # the package must not be importable here
        try:
            import hf_neuroformer
        except ImportError:
            pass
        else:
            raise SystemExit("hf_neuroformer is importable")
        exec(compile({quoted_code!r}, "<the loading code of the lab/quoted cards>", "exec"), {{}})  # as written
        import torch, warnings
        from transformers import AutoConfig, AutoModelForPreTraining, AutoProcessor, AutoTokenizer
        from huggingface_hub import ModelCard
        import datasets

        def processor_outcome(path):
            try:
                got = AutoProcessor.from_pretrained(path, trust_remote_code=True)
            except Exception as err:
                return type(err).__name__ + ": " + str(err)
            return "returned " + type(got).__name__

        def save_warnings(obj, path):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                obj.save_pretrained(path)
            return [str(w.message) for w in caught if "remote-code copy lacks" in str(w.message)]

        repo = "lab/neuroformer-tiny"
        cfg = AutoConfig.from_pretrained(repo, trust_remote_code=True)
        # saved alone, before anything else from the repository is loaded: its modules folder holds only the
        # config's modules, so the entries naming the others are left out (with a warning); no weights either
        config_alone_warnings = save_warnings(cfg, {str(tmp_path / 'config-alone')!r})
        tok = AutoTokenizer.from_pretrained(repo, trust_remote_code=True)
        # the processor is not remote code: AutoProcessor returned the tokenizer as the processor
        try:
            got = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
        except ImportError as err:
            processor_error = str(err)
        else:
            processor_error = "returned " + type(got).__name__
        try:
            got = AutoProcessor.from_pretrained({str(tmp_path / 'processor-staged')!r}, trust_remote_code=True)
        except ImportError as err:
            saved_processor_error = str(err)
        else:
            saved_processor_error = "returned " + type(got).__name__
        model_only_error = processor_outcome({str(model_only)!r})
        model = AutoModelForPreTraining.from_pretrained(repo, trust_remote_code=True).eval()
        # saved alone as remote code (transformers registers the class itself): its folder lacked
        # tokenization_neuroformer.py that its AutoProcessor entry names; the repository's modules folder has it
        # (AutoTokenizer / AutoProcessor loaded it above)
        model.save_pretrained({str(tmp_path / 'remote-saved')!r})
        remote_saved_error = processor_outcome({str(tmp_path / 'remote-saved')!r})
        ref = torch.load({str(tmp_path / 'ref.pt')!r})
        with torch.no_grad():
            out = model(**ref["batch"])
        again = AutoModelForPreTraining.from_pretrained({str(again)!r}, trust_remote_code=True).eval()
        # loaded from a local folder: its modules folder holds only what the model imports; the AutoProcessor entry
        # was left out of the saved auto_map (with a warning). tokenization_neuroformer.py comes from that folder now
        remote_saved_again_warnings = save_warnings(again, {str(tmp_path / 'remote-saved-again')!r})
        remote_saved_again_error = processor_outcome({str(tmp_path / 'remote-saved-again')!r})
        with torch.no_grad():
            again_out = again(**ref["batch"])
        again_tok = AutoTokenizer.from_pretrained({str(again)!r}, trust_remote_code=True)
        again.save_pretrained({str(again)!r})  # into the folder it came from: its code files are left as they are
        card = ModelCard.load(repo)
        windows = datasets.load_dataset("lab/neuroformer-tiny-windows")
        windows.save_to_disk({str(tmp_path / 'pulled')!r})
        print(json.dumps({{
            "classes": [type(cfg).__module__, type(tok).__module__, type(model).__module__],
            "model": type(model).__name__, "vocab": len(tok),
            "max_id_diff": (out.logits - ref["logits"]).abs().max().item(),
            "max_dt_diff": (out.dt_logits - ref["dt_logits"]).abs().max().item(),
            "again": [type(again).__module__, type(again_tok).__module__, len(again_tok),
                      (again_out.logits - ref["logits"]).abs().max().item()],
            "card_metrics": {{f"{{r.dataset_split}}/{{r.metric_type}}": r.metric_value for r in card.data.eval_results}},
            "card_dataset_types": sorted({{r.dataset_type for r in card.data.eval_results}}),
            "card_tags": card.data.tags, "card_library": card.data.library_name, "card_license": card.data.license,
            "card_datasets": card.data.datasets, "card_text_has_load": "trust_remote_code=True" in card.text,
            "processor_error": processor_error, "saved_processor_error": saved_processor_error,
            "model_only_error": model_only_error, "remote_saved_error": remote_saved_error,
            "remote_saved_again_warnings": remote_saved_again_warnings,
            "remote_saved_again_error": remote_saved_again_error, "config_alone_warnings": config_alone_warnings,
        }}))
        import gc
        gc.freeze()  # all printed: exit without the final garbage collection (about 1 s)
    """)
    res = _run(script, {**env, "HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    manifest = json.loads(loopback_hub.files("lab/quoted-data", "dataset", revision=revision)["manifest.json"])
    quoted_rows = {s: e["n_windows"] for s, e in manifest["splits"].items() if e["n_windows"]}
    assert f"rows {quoted_rows}" in res.stdout, res.stdout

    # acceptance 1: remote code, same logits
    assert all(m.startswith("transformers_modules") for m in info["classes"]), info["classes"]
    assert info["model"] == "NeuroformerForPreTraining"
    assert info["vocab"] == len(tok)
    assert info["processor_error"].startswith("lab/neuroformer-tiny: AutoProcessor of a Neuroformer model needs the "
                                              "hf_neuroformer package"), info["processor_error"]
    assert "AutoTokenizer.from_pretrained(repo, trust_remote_code=True)" in info["processor_error"]
    assert "AutoProcessor of a Neuroformer model needs the hf_neuroformer package" in info["saved_processor_error"], \
        info["saved_processor_error"]
    assert info["model_only_error"].startswith(f"ImportError: {model_only}: AutoProcessor of a Neuroformer model "
                                               "needs the hf_neuroformer package"), info["model_only_error"]
    assert info["max_id_diff"] <= 1e-6 and info["max_dt_diff"] <= 1e-6, info
    # every module a saved auto_map names is in the folder: the Hub repository's modules folder held them all; the
    # local folder's lacked tokenization_neuroformer.py, taken from the folder the model was loaded from (Break
    # test: its AutoProcessor entry was left out, with a warning)
    for name in ("remote-saved", "remote-saved-again", "saved-again"):  # the last: saved again into itself
        folder = tmp_path / name
        assert sorted(p.name for p in folder.glob("*.py")) == remote, (name, sorted(p.name for p in folder.iterdir()))
        assert json.loads((folder / "config.json").read_text())["auto_map"] == auto_map, name
        if name != "saved-again":
            assert info[name.replace("-", "_") + "_error"].startswith(
                f"ImportError: {folder}: AutoProcessor of a Neuroformer model needs the hf_neuroformer package"), info
    assert info["remote_saved_again_warnings"] == [], info["remote_saved_again_warnings"]
    # a config loaded alone from the Hub keeps only the entries whose code its modules folder has (its folder has
    # no weights; AutoModel.from_config would read a model entry and fail on the missing file)
    alone = tmp_path / "config-alone"
    assert json.loads((alone / "config.json").read_text())["auto_map"] == {"AutoConfig": auto_map["AutoConfig"]}
    assert sorted(p.name for p in alone.glob("*.py")) == [f for f in remote if not f.startswith(("mod", "tok"))]
    assert len(info["config_alone_warnings"]) == 1, info["config_alone_warnings"]
    assert "name ['modeling_neuroformer.py', 'tokenization_neuroformer.py']" in info["config_alone_warnings"][0]
    assert info["again"][0].startswith("transformers_modules") and info["again"][1].startswith("transformers_modules")
    assert info["again"][2] == len(tok) and info["again"][3] <= 1e-6, info["again"]

    # acceptance 3: the card's model-index holds metrics.json's metrics of the model (not its baselines), on the
    # pushed windows dataset
    on_disk = json.loads((model_dir / "metrics.json").read_text())
    expected = model_index_metrics(on_disk)
    assert "test/id_nll" in expected and "test/markov_id_nll" in card_metrics(on_disk)
    assert info["card_metrics"] == expected
    assert info["card_dataset_types"] == ["lab/neuroformer-tiny-windows"]
    assert set(info["card_tags"]) >= {"neuroscience", "spikes", "neuroformer", "custom_code"}
    assert info["card_library"] == "transformers" and info["card_license"] == "other"
    assert info["card_datasets"] == ["lab/neuroformer-tiny-windows"]
    assert info["card_text_has_load"]

    # acceptance 2: the windows dataset round-trips (features and rows)
    import datasets

    pulled = datasets.load_from_disk(str(tmp_path / "pulled"))
    assert sorted(pulled) == sorted(local)
    for split in local:
        assert pulled[split].features == local[split].features, split
        assert len(pulled[split]) == len(local[split]) > 0
        # the train windows were dealt to its 2 shards in turn (window k to shard k mod 2): rows 0, 2, 4, ..., 1, 3, ...
        n = len(local[split])
        order = [k for i in range(2) for k in range(i, n, 2)] if split == "train" else list(range(n))
        pd.testing.assert_frame_equal(pulled[split].to_pandas(), local[split].select(order).to_pandas())

    # with the package: AutoProcessor on the Hub repo gives the batch the reference logits came from
    script = textwrap.dedent(f"""
        import torch, hf_neuroformer
        from hf_neuroformer.io import load_recording
        from transformers import AutoProcessor
        rec = load_recording({str(nwb)!r}, epoch="wake")
        ref = torch.load({str(tmp_path / 'ref.pt')!r})["batch"]
        # as the card's load line says (trust_remote_code=True) and without it
        for kwargs in ({{}}, {{"trust_remote_code": True}}):
            processor = AutoProcessor.from_pretrained("lab/neuroformer-tiny", **kwargs)
            assert type(processor).__name__ == "NeuroformerProcessor", type(processor)
            batch = processor(rec, {list(rows["window_start"])!r})
            assert set(batch) == set(ref), (sorted(batch), sorted(ref))
            for k in ref:
                assert torch.equal(batch[k], ref[k]), k
        # Break test: AutoTokenizer with trust_remote_code=True (the card's line) returned the repository's copy of
        # the class where AutoConfig / AutoModel* / AutoProcessor give the installed ones, and the processor refused
        # it ("expected a NeuroformerTokenizer, got NeuroformerTokenizer"); the installed class comes back now
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained("lab/neuroformer-tiny", trust_remote_code=True)
        assert type(tok) is hf_neuroformer.NeuroformerTokenizer, type(tok).__module__
        config = hf_neuroformer.NeuroformerConfig.from_pretrained("lab/neuroformer-tiny")
        got = hf_neuroformer.NeuroformerProcessor.from_config(tok, config)(rec, {list(rows["window_start"])!r})
        assert all(torch.equal(got[k], ref[k]) for k in ref), sorted(got)
        print("processor ok", len(processor.tokenizer))
        import gc
        gc.freeze()  # all printed: exit without the final garbage collection (about 1 s)
    """)
    res = _run(script, {**env, "HF_HUB_CACHE": str(tmp_path / "hub-cache")})
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == f"processor ok {len(tok)}"
    assert loopback_hub.unhandled == [], loopback_hub.unhandled


def test_transformers_push_to_hub_warns_that_it_pushes_no_remote_code(trained, loopback_hub, monkeypatch):
    """model.push_to_hub (transformers' way) pushed weights and config only, without a word: the
    repository then failed to load without the package ("model type `neuroformer` ...").
    (In this process against the loopback hub, as test_save_pretrained_with_push_to_hub_warns_...;
    a fresh interpreter for it cost about 8 s.)"""
    import warnings

    from transformers import AutoModelForPreTraining

    from hf_neuroformer.hub import remote_code_registered

    d, _, _, _ = trained
    _point_this_process_at(loopback_hub, monkeypatch)
    model = AutoModelForPreTraining.from_pretrained(d / "model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.push_to_hub("lab/plain-push")
    plain = any("without remote code" in str(w.message) for w in caught)
    with remote_code_registered(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.push_to_hub("lab/registered-push")
    registered = any("without remote code" in str(w.message) for w in caught)
    assert plain and not registered, (plain, registered)
    assert "modeling_neuroformer.py" not in loopback_hub.files("lab/plain-push")
    assert "modeling_neuroformer.py" in loopback_hub.files("lab/registered-push")


def test_bad_pushes_give_clear_errors_and_leave_files_untouched(trained, loopback_hub, tmp_path, capsys):
    d, _, _, _ = trained
    model_dir = d / "model"
    before = _tree_digest(model_dir)
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    n_requests = len(loopback_hub.requests)

    with pytest.raises(FileNotFoundError, match="not a directory"):
        push_to_hub(tmp_path / "nothing-here", "lab/x", **kw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_dir: .*empty' has no config.json"):
        push_to_hub(tmp_path / "empty", "lab/x", **kw)
    # damaged weights are refused before any request (the old check only looked for the file)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in ("config.json", "vocab.json", "tokenizer_config.json"):
        (damaged / f).write_bytes((model_dir / f).read_bytes())
    (damaged / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes()[:100])
    with pytest.raises(ValueError, match="model_dir: .*model.safetensors' is not a readable safetensors file"):
        push_to_hub(damaged, "lab/x", **kw)
    for bad in ("no-namespace", "lab/a/b", "lab/has space", "lab/double--dash", "lab/" + "x" * 100):
        with pytest.raises(ValueError, match="repo_id: .* is not a Hub repository id"):
            push_to_hub(model_dir, bad, **kw)

    assert len(loopback_hub.requests) == n_requests, "argument errors must be raised before any request"

    loopback_hub.fail_next("commit", 500, "disk full")
    with pytest.raises(HubPushError, match=r"uploading the model .* HTTP 500.*disk full.*was not changed"):
        push_to_hub(model_dir, "lab/fails-on-commit", **kw)
    loopback_hub.fail_next("create", 403, "you cannot create repos in 'lab'")
    with pytest.raises(HubPushError, match=r"creating the model repository .* HTTP 403"):
        push_to_hub(model_dir, "lab/forbidden", **kw)
    with pytest.raises(KeyError):  # the repository the failed push created was deleted again
        loopback_hub.files("lab/fails-on-commit")

    # a push to a branch leaves main alone
    result = push_to_hub(model_dir, "lab/branched", revision="dev", private=True, **kw)
    assert "config.json" in loopback_hub.files("lab/branched", revision="dev")
    assert "config.json" not in loopback_hub.files("lab/branched")
    assert "README.md" in result.files and result.commit_oid

    # nothing listens on a port we just closed
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(HubPushError, match="could not reach"):
        push_to_hub(model_dir, "lab/unreachable", endpoint=f"http://127.0.0.1:{port}", token="hf_loopback_token")

    # the CLI says the same in one line, exit code 2 (cli.main in this process: both are refused
    # before any request, so no Hub endpoint is needed: a request would go to huggingface.co and fail otherwise)
    from hf_neuroformer import cli

    capsys.readouterr()
    code = cli.main(["push", "--model", str(tmp_path / "empty"), "--repo-id", "lab/x"])
    err = capsys.readouterr().err
    assert code == 2 and "neuroformer push: error: --model:" in err, err[-2000:]
    code = cli.main(["push", "--model", str(model_dir), "--repo-id", "not a repo"])
    err = capsys.readouterr().err
    assert code == 2 and "--repo-id: 'not a repo' is not a Hub repository id" in err, err

    assert _tree_digest(model_dir) == before, "a failed push modified the local model directory"


def test_a_push_after_the_hub_went_down_says_it_could_not_reach_it(trained, loopback_hub):
    """Break test (of the loopback hub): a hub stopped between two pushes went on answering the second one on
    the connection huggingface_hub's session kept alive, so "the server went away" could not be tested; the
    second push succeeded. Now it fails as against a server that is down: one HubPushError naming the step and
    the endpoint, and the local model directory untouched."""
    d, _, _, _ = trained
    before = _tree_digest(d / "model")
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    push_to_hub(d / "model", "lab/gone", **kw)
    loopback_hub.stop()
    with pytest.raises(HubPushError, match=r"^validating the model card of 'lab/gone': could not reach "
                                           rf"{re.escape(loopback_hub.url)} .*was not changed"):
        push_to_hub(d / "model", "lab/gone", **kw)
    assert _tree_digest(d / "model") == before


def test_repush_replaces_stale_files_and_refuses_another_recording(trained, loopback_hub, tmp_path, capsys,
                                                                 monkeypatch):
    """Review findings: pushing again with fewer shards (or without a run file) must not leave the
    old shards (``data/<split>-*.parquet`` would load every row twice) or a stale ``metrics.json``;
    a recording of another session is refused as such before any request; the dataset card has
    the provenance; a branch push says how to load from the branch."""
    import dataclasses
    import shutil

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")

    push_to_hub(model_dir, "lab/repushed", recording=rec, dataset_repo_id="lab/repushed-windows", num_shards=2,
                data_description="pynapple test data, MIT", **kw)
    push_to_hub(model_dir, "lab/repushed", recording=rec, dataset_repo_id="lab/repushed-windows", num_shards=1, **kw)
    shards = sorted(f for f in loopback_hub.files("lab/repushed-windows", repo_type="dataset") if f.endswith(".parquet"))
    assert shards == [f"data/{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")], shards

    push_to_hub(model_dir, "lab/repushed-card", recording=rec, dataset_repo_id="lab/repushed-card-windows",
                data_description="pynapple test data A2929 (Peyrache lab), MIT", **kw)
    card = loopback_hub.files("lab/repushed-card-windows", repo_type="dataset")["README.md"].decode()
    assert "pynapple test data A2929 (Peyrache lab), MIT" in card

    # a folder saved with processor.save_pretrained pushes its processor_config.json (split_mode); a later
    # push of a folder without one must not leave it describing the model it replaces
    with_processor = tmp_path / "with-processor"
    shutil.copytree(model_dir, with_processor)
    (with_processor / "processor_config.json").write_text('{"split_mode": "trials"}')
    push_to_hub(with_processor, "lab/repushed", **kw)
    assert "processor_config.json" in loopback_hub.files("lab/repushed")
    bare = tmp_path / "no-metrics"
    shutil.copytree(model_dir, bare)
    (bare / "metrics.json").unlink()
    (bare / "test_generation.png").unlink()
    push_to_hub(bare, "lab/repushed", **kw)
    assert "metrics.json" not in loopback_hub.files("lab/repushed"), "a stale metrics.json of the earlier push stayed"
    assert "processor_config.json" not in loopback_hub.files("lab/repushed"), "a stale processor_config.json stayed"
    repushed = loopback_hub.files("lab/repushed")
    assert "test_generation.png" not in repushed, "a stale figure of the earlier push stayed"
    assert "![test_generation.png]" not in repushed["README.md"].decode()
    assert "![training_curves.png](training_curves.png)" in repushed["README.md"].decode()

    n_requests = len(loopback_hub.requests)
    other = dataclasses.replace(rec, session="another-session")
    with pytest.raises(ValueError, match=r"recording: .*another-session.* not units of this model"):
        push_to_hub(model_dir, "lab/other", recording=other, dataset_repo_id="lab/other-windows", **kw)
    assert len(loopback_hub.requests) == n_requests

    push_to_hub(model_dir, "lab/repushed", revision="dev", **kw)
    card = loopback_hub.files("lab/repushed", revision="dev")["README.md"].decode()
    assert 'from_pretrained("lab/repushed", revision="dev", trust_remote_code=True)' in card
    # the CLI in this process (a fresh process pushes in
    # test_refused_model_repo_leaves_no_dataset_and_a_missing_token_is_named)
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir,
                                            "--repo-id", "lab/repushed", "--revision", "dev")
    assert code == 0, stderr[-2000:]
    assert "from_pretrained('lab/repushed', revision='dev', trust_remote_code=True)" in stdout, stdout
    # the same files again: no commit, and the CLI says so instead of "pushed"
    assert "already holds these" in stdout and "] pushed" not in stdout, stdout


def test_a_second_push_with_new_weights_is_what_the_next_pull_loads(trained, loopback_hub, tmp_path, monkeypatch):
    """Pushed, pulled into a cache, pushed again with changed weights: a pull into the same cache loads the new
    weights (not the cached ones), and the first push's commit still loads the old ones."""
    import shutil

    from safetensors.torch import load_file, save_file

    d, _, _, _ = trained
    model_dir = tmp_path / "model"
    shutil.copytree(d / "model", model_dir)
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    first = push_to_hub(model_dir, "lab/twice", **kw)
    _point_this_process_at(loopback_hub, monkeypatch)
    cache = dict(cache_dir=tmp_path / "cache")
    old = nf.NeuroformerForPreTraining.from_pretrained("lab/twice", **cache).state_dict()
    weights = load_file(model_dir / "model.safetensors")
    weights["id_head.weight"] = weights["id_head.weight"] + 0.5
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    second = push_to_hub(model_dir, "lab/twice", allow_stale_metrics=True, **kw)  # its metrics.json: the old weights'
    assert second.commit_oid != first.commit_oid and not second.unchanged
    new = nf.NeuroformerForPreTraining.from_pretrained("lab/twice", **cache).state_dict()
    torch.testing.assert_close(new["id_head.weight"], old["id_head.weight"] + 0.5)
    assert all(torch.equal(new[k], old[k]) for k in old if k != "id_head.weight")
    pinned = nf.NeuroformerForPreTraining.from_pretrained("lab/twice", revision=first.commit_oid, **cache)
    assert torch.equal(pinned.state_dict()["id_head.weight"], old["id_head.weight"])


def test_refused_model_repo_leaves_no_dataset_and_a_missing_token_is_named(trained, loopback_hub, tmp_path):
    d, _, rec, _ = trained
    model_dir = d / "model"
    loopback_hub.fail_next("create", 403, "you cannot create repos in 'lab'")
    with pytest.raises(HubPushError, match=r"creating the model repository .* HTTP 403"):
        push_to_hub(model_dir, "lab/refused", recording=rec, dataset_repo_id="lab/refused-windows",
                    endpoint=loopback_hub.url, token="hf_loopback_token")
    with pytest.raises(KeyError):  # the dataset was not uploaded (nor its repository created)
        loopback_hub.files("lab/refused-windows", repo_type="dataset")

    env = {k: v for k, v in loopback_hub.env().items() if k != "HF_TOKEN"}
    res = subprocess.run([sys.executable, "-m", "hf_neuroformer.cli", "push", "--model", str(model_dir),
                          "--repo-id", "lab/no-token"], capture_output=True, text=True, timeout=300,
                         env={**{k: v for k, v in os.environ.items() if k != "HF_TOKEN"}, **env})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "HTTP 401" in res.stderr and "set HF_TOKEN" in res.stderr, res.stderr[-2000:]


def test_windows_dataset_goes_to_the_models_branch_and_a_failed_model_commit_says_the_dataset_went_up(
        trained, loopback_hub, tmp_path):
    """Break-test findings: with ``revision`` the model went to the branch but its windows to the
    dataset repository's ``main`` (a later push of another model to ``main`` replaced them); a
    model commit failing after the dataset commit said nothing of the dataset already pushed; a
    model that reads modalities got prepare's advice instead of "push without the windows"."""
    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")

    push_to_hub(model_dir, "lab/branch-windows", revision="dev", recording=rec,
                dataset_repo_id="lab/branch-windows-data", **kw)
    on_dev = loopback_hub.files("lab/branch-windows-data", repo_type="dataset", revision="dev")
    on_main = loopback_hub.files("lab/branch-windows-data", repo_type="dataset")
    assert any(f.endswith(".parquet") for f in on_dev), sorted(on_dev)
    assert not any(f.endswith(".parquet") for f in on_main), sorted(on_main)
    assert 'load_dataset("lab/branch-windows-data", revision="dev")' in on_dev["README.md"].decode()
    # each card links to the other repository's branch, not to its main (empty, or another model's)
    assert f"[lab/branch-windows]({loopback_hub.url}/lab/branch-windows/tree/dev) (branch `dev`)" in \
        on_dev["README.md"].decode()
    from huggingface_hub import ModelCard

    card = ModelCard(loopback_hub.files("lab/branch-windows", revision="dev")["README.md"].decode())
    assert f"[lab/branch-windows-data]({loopback_hub.url}/datasets/lab/branch-windows-data/tree/dev) (branch `dev`: " \
           '`load_dataset("lab/branch-windows-data", revision="dev")`)' in card.text
    assert {r.dataset_revision for r in card.data.eval_results} == {"dev"}

    # the dataset commit is the first commit of the push, the model's the second
    loopback_hub.fail_next("commit", 500, "disk full", after=1)
    with pytest.raises(HubPushError, match=r"uploading the model .* HTTP 500.*windows dataset was already committed "
                                           r"to 'lab/late-fail-data'"):
        push_to_hub(model_dir, "lab/late-fail", recording=rec, dataset_repo_id="lab/late-fail-data", **kw)
    assert any(f.endswith(".parquet") for f in loopback_hub.files("lab/late-fail-data", repo_type="dataset"))
    with pytest.raises(KeyError):  # the model repository the push created was deleted again
        loopback_hub.files("lab/late-fail")

    import shutil

    with_modality = tmp_path / "with-modality"
    shutil.copytree(model_dir, with_modality)
    cfg = json.loads((with_modality / "config.json").read_text())
    cfg["modalities"] = [{"name": "head_direction", "kind": "behaviour"}]
    (with_modality / "config.json").write_text(json.dumps(cfg))
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"reads modalities \(head_direction\).*push the model without its windows"):
        push_to_hub(with_modality, "lab/mod", recording=rec, dataset_repo_id="lab/mod-data", **kw)
    assert len(loopback_hub.requests) == n_requests, "refused before any request"


def test_window_dataset_of_other_spikes_is_refused(trained, tmp_path):
    """The dataset card says the windows are the model's: a recording with the model's units but
    other spikes (re-simulated, re-exported) is refused before anything is written (the break
    test published such windows)."""
    from hf_neuroformer.hub import write_window_dataset

    d, nwb, rec, metrics = trained
    plan = load_pretrained(d / "model")[2]
    t = rec.spike_times.copy()
    k = int(np.searchsorted(t, plan.segments["validation"][0, 0] + 1.0))
    t[k] += 0.001  # one validation spike, 1 ms later
    moved = nf.SpikeRecording.from_unsorted(t, rec.unit_ids, unit_names=list(rec.unit_names),
                                            time_domain=rec.time_domain, session=rec.session)
    with pytest.raises(ValueError, match=r"other spikes in its validation split than the model was trained on"):
        write_window_dataset(d / "model", moved, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    # a recording of only some of the model's units was said to have "the units of the model", right after the
    # warning that it holds only some of them
    with pytest.warns(UserWarning, match=r"holds \d+ of the \d+ units"), \
            pytest.raises(ValueError, match=rf"^recording: it holds {rec.n_units - 1} of the model .*'s units of its "
                                            rf"session, not all {rec.n_units}, and other spikes in its "):
        write_window_dataset(d / "model", rec.select_units(list(rec.unit_names[1:])), tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    other_session = nf.SpikeRecording.from_unsorted(rec.spike_times, rec.unit_ids, unit_names=list(rec.unit_names),
                                                    time_domain=rec.time_domain, session="another")
    with pytest.raises(ValueError, match=r"^recording: this recording's units are not the ones the model was "
                                         r"trained on: .* pass the recording \(and epoch\) it was trained on$"):
        write_window_dataset(d / "model", other_session, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    counts = write_window_dataset(d / "model", rec, tmp_path / "ds")  # the training recording itself
    assert counts["test"] == metrics["n_test_windows"]


def test_cli_push_names_the_flags_for_a_foreign_recording(trained, shared_data, tmp_path, capsys):
    """``neuroformer push --data`` with another session's recording: the refusal names ``--data``
    and ``--epoch`` (push_to_hub's own check, for Python callers, said "recording: ... (and
    epoch)" to the command line), before any request."""
    from hf_neuroformer import cli

    d, _, _, _ = trained
    code = cli.main(["push", "--model", str(d / "model"), "--repo-id", "lab/x", "--data",
                     str(shared_data("allen_vcn_gratings")), "--dataset-repo-id", "lab/x-windows"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"^neuroformer push: error: --data: this recording's units are not the ones the model was trained "
                     r"on: 1000 of its 1000 units .* pass the recording \(and --epoch\) it was trained on$", err, re.M), err
    # the model's units, another epoch: its splits lie outside the recording, named by the flags too
    code = cli.main(["push", "--model", str(d / "model"), "--repo-id", "lab/x", "--data", str(shared_data(A2929)),
                     "--epoch", "sleep", "--dataset-repo-id", "lab/x-windows"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"^neuroformer push: error: --data: the train windows of this model span \[.*\] s but the "
                     r"recording covers \[.*\] s; pass the recording \(and --epoch\) the model was trained on$",
                     err, re.M), err


@pytest.fixture(scope="module")
def decoder(trained, tmp_path_factory):
    """A behaviour decoder fine-tuned for 1 step from ``trained`` (``neuroformer finetune`` output;
    its ``metrics.json`` records the absolute ``model_dir`` it started from)."""
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune

    d, _, rec, _ = trained
    out = tmp_path_factory.mktemp("hub-decoder") / "decoder"
    metrics = finetune(d / "model", rec, [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")],
                       output_dir=out, max_steps=1, batch_size=16, seed=0)
    return out, metrics


def test_push_publishes_no_local_paths(trained, decoder, loopback_hub, monkeypatch, capsys):
    """Break test: a decoder's ``metrics.json`` holds ``model_dir`` (the absolute path of the
    pretrained model on this machine, e.g. a home folder with the user name) and the push
    published it as is. Every pushed file is searched for the machine's paths."""
    d, _, _, _ = trained
    out, metrics = decoder
    assert metrics["model_dir"] == str(d / "model") and str(d).startswith("/")
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", out,
                                            "--repo-id", "lab/decoder-paths")
    assert code == 0, stderr[-3000:]
    files = loopback_hub.files("lab/decoder-paths")
    roots = {str(d), str(out.parent), os.path.expanduser("~")}
    for name, data in files.items():
        for root in roots:
            assert root.encode() not in data, f"{name} publishes the local path {root!r}"
    pushed = json.loads(files["metrics.json"])
    assert pushed["model_dir"] == "model"  # the directory's name, not where it lies
    assert {k: v for k, v in pushed.items() if k != "model_dir"} == \
        {k: v for k, v in json.loads((out / "metrics.json").read_text()).items() if k != "model_dir"}
    assert f"local path not published: metrics.json: {str(d / 'model')!r} -> 'model'" in stdout, stdout

    # Break test: the decoder (fine-tuned with decoding_generative_loss_weight 0, so no next-spike
    # heads saved) was mapped to AutoModelForPreTraining / AutoModelForCausalLM, which loaded it with
    # random id/dt heads, and got the sampler's generation_config.json; its decoding_report.json
    # (a run record) was not pushed
    assert json.loads((out / "config.json").read_text())["decoding_generative_loss_weight"] == 0
    assert set(json.loads(files["config.json"])["auto_map"]) == {
        "AutoConfig", "AutoModel", "AutoModelForSequenceClassification", "AutoProcessor"}
    assert "generation_config.json" not in files, sorted(files)
    assert json.loads(files["decoding_report.json"]) == json.loads((out / "decoding_report.json").read_text())
    assert files["test_predictions.csv"] == (out / "test_predictions.csv").read_bytes()  # the decoded test windows
    card = files["README.md"].decode()
    assert "This decoder cannot generate or score spikes" in card and "neuroformer generate" not in card

    # a decoder fine-tuned with decoding_generative_loss_weight > 0 saves trained next-spike heads:
    # it keeps the pretraining Auto classes and the generation defaults (staged only, not pushed)
    from hf_neuroformer.hub import has_next_spike_heads, save_for_hub
    from hf_neuroformer.modeling_neuroformer import NeuroformerForBehaviorDecoding

    gen = out.parent / "decoder-gen"
    cfg = nf.NeuroformerConfig.from_pretrained(out)
    cfg.decoding_generative_loss_weight = 0.5
    NeuroformerForBehaviorDecoding(cfg).save_pretrained(gen)
    for name in ("vocab.json", "tokenizer_config.json"):
        (gen / name).write_bytes((out / name).read_bytes())
    assert has_next_spike_heads(gen) and has_next_spike_heads(d / "model") and not has_next_spike_heads(out)
    save_for_hub(gen, out.parent / "decoder-gen-stage")
    auto_map = json.loads((out.parent / "decoder-gen-stage" / "config.json").read_text())["auto_map"]
    assert {"AutoModelForPreTraining", "AutoModelForCausalLM", "AutoModelForSequenceClassification"} <= set(auto_map)
    assert (out.parent / "decoder-gen-stage" / "generation_config.json").is_file()


def test_a_model_in_a_subfolder_loads_with_subfolder_through_every_auto_class(
        trained, decoder, loopback_hub, tmp_path, monkeypatch):
    """A pushed model's files (``save_for_hub``, remote code included) in a subfolder of a local
    folder and of a Hub repository load with ``subfolder=`` through AutoConfig, AutoTokenizer,
    AutoModel, AutoModelForPreTraining and AutoProcessor, as the installed classes, with the
    model's logits; with ``trust_remote_code=True`` too, except AutoTokenizer: transformers reads a
    tokenizer's remote code before the installed class, and reads every remote module from the
    repository's root whatever ``subfolder`` says (``save_for_hub(subfolder=)`` stages a folder whose remote code loads
    there: test_remote_code_of_a_model_staged_for_a_subfolder_loads_from_there).
    A decoder without next-spike heads in a subfolder, loaded as a pretraining model, warns with
    the pretrained model its metrics.json (there) records."""
    from huggingface_hub import HfApi
    from transformers import (AutoConfig, AutoModel, AutoModelForPreTraining, AutoProcessor,
                              AutoTokenizer)

    from hf_neuroformer.hub import save_for_hub
    from hf_neuroformer.modeling_neuroformer import NextSpikeHeadsNotLoadedWarning

    d, _, _, _ = trained
    root = tmp_path / "root"
    save_for_hub(d / "model", root / "sub")
    save_for_hub(decoder[0], root / "dec")
    assert (root / "sub" / "modeling_neuroformer.py").is_file() and "auto_map" in json.loads(
        (root / "sub" / "config.json").read_text())
    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")
    api.create_repo("lab/nested")
    api.upload_folder(folder_path=root / "sub", repo_id="lab/nested", path_in_repo="sub")
    _point_this_process_at(loopback_hub, monkeypatch)

    local = nf.NeuroformerForPreTraining.from_pretrained(d / "model").eval()
    ids = torch.tensor([[1, 3, 4, 2]])
    past = torch.tensor([[1, 4, 3, 2]])
    batch = dict(input_ids=ids, dt_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids),
                 past_input_ids=past, past_dt_ids=torch.zeros_like(past),
                 past_attention_mask=torch.ones_like(past))
    with torch.no_grad():
        want = local(**batch).logits
    hub = dict(cache_dir=tmp_path / "cache")
    for where in (root, "lab/nested"):
        for trust in (False, True):
            kw = dict(subfolder="sub", trust_remote_code=trust, **hub)
            assert type(AutoConfig.from_pretrained(where, **kw)) is nf.NeuroformerConfig
            assert type(AutoModel.from_pretrained(where, **kw)) is nf.NeuroformerModel
            model = AutoModelForPreTraining.from_pretrained(where, **kw).eval()
            assert type(model) is nf.NeuroformerForPreTraining
            with torch.no_grad():
                torch.testing.assert_close(model(**batch).logits, want, rtol=0, atol=1e-6)
            processor = AutoProcessor.from_pretrained(where, **kw)
            assert type(processor) is nf.NeuroformerProcessor
            assert len(processor.tokenizer) == local.config.vocab_size
            if trust:  # transformers looks for tokenization_neuroformer.py at the root, not in sub
                with pytest.raises(OSError, match=r"does not appear to have a file named "
                                                  r"tokenization_neuroformer\.py"):
                    AutoTokenizer.from_pretrained(where, **kw)
                tok = nf.NeuroformerTokenizer.from_pretrained(where, subfolder="sub", **hub)
            else:
                tok = AutoTokenizer.from_pretrained(where, **kw)
            assert type(tok) is nf.NeuroformerTokenizer and len(tok) == local.config.vocab_size
    with pytest.warns(NextSpikeHeadsNotLoadedWarning,
                      match=r"fine-tuned from, 'model', as its metrics\.json records"):
        AutoModelForPreTraining.from_pretrained(root, subfolder="dec")


def test_remote_code_of_a_model_staged_for_a_subfolder_loads_from_there(trained, decoder, loopback_hub, tmp_path,
                                                                        monkeypatch):
    """Break test: transformers reads the modules an ``auto_map`` names from the repository's root whatever
    ``subfolder`` says, so a model pushed into a subfolder did not load with ``trust_remote_code=True``
    ("does not appear to have a file named configuration_neuroformer.py"). ``save_for_hub(subfolder=)``
    writes an ``auto_map`` that names the folder; every entry (config's and tokenizer's) now loads its remote
    class from the folder of a local root and of a Hub repository, the model with the local logits. Loaded
    from there and saved again, the folder holds the code beside config.json, so its saved ``auto_map`` names
    no folder (the object in memory keeps its own). (Without the package, in a fresh interpreter, the same
    held for AutoConfig / AutoModel / AutoModelForPreTraining / AutoTokenizer when this was fixed; an
    interpreter start costs about 8 s, so the remote classes are loaded in this process.)"""
    from huggingface_hub import HfApi
    from transformers import AutoTokenizer
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    from hf_neuroformer.configuration_neuroformer import AUTO_MAP
    from hf_neuroformer.hub import save_for_hub

    d, _, _, _ = trained
    root = tmp_path / "root"
    for bad in ("v1.0", "../up", "/abs", "a--b", "a//b", "sub/", 3):
        with pytest.raises(ValueError, match=r"^subfolder: .*expected .*folder of the repository"):
            save_for_hub(d / "model", tmp_path / "never", subfolder=bad)
    assert not (tmp_path / "never").exists()
    save_for_hub(d / "model", root / "my-runs" / "a2929", subfolder="my-runs/a2929")
    save_for_hub(decoder[0], root / "dec", subfolder="dec")
    auto_map = json.loads((root / "my-runs" / "a2929" / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForPreTraining"] == "my-runs/a2929/modeling_neuroformer.NeuroformerForPreTraining"
    assert json.loads((root / "my-runs" / "a2929" / "tokenizer_config.json").read_text())["auto_map"] == {
        "AutoTokenizer": ["my-runs/a2929/tokenization_neuroformer.NeuroformerTokenizer", None]}
    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")
    api.create_repo("lab/runs")
    api.upload_folder(folder_path=root, repo_id="lab/runs")
    _point_this_process_at(loopback_hub, monkeypatch)

    local = nf.NeuroformerForPreTraining.from_pretrained(d / "model").eval()
    ids = torch.tensor([[1, 3, 4, 2]])
    batch = dict(input_ids=ids, dt_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids),
                 past_input_ids=ids.flip(1), past_dt_ids=torch.zeros_like(ids),
                 past_attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        want = local(**batch).logits
    hub = dict(cache_dir=tmp_path / "cache")
    for where in (root, "lab/runs"):
        kw = dict(subfolder="my-runs/a2929", **hub) if where == "lab/runs" else dict(subfolder="my-runs/a2929")
        classes = {auto: get_class_from_dynamic_module(ref, where, **hub) for auto, ref in auto_map.items()}
        assert all(c.__module__.startswith("transformers_modules.") for c in classes.values())  # remote, not ours
        assert {a: c.__name__ for a, c in classes.items()} == {a: r.rsplit(".", 1)[1] for a, r in auto_map.items()}
        model = classes["AutoModelForPreTraining"].from_pretrained(where, **kw).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(**batch).logits, want, rtol=0, atol=1e-6)
        tok = AutoTokenizer.from_pretrained(where, trust_remote_code=True, **kw)  # failed: no such file at the root
        assert type(tok).__name__ == "NeuroformerTokenizer" and len(tok) == local.config.vocab_size
        dec_ref = json.loads((root / "dec" / "config.json").read_text())["auto_map"]["AutoModelForSequenceClassification"]
        assert dec_ref == "dec/modeling_neuroformer.NeuroformerForBehaviorDecoding"
        assert get_class_from_dynamic_module(dec_ref, where, **hub).__name__ == "NeuroformerForBehaviorDecoding"
    again = tmp_path / "again"
    model.save_pretrained(again)
    tok.save_pretrained(again)
    assert json.loads((again / "config.json").read_text())["auto_map"] == AUTO_MAP
    assert json.loads((again / "tokenizer_config.json").read_text())["auto_map"] == {
        "AutoTokenizer": ["tokenization_neuroformer.NeuroformerTokenizer", None]}
    assert {"configuration_neuroformer.py", "modeling_neuroformer.py", "tokenization_neuroformer.py"} <= {
        p.name for p in again.glob("*.py")}
    assert model.config.auto_map == auto_map  # the loaded model keeps where it came from
    # the installed classes load it from the subfolder too, and saved again it names no folder either
    pulled = nf.NeuroformerForPreTraining.from_pretrained("lab/runs", subfolder="my-runs/a2929", **hub)
    pulled.save_pretrained(tmp_path / "again-installed")
    assert json.loads((tmp_path / "again-installed" / "config.json").read_text())["auto_map"] == AUTO_MAP


def test_push_into_subfolders_keeps_each_model_and_card_in_its_folder(trained, decoder, loopback_hub, tmp_path,
                                                                      monkeypatch, capsys):
    """Break test: ``save_for_hub(subfolder=)`` staged a model for a folder of a repository, but
    ``push_to_hub`` and ``neuroformer push`` had no ``subfolder``: the user staged and uploaded by hand,
    without a card, the clean-up of an earlier push's run files or the check for another model.
    Two different models pushed into two folders of one repository (the API, then the CLI) load each
    with its own weights through ``AutoModelForPreTraining(repo, subfolder=, trust_remote_code=True)``;
    each folder has its card (loading with ``subfolder=``); the root README is written once (none was
    there) and left as it is after; pushes into one folder (a decoder, then the model back) replace and
    clean up that folder only, byte for byte leaving the other; another model's folder is refused by name."""
    import shutil

    from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
    from safetensors.torch import load_file, save_file

    from hf_neuroformer.hub import card_mark_state, kept_outside_model_folders

    d, _, _, _ = trained
    first, second = d / "model", tmp_path / "second"
    shutil.copytree(first, second)
    weights = load_file(second / "model.safetensors")
    weights["id_head.weight"] = weights["id_head.weight"] + 0.5
    save_file(weights, second / "model.safetensors", metadata={"format": "pt"})
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    with pytest.raises(ValueError, match=r"^subfolder \(CLI: --subfolder\): 'a\.b' cannot hold"):
        push_to_hub(first, "lab/multi", subfolder="a.b", **kw)
    a = push_to_hub(first, "lab/multi", subfolder="runs/a", **kw)
    assert a.subfolder == "runs/a" and "README.md" in a.files and "runs/a/README.md" in a.files
    assert all(f == "README.md" or f.startswith("runs/a/") for f in a.files), a.files
    root_card = loopback_hub.files("lab/multi")["README.md"]
    assert card_mark_state(root_card.decode()) == "unedited"
    assert "runs/a/" in root_card.decode() and "neuroformer" in ModelCard(root_card.decode()).data.tags
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", second, "--repo-id",
                                      "lab/multi", "--subfolder", "b/")
    assert code == 2 and "--subfolder: 'b/' cannot hold a model's remote code; expected a folder" in err, err
    # (second's metrics.json scores the first's weights)
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", second, "--repo-id",
                                      "lab/multi", "--subfolder", "b", "--allow-stale-metrics")
    assert code == 0, err[-2000:]
    assert "to lab/multi (folder 'b')" in out and "had no README.md at its root" not in out, out
    assert ("load it with AutoModelForPreTraining.from_pretrained('lab/multi', subfolder='b', "
            "trust_remote_code=True)") in out, out
    files = loopback_hub.files("lab/multi")
    assert files["README.md"] == root_card  # the second push left the root's README as it was
    for sub, src in (("runs/a", first), ("b", second)):
        card = files[f"{sub}/README.md"].decode()
        assert f"\n# multi/{sub}\n" in card and card_mark_state(card) == "unedited"  # the folder's card names it
        assert f'AutoModelForPreTraining.from_pretrained("lab/multi", subfolder="{sub}", trust_remote_code=True)' \
            in card, card
        assert f"--include '{sub}/*' --local-dir multi`" in card and f"--model multi/{sub} ..." in card, card
        assert files[f"{sub}/metrics.json"] == (src / "metrics.json").read_bytes()
    # pulled where hf_neuroformer cannot be imported (in this process the installed classes would answer): the
    # repository's remote code from each folder, with that folder's weights and tokenizer
    script = textwrap.dedent(f"""
        import sys
        sys.modules["hf_neuroformer"] = None
        import torch
        from transformers import AutoModelForPreTraining, AutoTokenizer
        for i, sub in enumerate(("runs/a", "b")):
            model = AutoModelForPreTraining.from_pretrained("lab/multi", subfolder=sub, trust_remote_code=True)
            tok = AutoTokenizer.from_pretrained("lab/multi", subfolder=sub, trust_remote_code=True)
            assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
            assert len(tok) == model.config.vocab_size
            torch.save(model.state_dict(), {str(tmp_path)!r} + f"/pulled-{{i}}.pt")
    """)
    pulled = _run(script, loopback_hub.env())
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    for i, src in enumerate((first, second)):
        got = torch.load(tmp_path / f"pulled-{i}.pt")
        want = load_file(src / "model.safetensors")
        assert want.keys() <= got.keys() and all(torch.equal(got[k], v) for k, v in want.items()), src

    # a decoder into runs/a: b untouched; then the model back into runs/a: the decoder's run files are gone
    b_files = {k: v for k, v in files.items() if k.startswith("b/")}
    dec = push_to_hub(decoder[0], "lab/multi", subfolder="runs/a", **kw)
    files = loopback_hub.files("lab/multi")
    assert "runs/a/decoding_report.json" in files and "runs/a/generation_config.json" not in files
    assert {k: v for k, v in files.items() if k.startswith("b/")} == b_files
    assert files["README.md"] == root_card and dec.kept == [] and dec.edited_cards == []
    back = push_to_hub(first, "lab/multi", subfolder="runs/a", **kw)
    files = loopback_hub.files("lab/multi")
    assert not {"runs/a/decoding_report.json", "runs/a/test_predictions.csv"} & set(files), sorted(files)
    assert {k: v for k, v in files.items() if k.startswith("b/")} == b_files and files["README.md"] == root_card
    assert back.kept == [] and not back.unchanged

    # a folder's card edited on the Hub is named by its path; another model's folder is refused, the root is not
    api = HfApi(**kw)
    text = files["b/README.md"].decode().replace("## Citation", "## Notes\n\n## Citation", 1)
    api.create_commit("lab/multi", [CommitOperationAdd("b/README.md", text.encode()),
                                    CommitOperationAdd("c/config.json", b'{"model_type": "bert"}'),
                                    CommitOperationAdd("c/pytorch_model.bin", b"weights")], commit_message="others")
    again = push_to_hub(second, "lab/multi", subfolder="b", allow_stale_metrics=True, **kw)
    assert len(again.edited_cards) == 1 and "model card b/README.md of the model repository 'lab/multi' was edited" \
        in again.edited_cards[0], again.edited_cards
    # a folder's README of the user's own (no mark, no tag of the package) is said to be replaced, as the root's is
    api.upload_file(path_or_fileobj=b"# Notes on run d\n", path_in_repo="d/README.md", repo_id="lab/multi")
    head = api.repo_info("lab/multi").sha
    own = push_to_hub(first, "lab/multi", subfolder="d", **kw)
    assert own.replaced_readme == head and own.edited_cards == [] and own.kept == []
    with pytest.raises(ValueError, match=r"the folder 'c' of the model repository 'lab/multi' .* holds a model of "
                                         r"another kind \(config.json model_type 'bert'\)"):
        push_to_hub(first, "lab/multi", subfolder="c", **kw)
    assert loopback_hub.files("lab/multi")["c/pytorch_model.bin"] == b"weights"
    root = push_to_hub(first, "lab/multi", **kw)  # the weights in folders are no reason to refuse the root
    # the models of the folders stay beside it (named as kept, as any file this push did not write)
    assert root.replaced_readme is None and "b/model.safetensors" in root.kept and "c/config.json" in root.kept
    assert all("/" in f for f in root.kept), root.kept
    assert loopback_hub.files("lab/multi")["b/model.safetensors"] == b_files["b/model.safetensors"]
    # ... but as folders of models kept on purpose (each holds its own config.json), not as files to delete
    assert root.kept_model_folders == ["b", "c", "d", "runs/a"] and kept_outside_model_folders(root) == []
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="notes/plot.json", repo_id="lab/multi")
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", first, "--repo-id", "lab/multi")
    assert code == 0, err[-2000:]
    assert ("4 folders of lab/multi holding a model of its own (config.json) were left as they were: b/, c/, d/, "
            "runs/a/") in out, out
    assert ("1 file already in lab/multi was not written by this push and stays there: notes/plot.json (delete it "
            "on the Hub if it belongs to another model)") in out, out
    assert "b/model.safetensors" not in out, out


def test_model_folders_of_names_the_topmost_folders_holding_a_config():
    """The folders of models kept beside a push (``PushResult.kept_model_folders``): a folder with a
    ``config.json`` of its own, the topmost of nested ones, below the folder pushed into only."""
    from hf_neuroformer.hub import PushResult, kept_outside_model_folders, model_folders_of

    files = ["a/config.json", "a/model.safetensors", "a/inner/config.json", "a/inner/x.bin", "runs/b/config.json",
             "runs/b/README.md", "runs/notes.txt", "notebook.ipynb", "config.json"]
    assert model_folders_of(files) == ["a", "runs/b"]
    assert model_folders_of(files, "a") == ["a/inner"]  # the folder pushed into is not one of them
    assert model_folders_of(["runs/notes.txt"]) == []
    result = PushResult(repo_id="lab/x", commit_url="", commit_oid="", files=[], kept=files,
                        kept_model_folders=model_folders_of(files))
    assert kept_outside_model_folders(result) == ["runs/notes.txt", "notebook.ipynb", "config.json"]


def test_push_of_a_folder_with_an_unfinished_run_is_refused_before_any_request(trained, loopback_hub, tmp_path,
                                                                                monkeypatch, capsys):
    """Break test: a folder where a ``train --overwrite`` run was killed holds the EARLIER model beside
    that run's checkpoints and its record (``train_unfinished.json``); ``push_to_hub`` and ``neuroformer
    push`` published the earlier model without a word (the loaders warn). Both refuse now, naming the
    record and the way out, before any request (nothing uploaded, no repository made); with the record
    deleted the earlier model is pushed."""
    from hf_neuroformer.run_record import UNFINISHED_FINETUNE, UNFINISHED_TRAIN, write_unfinished_run

    d, _, _, _ = trained
    model_dir = tmp_path / "model"
    shutil.copytree(d / "model", model_dir)
    record = write_unfinished_run(model_dir, "train")
    (model_dir / "checkpoints" / "step-99").mkdir(parents=True)  # the killed run's checkpoint
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    with pytest.raises(ValueError, match=r"^model_dir \(CLI: --model\): a training run into .* has not saved its "
                                         r"model \(train_unfinished\.json is there.*step-99.*Resume it .*Nothing was "
                                         r"uploaded.*delete train_unfinished\.json first$"):
        push_to_hub(model_dir, "lab/unfinished", **kw)
    # staging it by hand (save_for_hub, then HfApi.upload_folder) published the earlier model the same way
    with pytest.raises(ValueError) as staged:
        save_for_hub(model_dir, tmp_path / "stage")
    assert str(staged.value).startswith("model_dir (CLI: --model): a training run into "), staged.value
    assert str(staged.value).endswith("delete train_unfinished.json first") and not (tmp_path / "stage").exists()
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id",
                                      "lab/unfinished")
    assert code == 2 and "--model: a training run into" in err and "delete train_unfinished.json first" in err, err
    # a fine-tuning's record too, both named when both are there
    write_unfinished_run(model_dir, "finetune")
    with pytest.raises(ValueError, match=r"a fine-tuning into .*delete train_unfinished\.json / "
                                         r"finetune_unfinished\.json first$"):
        push_to_hub(model_dir, "lab/unfinished", **kw)
    assert loopback_hub.requests == []
    with pytest.raises(KeyError):
        loopback_hub.files("lab/unfinished")
    # the way out the message gives: delete the records, and the earlier model (the one in the folder) goes up
    record.unlink()
    (model_dir / UNFINISHED_FINETUNE).unlink()
    assert not (model_dir / UNFINISHED_TRAIN).exists()
    pushed = push_to_hub(model_dir, "lab/unfinished", **kw)
    assert loopback_hub.files("lab/unfinished")["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    assert not any("unfinished" in f or f.startswith("checkpoints/") for f in pushed.files), pushed.files


def test_windows_dataset_with_a_subfolder_is_refused_before_any_request(trained, loopback_hub, monkeypatch, capsys):
    """Break test: with ``subfolder`` the windows dataset still went to its repository's root, and its card
    linked the model repository without the folder: two folder models sharing one dataset repository replaced
    each other's windows. The combination is refused by both flags, before any request (and before the CLI
    reads --data)."""
    d, nwb, rec, _ = trained
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    with pytest.raises(ValueError, match=r"^dataset_repo_id \(CLI: --dataset-repo-id\) with subfolder \(CLI: "
                                         r"--subfolder\) 'runs/a': a windows dataset goes to the root of its "
                                         r"repository.*nothing was uploaded$"):
        push_to_hub(d / "model", "lab/sub-data", subfolder="runs/a", recording=rec, dataset_repo_id="lab/sub-windows",
                    **kw)
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", d / "model", "--repo-id",
                                      "lab/sub-data", "--subfolder", "a", "--data", tmp_missing := "/nonexistent.nwb",
                                      "--dataset-repo-id", "lab/sub-windows")
    assert code == 2 and "--dataset-repo-id with --subfolder 'a': a windows dataset goes to the root" in err, err
    assert tmp_missing not in err  # refused on the flags, before the recording was looked for
    assert loopback_hub.requests == []


def test_private_push_into_an_existing_public_repo_is_refused(trained, loopback_hub, monkeypatch, capsys):
    """Break test: ``--private`` with a repository that already exists and is public pushed the
    model into the public repository (``create_repo(exist_ok=True)`` keeps the visibility) and
    said nothing; the same for the windows dataset repository."""
    from huggingface_hub import HfApi

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)
    api.create_repo("lab/public-model")
    with pytest.raises(ValueError, match=r"^private \(CLI: --private\): the model repository 'lab/public-model' at .* "
                                         r"already exists and is public.*nothing was uploaded"):
        push_to_hub(model_dir, "lab/public-model", private=True, recording=rec,
                    dataset_repo_id="lab/public-model-windows", **kw)
    assert sorted(loopback_hub.files("lab/public-model")) == [".gitattributes"]
    assert api.model_info("lab/public-model").private is False
    with pytest.raises(KeyError):  # nor the dataset repository created
        loopback_hub.files("lab/public-model-windows", repo_type="dataset")

    api.create_repo("lab/public-windows", repo_type="dataset")
    with pytest.raises(ValueError, match=r"the dataset repository 'lab/public-windows' .* already exists and is public"):
        push_to_hub(model_dir, "lab/private-model", private=True, recording=rec, dataset_repo_id="lab/public-windows",
                    **kw)
    assert sorted(loopback_hub.files("lab/public-windows", repo_type="dataset")) == [".gitattributes"]
    with pytest.raises(KeyError):  # the model repository the refused push created was deleted again
        loopback_hub.files("lab/private-model")

    # the CLI names the flag, exit code 2
    code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir,
                                    "--repo-id", "lab/public-model", "--private")
    # the flag alone (it said 'private (CLI: --private): ...', the Python argument's name beside it)
    assert code == 2 and "neuroformer push: error: --private: " in err and "private (" not in err, err[-2000:]
    # a new repository is created private, and pushing to it again privately works
    push_to_hub(model_dir, "lab/new-private", private=True, **kw)
    push_to_hub(model_dir, "lab/new-private", private=True, **kw)
    assert api.model_info("lab/new-private").private is True
    assert "config.json" in loopback_hub.files("lab/new-private")


def test_card_does_not_say_a_target_was_trained_on_the_whole_split_of_a_few_shot_decoder(decoder):
    """With several targets, a train split whose windows lack one target's value got '(x trained on
    N with a value ...)' from the whole split's count, also when only a few-shot block of it was
    trained on ('(20 used for training)' on the same line): it now gives the split's count as such."""
    from hf_neuroformer.hub import build_model_card

    out, metrics = decoder
    rep = metrics["decoding_report"]
    n = rep["train"]["n_windows"]
    train = {**rep["train"], "n_masked_nan": {"ry": 0, "x": 10}, "n_windows_target": {"ry": n, "x": n - 10}}
    few = {**metrics, "decoding_report": {**rep, "train": train}, "n_train_windows": 20}
    line = f"- train: {n} windows (20 used for training), {train['n_spikes']} spikes (x: {n - 10} with a value; the rest"
    assert line in build_model_card(out, "lab/few", few).text
    whole = {**few, "n_train_windows": n}
    assert f"spikes (x trained on {n - 10} with a value; the rest" in build_model_card(out, "lab/whole", whole).text
    # test windows of a class the train split lacks (left out of the scores by finetune) are said, with the class
    test = {**rep["test"], "n_unseen_class": {"x": 0, "ry": 4}, "unseen_classes": {"ry": [7]}}
    unseen = {**metrics, "decoding_report": {**rep, "test": test}}
    assert (f"- test: {test['n_windows']} windows, {test['n_spikes']} spikes; left out as of a class the train split "
            "lacks: 4 of ry (class [7]).") in build_model_card(out, "lab/unseen", unseen).text


def test_card_lists_undefined_metrics_instead_of_dropping_them(decoder):
    """The audit saw a NaN metric (null in metrics.json: R^2 of a target constant over the test
    windows) vanish from the card without a word: card_metrics keeps finite values only."""
    from hf_neuroformer.hub import build_model_card

    out, metrics = decoder
    # and a confidence interval that could not be given (null, with its reason): not an undefined metric
    metrics = {**metrics, "test/x/r2": None, "test/x/pearson_r": float("nan"), "test/x/rmse_ci95": None,
               "test/x/rmse_ci95_reason": "3 blocks, fewer than 5: too few independent pieces for a bootstrap interval"}
    card = build_model_card(out, "lab/undefined", metrics)
    for key in ("test/x/r2", "test/x/pearson_r"):
        assert f"(`{key}`) | undefined (null in metrics.json) |" in card.text, key
    # the model-index metadata (which cannot hold NaN) lists only the defined ones
    listed = {f"{r.dataset_split}/{r.metric_type}" for r in card.data.eval_results}
    assert "test/x/r2" not in listed and "test/x/rmse" in listed
    assert "test/x/ci95_n_blocks" in metrics and "test/ci95_block_s" in metrics  # written by finetune
    assert "test/x/r2_ci95" in metrics
    assert "ci95" not in card.text and not [k for k in listed if "ci95" in k]


def test_card_gives_the_reason_an_undefined_metric_is_null(trained):
    """Break test: train's metrics.json carries why a null figure is undefined (``test/<key>_reason``,
    in evaluate's words: too few units, a silent test generation, ...), but the card's row said only
    "undefined (null in metrics.json)". The row now gives the reason and its key; a null figure with
    no reason keeps the bare text."""
    from hf_neuroformer.hub import build_model_card
    from hf_neuroformer.metrics.fidelity import firing_rate_correlation

    d, _, rec, metrics = trained
    two = rec.select_units([0, 1])  # a Pearson r over units needs 3: rate_corr is undefined
    reason = firing_rate_correlation(two, two)["rate_corr_reason"]
    assert reason
    metrics = {**metrics, "test/rate_corr": None, "test/rate_corr_reason": reason, "test/binned_count_corr_mean": None}
    metrics.pop("test/binned_count_corr_mean_reason", None)
    rows = [line for line in build_model_card(d / "model", "lab/why", metrics).text.splitlines()
            if line.startswith("| test |")]
    row = next(line for line in rows if "(`test/rate_corr`)" in line)
    assert f"| undefined (null in metrics.json: {reason} (`test/rate_corr_reason`)) |" in row, row
    row = next(line for line in rows if "(`test/binned_count_corr_mean`)" in line)
    assert "| undefined (null in metrics.json) |" in row, row


def test_a_provenance_of_several_lines_stays_one_item_of_the_cards(trained, decoder, tmp_path):
    """Break test: --provenance / data_description went into the cards as it was, so a provenance
    of several lines (pasted from a paper's page) put its later lines at the start of card lines:
    '# ...' became a heading, '---' a rule, '- ...' an item of its own, cutting the card's data
    list apart. Each card now holds it as one list item, its lines joined by <br>, nothing of it
    lost; the one-line case is as before."""
    from hf_neuroformer.hub import build_model_card, write_window_dataset

    lines = ["Peyrache lab, pynapple test data A2929-200711", "# Paper: Peyrache et al. 2015", "---",
             "- licence: MIT", "", "   DANDI 000056  "]
    text = "\n".join(lines)
    out, metrics = decoder
    model_card = str(build_model_card(out, "lab/provenance", metrics, data_description=text))
    d, _, rec, _ = trained
    write_window_dataset(d / "model", rec, tmp_path / "ds", data_description=text)
    dataset_card = (tmp_path / "ds" / "README.md").read_text()
    want = ("- Provenance: Peyrache lab, pynapple test data A2929-200711<br># Paper: Peyrache et al. 2015<br>---<br>"
            "- licence: MIT<br>DANDI 000056")
    for card in (model_card, dataset_card):
        assert [line for line in card.splitlines() if "Provenance" in line] == [want]
        for line in ("# Paper: Peyrache et al. 2015", "---", "- licence: MIT", "   DANDI 000056  "):
            # '---' closes the YAML header once: only there may a card line be a rule
            assert card.splitlines().count(line) == (int(card.startswith("---\n")) * 2 if line == "---" else 0), line
    one = str(build_model_card(out, "lab/provenance", metrics, data_description="Peyrache lab, MIT"))
    assert "\n- Provenance: Peyrache lab, MIT\n" in one
    assert "Provenance" not in str(build_model_card(out, "lab/provenance", metrics, data_description=" \n "))


def test_decoder_card_describes_a_decoder(trained, decoder, loopback_hub, tmp_path, capsys):
    """Break test: the card of a pushed decoder (``neuroformer finetune`` output) said "pretrained
    for next-spike prediction", "nats per spike token" and "baselines", filed its decoding
    metrics under the task ``next-spike-prediction``, listed the window counts ``<target>/n`` as
    metrics and named the dataset after the repository (metrics.json had no recording)."""
    from huggingface_hub import ModelCard

    from hf_neuroformer import cli

    d, _, _, _ = trained
    out, metrics = decoder
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    push_to_hub(out, "lab/decoder-card", **kw)
    # 'neuroformer push --help' said --model is a 'neuroformer train' directory; a decoder goes up, its windows not
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["push"].format_help().split())
    assert "or a decoder written by 'neuroformer finetune'" in help_text
    assert "(a pretrained model's; a decoder's windows are refused)" in help_text
    card = ModelCard(loopback_hub.files("lab/decoder-card")["README.md"].decode())
    results = card.data.eval_results
    assert {r.task_type for r in results} == {"behaviour-decoding"}
    assert {r.task_name for r in results} == {"Behaviour decoding: ry (circular), x (regression)"}
    got = {f"{r.dataset_split}/{r.metric_type}": r.metric_value for r in results}
    assert got == model_index_metrics(metrics)  # the recorded target's SD is the data's, in the card's text only
    assert {"test/loss", "test/ry/mean_angular_error_rad", "test/x/r2", "validation/x/rmse"} <= set(got), sorted(got)
    assert not [k for k in got if k.endswith("/n")], sorted(got)
    assert {r.dataset_name for r in results} == {"A2929-200711"}
    names = {r.metric_type: r.metric_name for r in results if r.dataset_split == "test"}
    assert names["ry/mean_angular_error_rad"] == "test ry: mean angular error (rad)"
    assert names["x/r2"] == "test x: R^2"
    text = card.text
    for wrong in ("pretrained for next-spike prediction", "Nats per spike", "baselines"):
        assert wrong not in text, wrong
    assert "fine-tuned to decode behaviour (ry (circular), x (regression))" in text
    assert "Fine-tuned from the pretrained model `model`" in text
    assert "AutoModelForSequenceClassification.from_pretrained(\"lab/decoder-card\", trust_remote_code=True)" in text
    assert "| test | x: R^2 (`test/x/r2`) |" in text
    for split in ("train", "validation", "test"):  # the windows and spikes the decoder was scored on
        rep = metrics["decoding_report"][split]
        assert f"- {split}: {rep['n_windows']} windows, {rep['n_spikes']} spikes." in text, split

    # the pretraining model's card keeps its task and wording
    push_to_hub(d / "model", "lab/pretrained-card", **kw)
    card = ModelCard(loopback_hub.files("lab/pretrained-card")["README.md"].decode())
    assert {r.task_type for r in card.data.eval_results} == {"next-spike-prediction"}
    assert "pretrained for next-spike prediction" in card.text and "Nats per spike token" in card.text
    # Break test: the card said `neuroformer generate --model <local dir>` without how to get one, and
    # `--model lab/pretrained-card` (the repository id) was refused as "not a directory" without a word of downloading
    download = "hf download lab/pretrained-card --local-dir pretrained-card"
    assert (f"need the package and a local copy of this repository: `{download}`, then\n"
            "`neuroformer generate --model pretrained-card ...`.") in card.text, card.text
    from huggingface_hub import snapshot_download

    from hf_neuroformer import cli
    from hf_neuroformer.generation import check_model_dir

    capsys.readouterr()
    code = cli.main(["generate", "--model", "lab/pretrained-card", "--data", "x.nwb", "--output",
                     str(tmp_path / "g.nwb")])
    err = capsys.readouterr().err
    assert code == 2 and f"'lab/pretrained-card' is a Hub repository, download it first and pass the folder: " \
        f"{download} (add --revision BRANCH for a branch)" in err, err
    # what that command makes is a folder the commands read
    local = snapshot_download("lab/pretrained-card", local_dir=tmp_path / "pretrained-card", **kw)
    check_model_dir(local)


def test_licence_is_checked_before_upload_links_follow_the_endpoint_and_kept_files_are_named(
        trained, loopback_hub, tmp_path, capsys, monkeypatch):
    """Break-test leftovers of the Hub side: ``--license`` went unchecked (a malformed or unknown
    id reached the card), card links always pointed to huggingface.co whatever the endpoint, and
    files already in the repository that a push did not write stayed without a word."""
    from huggingface_hub import HfApi

    from hf_neuroformer.hub import check_license

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"license \(CLI: --license\): .*got 'CC-BY-4.0'; did you mean 'cc-by-4.0'"):
        push_to_hub(model_dir, "lab/licensed", license="CC-BY-4.0", **kw)
    for bad in ("", None, 4, "#"):
        with pytest.raises(ValueError, match=r"expected a Hub licence id.*got [^;]*$"):  # no suggestion
            check_license(bad, "--license")
    for bad, guess in (("MIT License", "mit"), ("CC BY 4.0", "cc-by-4.0"), (" Apache 2.0 ", "apache-2.0")):
        with pytest.raises(ValueError, match=f"did you mean '{guess}'"):
            check_license(bad, "--license")
    assert len(loopback_hub.requests) == n_requests, "a malformed licence must be refused before any request"

    # an id of the right shape that the Hub does not know: the Hub's validation refuses it before
    # any repository (model or dataset) is created
    loopback_hub.known_licenses = {"cc-by-4.0", "mit", "other"}
    with pytest.raises(ValueError, match=r"refused the model card's metadata: \"license\" must be one of .*"
                                         r"nothing was uploaded"):
        push_to_hub(model_dir, "lab/licensed", license="cc-by-4.1", recording=rec,
                    dataset_repo_id="lab/licensed-windows", **kw)
    api = HfApi(**kw)
    assert not api.repo_exists("lab/licensed") and not api.repo_exists("lab/licensed-windows", repo_type="dataset")

    result = push_to_hub(model_dir, "lab/licensed", license="cc-by-4.0", recording=rec,
                         dataset_repo_id="lab/licensed-windows", **kw)
    card = loopback_hub.files("lab/licensed")["README.md"].decode()
    dcard = loopback_hub.files("lab/licensed-windows", repo_type="dataset")["README.md"].decode()
    assert "license: cc-by-4.0" in card and "license: cc-by-4.0" in dcard
    assert f"]({loopback_hub.url}/datasets/lab/licensed-windows)" in card, card
    assert f"]({loopback_hub.url}/lab/licensed)" in dcard, dcard
    assert "huggingface.co/datasets" not in card and "https://huggingface.co/lab" not in dcard
    assert result.kept == []

    # a file someone added to the repository: the next push leaves it and says so
    api.upload_file(path_or_fileobj=b"analysis notes", path_in_repo="notes/analysis.txt", repo_id="lab/licensed")
    again = push_to_hub(model_dir, "lab/licensed", license="cc-by-4.0", **kw)
    assert again.kept == ["notes/analysis.txt"] and again.replaced_readme is None  # its own card: nothing to say
    # Break test: a README.md of the user's own (not a card of this package) was replaced by the model card without a
    # word, while the files the push left were named
    own = api.upload_file(path_or_fileobj=b"# Our notes\n\nWritten by hand.\n", path_in_repo="README.md",
                          repo_id="lab/licensed")
    # Break test: pushed to a new branch (made from main, whose README is the user's), the message said the README
    # "of lab/licensed" was replaced, read as main's; it was replaced on that branch only
    code, stdout, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir,
                                         "--repo-id", "lab/licensed", "--license", "cc-by-4.0", "--revision", "dev")
    assert code == 0, err[-2000:]
    assert ("the README.md of lab/licensed on branch 'dev' was not a model card of hf_neuroformer and is replaced by "
            "the model card on that branch only (main and the other branches keep theirs); the earlier one stays in "
            f"the repository's history (commit {own.oid})") in stdout, stdout
    assert loopback_hub.files("lab/licensed", revision="dev")["README.md"].startswith(b"---\n")
    assert loopback_hub.files("lab/licensed")["README.md"] == b"# Our notes\n\nWritten by hand.\n"
    code, stdout, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir,
                                         "--repo-id", "lab/licensed", "--license", "cc-by-4.0")
    assert code == 0, err[-2000:]
    assert "1 file already in lab/licensed was not written by this push and stays there: notes/analysis.txt" \
        in stdout, stdout
    assert ("the README.md of lab/licensed was not a model card of hf_neuroformer and is replaced by the model card; "
            f"the earlier one stays in the repository's history (commit {own.oid})") in stdout, stdout
    assert loopback_hub.files("lab/licensed")["README.md"].startswith(b"---\n")
    # a malformed licence is refused before any request: cli.main in this process, no endpoint needed
    # (a request would go to huggingface.co and fail otherwise)
    from hf_neuroformer import cli

    capsys.readouterr()
    code = cli.main(["push", "--model", str(model_dir), "--repo-id", "lab/licensed", "--license", "Apache 2.0"])
    err = capsys.readouterr().err
    assert code == 2 and "--license: expected a Hub licence id" in err, err[-2000:]


def test_push_without_provenance_says_the_card_names_no_source(trained, loopback_hub, monkeypatch, capsys):
    """Walk of 'neuroformer push --model runs/quick --repo-id my-lab/quick': the card was pushed with no
    word on where the recording comes from and licence 'other' (naming none), and the command said
    nothing about it. It now says so after the push, and how to fix the card; not with --provenance."""
    d, _, _, _ = trained
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", d / "model",
                                            "--repo-id", "lab/no-provenance")
    assert code == 0, stderr[-3000:]
    note = [line for line in stdout.splitlines() if "note: no --provenance" in line]
    assert len(note) == 1 and "licence is 'other'" in note[0] and "--license" in note[0], stdout
    card = loopback_hub.files("lab/no-provenance")["README.md"].decode()
    assert "Provenance:" not in card  # what the note is about
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", d / "model",
                                            "--repo-id", "lab/no-provenance", "--license", "mit",
                                            "--provenance", "Peyrache lab, pynapple test data, MIT")
    assert code == 0, stderr[-3000:]
    assert "note: no --provenance" not in stdout, stdout
    assert "- Provenance: Peyrache lab, pynapple test data, MIT" in \
        loopback_hub.files("lab/no-provenance")["README.md"].decode()


@pytest.mark.parametrize("revision", ["../x", "run 2", "dev.", "a//b", "feature.lock", "-", "x~1"])
def test_a_branch_name_git_refuses_is_refused_before_any_request(trained, loopback_hub, monkeypatch, capsys,
                                                                 revision):
    """Walk: 'push --revision ../../x' was sent as is (repo ids and licences are checked first, a branch
    name was not): on the Hub the repository is created before the branch, so a name git cannot store
    left an empty repository behind and failed afterwards. Refused naming --revision, with no request."""
    d, _, _, _ = trained
    n = len(loopback_hub.requests)
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", d / "model",
                                            "--repo-id", "lab/bad-branch", "--revision", revision)
    assert code == 2, stdout
    assert stderr.strip().splitlines()[-1].startswith("neuroformer push: error: --revision: "), stderr
    assert len(loopback_hub.requests) == n


def test_check_revision_follows_git_branch_rules_both_ways():
    """check_revision said it follows `git check-ref-format --branch`, but let 'HEAD' through,
    which git refuses as a branch name (push would create the repository and then fail on the
    branch, leaving it empty); names git takes stay allowed."""
    from hf_neuroformer.hub import check_revision

    for ok in ("feature/x", "v1.0", "refs/pr/1", "release-2024.01", "HEADS", "my-HEAD", "x/HEAD", "é"):
        assert check_revision(ok) == ok
    with pytest.raises(ValueError, match=r"^--revision: 'HEAD' is not a branch name git can store"):
        check_revision("HEAD", "--revision")


def test_check_revision_says_a_non_text_revision_is_not_text():
    """push_to_hub(revision=2) (a run number) was refused as '2 is not a branch name git can store
    (an empty name)': the reason named the wrong rule; it now says a branch name is text."""
    from hf_neuroformer.hub import check_revision

    for bad in (2, b"dev"):
        with pytest.raises(ValueError, match=r"expected the branch name as text \(str\), got (int|bytes)"):
            check_revision(bad)
    with pytest.raises(ValueError, match=r"an empty name"):
        check_revision("")


def test_a_push_into_a_repository_holding_another_model_or_dataset_is_refused(trained, loopback_hub, monkeypatch,
                                                                              capsys, tmp_path):
    """A push into a repository that held another model (a BERT's config.json and weights) replaced
    its config and weights without a word, and a windows push into a dataset repository of other
    data deleted its data/*.parquet files. Both are now refused before any upload unless asked
    (replace_other=True, --replace-other); a repository of an earlier Neuroformer push is not."""
    from huggingface_hub import CommitOperationAdd, HfApi

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)
    api.create_repo("lab/bert")
    api.create_commit("lab/bert", [CommitOperationAdd("config.json", b'{"model_type": "bert"}'),
                                   CommitOperationAdd("model.safetensors", b"not neuroformer")], commit_message="bert")
    before = loopback_hub.files("lab/bert")
    with pytest.raises(ValueError, match=r"the model repository 'lab/bert' at .* holds a model of another kind "
                                         r"\(config.json model_type 'bert'\).*nothing was uploaded.*replace_other=True"):
        push_to_hub(model_dir, "lab/bert", **kw)
    assert loopback_hub.files("lab/bert") == before
    api.create_repo("lab/sk")
    api.create_commit("lab/sk", [CommitOperationAdd("decoder.pkl", b"pickle")], commit_message="sklearn")
    with pytest.raises(ValueError, match=r"holds model files without a Neuroformer config.json \(decoder.pkl\)"):
        push_to_hub(model_dir, "lab/sk", **kw)
    _another_tools_dataset(api, "lab/other-data", "other data")
    with pytest.raises(ValueError, match=r"the dataset repository 'lab/other-data' .* holds files that are not a "
                                         r"Neuroformer windows dataset \(no manifest.json: data/train-0.parquet\)"):
        push_to_hub(model_dir, "lab/mine", recording=rec, dataset_repo_id="lab/other-data", **kw)
    assert sorted(loopback_hub.files("lab/other-data", repo_type="dataset")) == [".gitattributes", "data/train-0.parquet"]
    with pytest.raises(KeyError):  # nothing committed to the model either: the repository it created was deleted
        loopback_hub.files("lab/mine")

    # the CLI names the flag (exit 2); with it the push replaces the model
    code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id", "lab/bert")
    assert code == 2 and "model_type 'bert'" in err and "--replace-other" in err, err[-2000:]
    code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id", "lab/bert",
                                    "--replace-other")
    assert code == 0, err[-2000:]
    assert json.loads(loopback_hub.files("lab/bert")["config.json"])["model_type"] == "neuroformer"
    # a repository of an earlier Neuroformer push, and its windows dataset, take a new push without the flag
    push_to_hub(model_dir, "lab/mine", recording=rec, dataset_repo_id="lab/mine-windows", **kw)
    push_to_hub(model_dir, "lab/mine", recording=rec, dataset_repo_id="lab/mine-windows", num_shards=2, **kw)
    push_to_hub(model_dir, "lab/bert", **kw)


def test_push_of_a_folder_whose_save_was_interrupted_completes_it(trained, loopback_hub, tmp_path, monkeypatch,
                                                                  capsys):
    """Break test: a save killed after its commit (the journal written, only model.safetensors moved
    out of the staging folder) is completed by every from_pretrained, but 'neuroformer push' (and
    every --model command, through generation.check_model_dir) refused the folder first: "'m' has no
    config.json ... and no vocab.json ...; expected a directory written by 'neuroformer train'",
    which it is. The check now completes the save before looking, so the push goes through with the
    whole new model."""
    import shutil

    from hf_neuroformer.save_journal import SAVE_JOURNAL, STAGING_PREFIX

    d = trained[0]
    out = tmp_path / "m"
    out.mkdir()
    staged = out / f"{STAGING_PREFIX}x"
    shutil.copytree(d / "model", staged)
    names = sorted(p.name for p in staged.iterdir())
    (out / SAVE_JOURNAL).write_text(json.dumps({"staged": staged.name, "files": names, "remove": []}))
    os.replace(staged / "model.safetensors", out / "model.safetensors")  # killed after the first move

    code, out_text, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", out, "--repo-id",
                                           "lab/interrupted")
    assert code == 0, err[-2000:]
    assert not (out / SAVE_JOURNAL).exists() and not staged.exists()
    assert sorted(p.name for p in out.iterdir()) == names
    assert "metrics.json" in loopback_hub.files("lab/interrupted")


def test_push_refuses_a_tokenizer_that_is_not_the_models(trained, loopback_hub, tmp_path):
    """Break test: a folder whose tokenizer was grown (tokenizer.add_units, saved over the model's)
    without resizing the model was pushed as is: the repository's tokenizer gave ids 18-20 that the
    model has no embedding for (IndexError for whoever loads it) and the card counted the extra
    units, while every local --model command refuses such a folder ("its tokenizer files ... do not
    belong to its config.json / weights"). push_to_hub now refuses it too, before any request."""
    import shutil

    src = tmp_path / "grown"
    shutil.copytree(trained[0] / "model", src)
    tok = nf.NeuroformerTokenizer.from_pretrained(src)
    tok.add_units(["other/u1", "other/u2", "other/u3"])
    tok.save_pretrained(src)
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"model_dir .*grown'.*tokenizer files .* do not belong to its config.json"
                                         r".*len\(tokenizer\) = 21 tokens, but model.config.vocab_size = 18"):
        push_to_hub(src, "lab/grown", endpoint=loopback_hub.url, token="hf_loopback_token")
    assert len(loopback_hub.requests) == n_requests, "refused before any request"


def test_a_refused_push_to_a_branch_creates_no_branch(trained, loopback_hub):
    """Break test: push_to_hub created the --revision branch before its refusals, so a push refused
    because the repository holds another model (someone's BERT) or because it is public (with
    --private) still left a new empty branch in that repository. The checks now read the branch,
    or main when the branch does not exist yet (it would be made from main), before creating it."""
    from huggingface_hub import CommitOperationAdd, HfApi

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)

    api.create_repo("other/bert")
    api.create_commit("other/bert", [CommitOperationAdd("config.json", b'{"model_type": "bert"}'),
                                     CommitOperationAdd("model.safetensors", b"not neuroformer")], commit_message="bert")
    with pytest.raises(ValueError, match=r"'other/bert' .* holds a model of another kind"):
        push_to_hub(model_dir, "other/bert", revision="dev", **kw)
    assert _branches(api, "other/bert") == ["main"]
    api.create_repo("lab/public")
    with pytest.raises(ValueError, match=r"'lab/public' .* already exists and is public"):
        push_to_hub(model_dir, "lab/public", revision="exp", private=True, **kw)
    assert _branches(api, "lab/public") == ["main"]
    _another_tools_dataset(api, "other/data", "other data")
    with pytest.raises(ValueError, match=r"the dataset repository 'other/data' .* not a Neuroformer windows dataset"):
        push_to_hub(model_dir, "lab/mine", revision="dev", recording=rec, dataset_repo_id="other/data", **kw)
    assert _branches(api, "other/data", "dataset") == ["main"]

    # a branch that exists is read as it is, and an accepted push still creates a new one
    api.create_branch("other/bert", branch="neuroformer")
    api.create_commit("other/bert", [CommitOperationAdd("config.json", b'{"model_type": "neuroformer"}')],
                      revision="neuroformer", commit_message="ours")
    push_to_hub(model_dir, "other/bert", revision="neuroformer", **kw)
    result = push_to_hub(model_dir, "lab/public", revision="exp", **kw)
    assert _branches(api, "lab/public") == ["exp", "main"] and not result.unchanged
    assert "config.json" in loopback_hub.files("lab/public", revision="exp")
    assert push_to_hub(model_dir, "lab/public", revision="exp", **kw).unchanged


def test_a_decoders_windows_dataset_is_refused_by_name(trained, decoder, loopback_hub):
    """Break test: push_to_hub(decoder, recording=..., dataset_repo_id=...) failed inside the windows
    writer with generation's refusal ("... can neither generate spikes nor score them: pass the
    pretrained model it was fine-tuned from"), which says nothing of the dataset; and a decoder with
    next-spike heads went through, under a dataset card saying the windows are "exactly what
    training read" though a decoder trains on the windows its behaviour targets cover. A decoder's
    windows dataset is now refused before any request, naming the flags and what to push instead."""
    _, _, rec, _ = trained
    out, _ = decoder
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"^dataset_repo_id \(CLI: --data / --dataset-repo-id\): .*decoder' is a "
                                         r"fine-tuned decoder .*push the decoder without its windows"):
        push_to_hub(out, "lab/dec", recording=rec, dataset_repo_id="lab/dec-windows", endpoint=loopback_hub.url,
                    token="hf_loopback_token")
    assert len(loopback_hub.requests) == n_requests, "refused before any request"


def test_card_of_a_model_whose_vocabulary_spans_two_sessions_names_both(decoder, tmp_path):
    """Break test: a decoder fine-tuned before finetune recorded its 'recording' in metrics.json has a card
    that takes the session from the vocabulary; with the units of two sessions there (tokenizer.add_units and
    resize_token_embeddings, the README's way to a new session) it fell back to the repository's
    name: "Recording: session `my-decoder`", that name as the model-index dataset, and "One
    recording: the unit vocabulary is this recording's units". The card now names both sessions."""
    import shutil

    from hf_neuroformer.hub import build_model_card, save_for_hub

    src = tmp_path / "two-sessions"
    shutil.copytree(decoder[0], src)
    tok = nf.NeuroformerTokenizer.from_pretrained(src)
    session = tok.session_of(next(t for t in tok.get_vocab() if "/" in t))
    tok.add_units(["new-day/u1", "new-day/u2"])
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(src)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(src)
    tok.save_pretrained(src)
    stage = tmp_path / "stage"
    stage.mkdir()
    metrics = save_for_hub(src, stage, allow_stale_metrics=True)  # resized: its metrics score the earlier weights
    # a decoder's metrics.json names its recording (its session): the card says it, and the vocabulary's two sessions
    text = str(build_model_card(stage, "lab/my-decoder", metrics))
    assert f"- Recording: `SpikeRecording(session='{session}'," in text
    assert f"2 sessions ({session} 15, new-day 2 units)" in text
    # one fine-tuned before finetune recorded it: the sessions come from the vocabulary
    del metrics["recording"]
    card = build_model_card(stage, "lab/my-decoder", metrics)
    text = str(card)
    assert "my-decoder`" not in text and "name: my-decoder\n      type" not in text
    assert f"- Recording: sessions `{session}`, `new-day` (the units of the tokenizer)." in text
    assert {r.dataset_name for r in card.data.eval_results} == {f"{session}, new-day"}
    assert "One recording" not in text
    assert f"2 sessions ({session} 15, new-day 2 units)" in text


def test_decoder_card_gives_the_parameter_count_and_no_unknown_time(decoder, tmp_path):
    """Break test: finetune's metrics.json has no num_parameters nor train_time_s, so every decoder's
    card said "- Parameters: ?; steps: 1 (...); training time ?.". The count is now read from the
    staged weights (it equals the model's parameters), and an unknown training time is left out."""
    from hf_neuroformer.hub import build_model_card, save_for_hub

    out, metrics = decoder
    assert "num_parameters" not in metrics and "train_time_s" not in metrics
    stage = tmp_path / "stage"
    stage.mkdir()
    text = str(build_model_card(stage, "lab/decoder", save_for_hub(out, stage)))
    n = sum(p.numel() for p in nf.NeuroformerForBehaviorDecoding.from_pretrained(out).parameters())
    line = next(x for x in text.splitlines() if x.startswith("- Parameters:"))
    assert line.startswith(f"- Parameters: {n}; steps: 1 (kept: step ") and "?" not in line, line
    assert "training time" not in line, line


def test_decoder_card_names_the_recording_it_was_fine_tuned_on(trained, decoder, tmp_path):
    """Break test: finetune's metrics.json recorded no recording, so a decoder's card named only the
    sessions of its vocabulary ("session `A2929-200711` (the units of the tokenizer)"): not the time
    range nor the spikes it was fine-tuned on. finetune now records the recording's summary as train
    does, and the card states it."""
    from hf_neuroformer.hub import build_model_card, save_for_hub

    _, _, rec, pretrain_metrics = trained
    out, metrics = decoder
    assert metrics["recording"] == repr(rec) == pretrain_metrics["recording"]  # the same summary as train's
    assert json.loads((out / "metrics.json").read_text())["recording"] == repr(rec)
    stage = tmp_path / "stage"
    stage.mkdir()
    text = str(build_model_card(stage, "lab/decoder", save_for_hub(out, stage)))
    line = next(x for x in text.splitlines() if x.startswith("- Recording:"))
    assert f"n_spikes={rec.n_spikes}," in line and "time_domain=(600.000, 960.000) s" in line, line
    assert "session='A2929-200711'" in line and "(the units of the tokenizer)" not in line, line


def test_card_of_a_folder_without_run_records_claims_no_run(trained, tmp_path):
    """Break test: a model saved from Python (model.save_pretrained + tokenizer.save_pretrained: no
    metrics.json) was pushed under a card saying "The checkpoint is the one with the lowest
    validation loss; the test split was scored once, after training" and that "the baselines are
    fitted on the train split", of a run nothing records. Without metrics.json the card now says
    that it states no results."""
    import shutil

    from hf_neuroformer.hub import build_model_card, save_for_hub

    src = tmp_path / "saved-from-python"
    src.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"):
        shutil.copy(trained[0] / "model" / name, src / name)
    stage = tmp_path / "stage"
    stage.mkdir()
    metrics = save_for_hub(src, stage)
    assert metrics == {}
    text = str(build_model_card(stage, "lab/from-python", metrics))
    for claim in ("lowest validation loss", "best on validation", "scored once", "baselines are fitted"):
        assert claim not in text, claim
    assert "No metrics.json in the model directory: this card states no results" in text


def test_a_processor_saved_beside_the_model_goes_up_with_its_split_mode(trained, tmp_path):
    """Break test: a folder saved the transformers way (model.save_pretrained and processor.save_pretrained, as
    Trainer(processing_class=processor) saves; no splits.json) records in processor_config.json alone that
    training clipped each window's past at its trial's start (split_mode 'trials'). The push left that file out,
    so AutoProcessor on the pushed repository read the whole past window instead (a window 0.2 s into a trial of
    the Zheng 2022 session: 76 past spikes, where training saw 16). It now goes up, without its processor_class
    (test_push_then_load_without_the_package loads such a folder without the package)."""
    import shutil

    from transformers import AutoProcessor

    from hf_neuroformer.hub import save_for_hub

    src = tmp_path / "saved-the-transformers-way"
    src.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"):
        shutil.copy(trained[0] / "model" / name, src / name)
    tok, config = nf.NeuroformerTokenizer.from_pretrained(src), nf.NeuroformerConfig.from_pretrained(src)
    nf.NeuroformerProcessor.from_config(tok, config, split_mode="trials").save_pretrained(src)
    assert AutoProcessor.from_pretrained(src).split_mode == "trials"
    stage = tmp_path / "stage"
    stage.mkdir()
    save_for_hub(src, stage)
    assert AutoProcessor.from_pretrained(stage).split_mode == "trials"


def test_save_pretrained_with_push_to_hub_warns_that_it_pushes_no_remote_code(trained, loopback_hub, monkeypatch,
                                                                              tmp_path):
    """Break test: model.push_to_hub warns that it uploads no remote code, but
    model.save_pretrained(dir, push_to_hub=True, repo_id=...), transformers' other way to it,
    uploaded the same weights-and-config repository (with transformers' generic card) without a
    word. It now warns the same way; with the classes registered it does not."""
    from hf_neuroformer.hub import remote_code_registered

    _point_this_process_at(loopback_hub, monkeypatch)
    model = nf.NeuroformerForPreTraining.from_pretrained(trained[0] / "model")
    with pytest.warns(UserWarning, match=r"save_pretrained\(push_to_hub=True\) uploads the weights and config.json "
                                         r"without remote code"):
        model.save_pretrained(tmp_path / "plain", push_to_hub=True, repo_id="lab/plain-save-push")
    assert "modeling_neuroformer.py" not in loopback_hub.files("lab/plain-save-push")
    import warnings

    with remote_code_registered(), warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*without remote code")
        model.save_pretrained(tmp_path / "registered", push_to_hub=True, repo_id="lab/registered-save-push")
    assert "modeling_neuroformer.py" in loopback_hub.files("lab/registered-save-push")
    with warnings.catch_warnings():  # a plain save says nothing
        warnings.filterwarnings("error", message=".*without remote code")
        model.save_pretrained(tmp_path / "local")


def test_push_refuses_window_flags_without_the_windows(trained, loopback_hub, monkeypatch, capsys):
    """Break test: 'neuroformer push --epoch wake' or '--num-shards 3' without --data /
    --dataset-repo-id pushed the model alone and said nothing of the flags, which only shape the
    windows dataset (forgotten --data?). They are refused before any request, naming the flags."""
    n_requests = len(loopback_hub.requests)
    for flags in (["--epoch", "wake"], ["--num-shards", "3"]):
        code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", trained[0] / "model",
                                        "--repo-id", "lab/no-windows", *flags)
        assert code == 2 and f"{flags[0]}: applies to the windows dataset only" in err, err[-2000:]
        assert "--data" in err and "--dataset-repo-id" in err
    assert len(loopback_hub.requests) == n_requests


def test_window_dataset_card_of_a_trial_split_claims_no_gap(tmp_path):
    """The dataset card said 'a gap of at least the past window between splits' also for a model
    split by whole trials, where trials of different splits abut (split_gap is ignored there): it
    now says what holds, the past clipped at each trial's start; a time split names its gap."""
    from hf_neuroformer.hub import write_window_dataset

    rec = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording
    starts = np.arange(0.0, 39.5, 0.5)
    rec = dataclasses.replace(rec, trials=np.stack([starts, starts + 0.5], 1))  # abutting trials
    tiny = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
                hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=5.0)
    for split_by in ("trials", "time"):
        cfg = nf.NeuroformerConfig(**tiny, split_by=split_by)
        train(rec, tmp_path / split_by, cfg, TrainingConfig(max_steps=1, batch_size=16), progress=False)
        write_window_dataset(tmp_path / split_by, rec, tmp_path / f"{split_by}-ds")
        text = (tmp_path / f"{split_by}-ds" / "README.md").read_text()
        if split_by == "trials":
            assert "gap" not in text and "past is clipped at the trial's start" in text
        else:
            assert "contiguous time blocks, with a gap of 0.3 s (at least the past window) between splits" in text


def test_a_model_saved_in_shards_is_pushed_whole(trained, loopback_hub, tmp_path, monkeypatch, capsys):
    """Break test: weights saved with ``save_pretrained(..., max_shard_size=...)`` (the shards and
    ``model.safetensors.index.json``, which every ``from_pretrained`` loads) were refused by
    ``neuroformer push`` and every ``--model`` command: "has no model.safetensors (the weights)".
    They are now pushed as one ``model.safetensors`` with the same tensors; a shard missing from the
    folder is named before any request."""
    import shutil

    from safetensors.torch import load_file

    from hf_neuroformer.hub import has_next_spike_heads

    src = tmp_path / "sharded"
    shutil.copytree(trained[0] / "model", src)
    (src / "model.safetensors").unlink()
    model, _, _ = load_pretrained(trained[0] / "model")
    model.save_pretrained(src, max_shard_size="50KB")
    shards = sorted(p.name for p in src.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and (src / "model.safetensors.index.json").is_file()
    assert has_next_spike_heads(src)
    load_pretrained(src)  # the --model commands read it

    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", src, "--repo-id", "lab/sharded")
    assert code == 0, err[-2000:]
    files = loopback_hub.files("lab/sharded")
    assert "model.safetensors" in files and not any(f.startswith("model-") for f in files), sorted(files)
    (tmp_path / "pushed.safetensors").write_bytes(files["model.safetensors"])
    pushed = load_file(str(tmp_path / "pushed.safetensors"))
    original = load_file(str(trained[0] / "model" / "model.safetensors"))
    assert pushed.keys() == original.keys()
    assert all(torch.equal(pushed[k], original[k]) for k in original)

    (src / shards[-1]).unlink()
    n_requests = len(loopback_hub.requests)
    with pytest.raises(FileNotFoundError, match=rf"lacks 1 of the {len(shards)} weight shards .*{shards[-1]}"):
        push_to_hub(src, "lab/sharded", endpoint=loopback_hub.url, token="hf_loopback_token")
    assert len(loopback_hub.requests) == n_requests


def test_a_failed_push_leaves_no_empty_repository_behind(trained, loopback_hub, monkeypatch, capsys):
    """Break test: a push whose upload failed after create_repo left the new repository there,
    empty; with --private it was private, and the retry without --private (after the error) pushed
    the model into it: the user's public model was private, with nothing said. A repository that
    the failed push created, with no commit in it, is now deleted again and the error says so; a
    repository that existed before (or holds a commit) is left as it was."""
    from huggingface_hub import HfApi

    model_dir = trained[0] / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)

    loopback_hub.fail_next("commit", 500, "disk full")
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id",
                                      "lab/private-fail", "--private")
    assert code == 2 and "HTTP 500: disk full" in err, err[-2000:]
    assert "the empty model repository 'lab/private-fail' that this push had created was deleted again" in err, err
    assert not api.repo_exists("lab/private-fail")
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id",
                                      "lab/private-fail")
    assert code == 0, err[-2000:]
    assert api.repo_info("lab/private-fail").private is False  # the retry made the public repository asked for

    # a new branch of a new repository: the repository goes too; the windows dataset's too
    rec = trained[2]
    loopback_hub.fail_next("commit", 500, "disk full")
    with pytest.raises(HubPushError, match=r"uploading the windows dataset .*HTTP 500.*'lab/fail-data' that this push "
                                           r"had created was deleted again"):
        push_to_hub(model_dir, "lab/fail-model", revision="dev", recording=rec, dataset_repo_id="lab/fail-data", **kw)
    assert not api.repo_exists("lab/fail-model") and not api.repo_exists("lab/fail-data", repo_type="dataset")


    # an existing (empty) repository is never deleted by a failed push
    api.create_repo("lab/mine-already", private=True)
    loopback_hub.fail_next("commit", 500, "disk full")
    with pytest.raises(HubPushError, match="disk full") as info:
        push_to_hub(model_dir, "lab/mine-already", **kw)
    assert "deleted" not in str(info.value)
    assert api.repo_exists("lab/mine-already")


@pytest.mark.parametrize("token, what", [("", "is empty"), ("  ", "is only whitespace"),
                                         ("hf_secret123\n", "line break around it"),
                                         ("hf_secret 123", "space or a control character"),
                                         ("hf_secret\u2011123", "not ASCII"), (123, "as text")])
def test_a_token_that_cannot_be_sent_is_named_without_showing_it(trained, loopback_hub, token, what):
    """Break test: ``push_to_hub(token=...)`` with a token read from a file (its line break kept),
    an empty one or one with a space failed inside the HTTP client as "could not reach
    http://...: Illegal header value b'Bearer hf_...\\n'; check the network and HF_ENDPOINT": the
    wrong advice, and the secret token printed in the message. It is now refused before any
    request, saying what is wrong, and the message does not hold the token."""
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=f"^token: .*{what}") as info:
        push_to_hub(trained[0] / "model", "lab/token", endpoint=loopback_hub.url, token=token)
    assert "secret" not in str(info.value)
    assert len(loopback_hub.requests) == n_requests


def test_push_of_a_folder_whose_first_save_was_killed_before_its_commit_says_so(trained, loopback_hub, tmp_path,
                                                                                 capsys):
    """Break test: 'neuroformer train' killed while writing its first model (the staging folder
    .tmp-save-* half written, no journal, nothing moved into place) left a folder that push (and
    every --model command) described only as "has no config.json ...; expected a directory written
    by 'neuroformer train'", which it was. The message now names the unfinished save and what to
    do; nothing of the staging folder is pushed."""
    import shutil

    from hf_neuroformer import cli
    from hf_neuroformer.save_journal import SAVE_JOURNAL, STAGING_PREFIX

    out = tmp_path / "run"
    out.mkdir()
    shutil.copytree(trained[0] / "model", out / f"{STAGING_PREFIX}k2j4")
    (out / f"{SAVE_JOURNAL}.tmp").write_text('{"staged": ".tmp-sa')  # killed while writing the journal
    n_requests = len(loopback_hub.requests)
    capsys.readouterr()
    code = cli.main(["push", "--model", str(out), "--repo-id", "lab/killed"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"--model: .*run' has no config.json .*; a save into it was interrupted before it was complete "
                     rf"\({STAGING_PREFIX}k2j4 holds its unfinished files, which are not a model\): run the command "
                     "that wrote it again", err), err
    assert len(loopback_hub.requests) == n_requests


def test_a_damaged_run_record_is_named_before_any_request(trained, loopback_hub, tmp_path, capsys):
    """Break test: a run record cut short (an interrupted copy of the run folder) or replaced by
    another JSON type stopped the push with "Expecting property name enclosed in double quotes:
    line 1 column 22 (char 21)", naming no file, or an AttributeError traceback ('list' object
    has no attribute 'get'), and a training_config.json holding a list was published as is. Each
    is now refused naming the file, before any request."""
    import shutil

    from hf_neuroformer import cli

    src = tmp_path / "run"
    shutil.copytree(trained[0] / "model", src)
    good = {name: (src / name).read_text() for name in ("metrics.json", "splits.json", "training_log.json",
                                                          "training_config.json")}
    n_requests = len(loopback_hub.requests)
    cases = [("metrics.json", '{"test/id_nll": 2.7, ', "is not JSON"), ("splits.json", "[]", "holds a JSON list"),
             ("training_log.json", "", "is not JSON"), ("training_log.json", "{}", "holds a JSON dict, not the list"),
             ("training_config.json", "[]", "holds a JSON list, not the object")]
    for name, text, what in cases:
        (src / name).write_text(text)
        with pytest.raises(ValueError, match=rf"^model_dir \(CLI: --model\): '.*run/{name}' {what}.*nothing was "
                                             "uploaded$"):
            push_to_hub(src, "lab/damaged", endpoint=loopback_hub.url, token="hf_loopback_token")
        capsys.readouterr()
        code = cli.main(["push", "--model", str(src), "--repo-id", "lab/damaged", "--data", str(trained[1]),
                         "--epoch", "wake", "--dataset-repo-id", "lab/damaged-windows"])
        err = capsys.readouterr().err
        assert code == 2 and f"run/{name}' {what}" in err, err[-2000:]
        # the command names the flag alone (it said 'model_dir (CLI: --model): ...'); the Python API above its argument
        assert err.strip().splitlines()[-1].startswith("neuroformer push: error: --model: '"), err[-2000:]
        (src / name).write_text(good[name])
    assert len(loopback_hub.requests) == n_requests


def test_model_index_holds_only_the_models_metrics_on_a_dataset_id_that_was_pushed(trained, decoder, tmp_path):
    """A loopback push found two faults in the card's ``model-index``: without a pushed windows dataset
    its dataset was ``type: spike-recording``, which the Hub reads as a dataset id (one that does not
    exist); and it listed the token baselines (``markov_id_nll`` 1.80, better than the model's 2.72
    after 8 steps) and the chance levels as results of this model, which a leaderboard credits to it.
    Read back with ``ModelCard.load``, the model-index now gives exactly the model's own metrics, on the
    pushed dataset's id or else on a type that is no Hub repository id; the reference levels stay in the
    card's text, in a table of their own."""
    from huggingface_hub import ModelCard
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from hf_neuroformer.hub import (BASELINE_METRICS, build_model_card, eval_results_to_metrics,
                                    is_reference_metric)

    d, _, _, metrics = trained
    reference = [k for k in card_metrics(metrics) if is_reference_metric(k)]
    assert {f"test/{b}" for b in BASELINE_METRICS} | {"test/timing_f1_10ms_chance_poisson"} <= set(reference)
    for datasets in (None, ["lab/tiny-windows"]):
        path = tmp_path / "README.md"
        build_model_card(d / "model", "lab/tiny", metrics, datasets=datasets).save(path)
        card = ModelCard.load(path)
        assert eval_results_to_metrics(card) == model_index_metrics(metrics)
        assert "test/id_nll" in eval_results_to_metrics(card)
        assert not set(reference) & set(eval_results_to_metrics(card))
        types = {r.dataset_type for r in card.data.eval_results}
        if datasets:
            assert types == {"lab/tiny-windows"} and card.data.datasets == ["lab/tiny-windows"]
        else:
            assert card.data.datasets is None and len(types) == 1
            with pytest.raises(HFValidationError):  # not a repository id: the Hub cannot take it for a dataset
                validate_repo_id(types.pop())
        # the reference levels are in the card, below the model's table and labelled as not the model's
        table = card.text[card.text.index("Reference levels, not results of this model"):]
        for key in reference:
            assert f"(`{key}`) | {metrics[key]:.4f}" in table, key

    out, dmetrics = decoder  # a decoder's target SD is the data's (the RMSE of predicting the mean), not a result
    card = build_model_card(out, "lab/tiny-decoder", dmetrics)
    listed = eval_results_to_metrics(card)
    assert listed == model_index_metrics(dmetrics) and "test/x/r2" in listed
    assert "test/x/target_sd" in card_metrics(dmetrics) and "test/x/target_sd" not in listed
    assert "Reference levels, not results of this model (the SD of the recorded target)" in card.text


def test_card_gives_the_runs_confidence_intervals_beside_the_test_metrics(trained, decoder):
    """Break test: train (and finetune) record a 95 % block-bootstrap interval for the test NLLs
    (a decoder: for every test metric) in metrics.json, but the model card stated the values
    alone, as if exact (a test id NLL of 2.7152 whose interval is [2.6494, 2.7478]). The card now
    shows each recorded interval beside its value and says how it was made; the model-index holds
    the values as before."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    card = build_model_card(d / "model", "lab/ci", metrics)
    for key in ("test/id_nll", "test/dt_nll"):
        low, high = metrics[f"{key}_ci95"]
        assert f"(`{key}`) | {metrics[key]:.4f} [{low:.4f}, {high:.4f}] |" in card.text, key
    assert f"(`validation/id_nll`) | {metrics['validation/id_nll']:.4f} |" in card.text  # none recorded
    assert f"block bootstrap over the test windows ({metrics['test/ci95_n_blocks']} blocks: " in card.text
    assert {f"{r.dataset_split}/{r.metric_type}": r.metric_value for r in card.data.eval_results} == \
        model_index_metrics(metrics)

    out, dmetrics = decoder
    card = build_model_card(out, "lab/ci-decoder", dmetrics)
    low, high = dmetrics["test/x/r2_ci95"]
    assert f"(`test/x/r2`) | {dmetrics['test/x/r2']:.4f} [{low:.4f}, {high:.4f}] |" in card.text
    # a decoder records its block counts per target: the note gave none ("(blocks: consecutive 10 s ...")
    assert (f"block bootstrap over the test windows (blocks per target: ry {dmetrics['test/ry/ci95_n_blocks']}, "
            f"x {dmetrics['test/x/ci95_n_blocks']}; blocks: ") in card.text


def test_card_counts_split_segments_in_the_singular_for_one(trained, tmp_path):
    """The card of the quickstart model (the built-in recording, whose validation split is one 10-s
    block) read "Splits by time: train 3 segments, validation 1 segments"."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    stage = tmp_path / "model"
    shutil.copytree(d / "model", stage)
    plan = json.loads((stage / "splits.json").read_text())
    plan["segments"]["validation"] = plan["segments"]["validation"][:1]  # one validation block
    (stage / "splits.json").write_text(json.dumps(plan))
    text = build_model_card(stage, "lab/one-block", metrics).text
    n_train = len(plan["segments"]["train"])
    assert f"- Splits by time: train {n_train} segments, validation 1 segment, test " in text


def test_card_states_the_bin_width_of_the_binned_count_correlation(trained):
    """The card's "mean per-unit binned-count correlation" gave no bin width, and train did not record
    it: metrics.json now holds binned_count_bin_size_s (0.1 s) and the card row and model-index
    name state it; a metrics.json from before says train's 0.1 s and that it is not recorded there."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    assert metrics["binned_count_bin_size_s"] == 0.1
    assert json.loads((d / "model" / "metrics.json").read_text())["binned_count_bin_size_s"] == 0.1
    card = build_model_card(d / "model", "lab/bins", metrics)
    assert "| test | mean per-unit binned-count correlation (0.1 s bins) (`test/binned_count_corr_mean`) |" in card.text
    results = card.data.eval_results
    assert "test mean per-unit binned-count correlation (0.1 s bins)" in [r.metric_name for r in results]
    assert "binned_count_bin_size_s" not in [r.metric_type for r in results]  # not a metric of its own
    old = {k: v for k, v in metrics.items() if k != "binned_count_bin_size_s"}
    assert ("binned-count correlation (0.1 s bins, train's; the width is not recorded in this metrics.json)"
            in build_model_card(d / "model", "lab/bins", old).text)


def test_card_states_which_way_each_metric_is_better(trained, decoder):
    """Break test (a reviewer's reading of the card): its table listed NLLs (lower is better) beside
    F1s and correlations (higher is better), and a decoder's RMSE beside its R², with no word on
    which way each is better. Every row of the pretrained model's and the decoder's card, reference
    levels and undefined metrics included, now states it in a "better" column; the model-index
    (whose EvalResult has no such field) is unchanged."""
    from huggingface_hub import ModelCard

    from hf_neuroformer.hub import build_model_card, eval_results_to_metrics, undefined_card_metrics

    (d, _, _, metrics), (out, dmetrics) = trained, decoder
    expected = {"test/id_nll": "lower", "test/dt_nll": "lower", "test/markov_id_nll": "lower",
                "test/id_f1": "higher, best 1", "test/rate_corr": "higher, best 1",
                "test/binned_count_corr_mean": "higher, best 1", "test/timing_f1_10ms": "higher, best 1",
                "test/timing_f1_10ms_chance_poisson": "higher, best 1",
                "test/x/r2": "higher, best 1", "test/x/rmse": "lower, best 0",
                "test/ry/mean_angular_error_rad": "lower, best 0"}
    seen = {}
    for stage, m, path in ((d / "model", metrics, d / "better.md"), (out, dmetrics, out.parent / "better.md")):
        build_model_card(stage, "lab/better", m).save(path)
        card = ModelCard.load(path)
        rows = [line for line in card.text.splitlines() if line.startswith(("| test |", "| validation |"))]
        better = {row.split("(`", 1)[1].split("`)", 1)[0]: row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows}
        keys = set(card_metrics(m)) | set(undefined_card_metrics(m))
        assert keys and set(better) == keys, set(better) ^ keys
        assert all(row.count("|") == 5 for row in rows), rows  # split, metric, value, better
        assert "not stated" not in better.values(), better
        seen.update(better)
        assert eval_results_to_metrics(card) == model_index_metrics(m)
    assert {k: seen.get(k) for k in expected} == expected


def test_card_names_the_spike_timing_f1_and_shows_each_chance_level_with_its_sd(trained):
    """train's metrics.json holds the spike-timing F1 at 5/10/25 ms, its chance levels and their SD over
    the draws: the card listed them under their raw keys, each SD as a metric of its own. The card and
    model-index now name them, and each chance level's SD stands beside it, not as a metric."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    card = build_model_card(d / "model", "lab/timing", metrics)
    key = "test/timing_f1_10ms_chance_poisson"
    assert (f"| test | spike-timing F1 within 10 ms (same unit, one to one) (`test/timing_f1_10ms`) | "
            f"{metrics['test/timing_f1_10ms']:.4f} |") in card.text
    assert (f"| test | chance level of the spike-timing F1 within 10 ms (same unit, one to one): Poisson trains at the "
            f"recorded rates, 3 draws (`{key}`) | {metrics[key]:.4f} ± {metrics[key + '_sd']:.4f} (SD over the draws, "
            f"`{key}_sd`) |") in card.text
    types = [r.metric_type for r in card.data.eval_results]
    assert "timing_f1_5ms" in types and not [t for t in types if "_chance_" in t]  # chance levels: the card's text only
    assert not [t for t in types if t.endswith("_sd")] and f"| test | {key}_sd" not in card.text
    assert "test spike-timing F1 within 25 ms (same unit, one to one)" in [r.metric_name for r in card.data.eval_results]


def test_card_of_a_trial_split_counts_trials(trained, tmp_path):
    """A model split by trials had its card say "Splits by trials: train 140 segments, ..." where the
    splits hold trials: it now counts the trials of splits.json's trial_index."""
    from hf_neuroformer.hub import build_model_card
    from hf_neuroformer.windows import plan_splits

    d, _, rec, metrics = trained
    stage = tmp_path / "model"
    shutil.copytree(d / "model", stage)
    lo, hi = rec.time_domain
    starts = np.arange(lo, hi - 2.0, 2.0)
    plan = plan_splits(dataclasses.replace(rec, trials=np.stack([starts, starts + 2.0], 1)),
                       nf.NeuroformerConfig(split_by="trials"))
    (stage / "splits.json").write_text(json.dumps(plan.to_dict()))
    text = build_model_card(stage, "lab/trials", metrics).text
    n = {s: len(v) for s, v in plan.trial_index.items()}
    assert (f"- Splits by trials: train {n['train']} trials, validation {n['validation']} trials, "
            f"test {n['test']} trials (`splits.json`).") in text


def test_card_says_why_a_run_has_no_generation_metrics(trained, tmp_path):
    """A run streamed from 'neuroformer prepare' windows (or diverged) does not generate the test split and
    says why in metrics.json's test/generation; its card showed no F1, rate or count correlation and no
    test_generation.png, without a word."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    stage = tmp_path / "model"
    shutil.copytree(d / "model", stage)
    (stage / "test_generation.png").unlink()
    why = "not run: trained from prepared windows, without the recording"
    streamed = {k: v for k, v in metrics.items() if k not in (
        "test/id_f1", "test/rate_corr", "test/binned_count_corr_mean", "test/n_generated_spikes",
        "test/n_real_spikes", "test/n_capped_generated_windows") and not k.startswith("test/timing_")}
    streamed["test/generation"] = why
    text = build_model_card(stage, "lab/streamed", streamed).text
    assert f"no `test_generation.png`: test-split generation {why} (`test/generation`)." in text
    assert "test/generation" not in build_model_card(d / "model", "lab/in-memory", metrics).text


def test_push_of_a_training_checkpoint_names_the_run_folder(tmp_path, capsys):
    """Break test: 'neuroformer push --model runs/x/checkpoints/step-00000001' (a resumable
    checkpoint, which holds model.safetensors) was told "has no config.json ... and no vocab.json
    ...; expected a directory written by 'neuroformer train'", not that it is a checkpoint nor
    where the model is. The message now says so and names the run folder, before any request."""
    from hf_neuroformer import cli

    rec = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                               max_past_length=48, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                               intermediate_size=32)
    run = tmp_path / "run"
    train(rec, run, cfg, TrainingConfig(max_steps=1, batch_size=16, save_every=1), progress=False)
    (step,) = (run / "checkpoints").iterdir()
    capsys.readouterr()
    code = cli.main(["push", "--model", str(step), "--repo-id", "lab/x"])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"has no config.json (the model config) and no vocab.json (the unit vocabulary) and no tokenizer_config.json "
            f"(the tokenizer settings); expected a directory written by 'neuroformer train'; it is a resumable training "
            f"checkpoint (trainer_state.json), not a model: pass the run folder {str(run.resolve())!r}") in err, err


def test_a_repeated_push_says_the_windows_dataset_is_unchanged(trained, loopback_hub, monkeypatch, capsys):
    """Break test: pushing the same model and windows again made no dataset commit (the client
    skips unchanged files), and the command said "already holds these ... files; no new commit"
    for the model but "pushed the windows dataset to ..." for the windows, naming the old commit
    as if new. It now says the dataset is unchanged too (PushResult.dataset_unchanged)."""
    from huggingface_hub import HfApi

    d, nwb, _, _ = trained
    args = ("--model", d / "model", "--repo-id", "lab/again", "--data", nwb, "--epoch", "wake",
            "--dataset-repo-id", "lab/again-windows", "--provenance", "pynapple test data, MIT")
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, *args)
    assert code == 0 and "pushed the windows dataset to lab/again-windows" in out, err[-2000:]
    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")
    n_commits = len(api.list_repo_commits("lab/again-windows", repo_type="dataset"))
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, *args)
    assert code == 0, err[-2000:]
    assert "lab/again-windows already holds these windows; no new commit" in out, out
    assert "pushed the windows dataset" not in out, out
    assert "replaced by this push's card" not in out, out  # the cards it wrote itself are not taken for edited ones
    assert len(api.list_repo_commits("lab/again-windows", repo_type="dataset")) == n_commits


def test_a_push_says_it_replaces_a_card_edited_on_the_hub(trained, loopback_hub, monkeypatch, capsys):
    """Break test: a model card (or windows dataset card) of this package that its owner edited on
    the Hub (a section added, the tags kept) was replaced by the next push without a word, while a
    README of someone else's was named (``replaced_readme``). Every card now ends with the sha256 of
    its text (``mark_card``); the next push tells an edited one and says that it replaces it, on
    which branch, and the commit that keeps it."""
    from huggingface_hub import HfApi

    from hf_neuroformer.hub import card_mark_state, mark_card

    d, nwb, rec, _ = trained
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    first = push_to_hub(d / "model", "lab/edited", recording=rec, dataset_repo_id="lab/edited-windows", **kw)
    assert first.edited_cards == []
    cards = {("lab/edited", "model"): "## Citation", ("lab/edited-windows", "dataset"): "```python"}
    api = HfApi(**kw)
    edits = {}
    for (rid, rtype), before in cards.items():
        text = loopback_hub.files(rid, rtype)["README.md"].decode()
        assert card_mark_state(text) == "unedited", text[-300:]
        assert before in text
        edited = text.replace(before, "## Notes of the lab\n\nAsk before use.\n\n" + before, 1)
        edits[rid] = api.upload_file(path_or_fileobj=edited.encode(), path_in_repo="README.md", repo_id=rid,
                                     repo_type=rtype, commit_message="the lab's notes").oid
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", d / "model", "--repo-id",
                                      "lab/edited", "--data", nwb, "--epoch", "wake", "--dataset-repo-id",
                                      "lab/edited-windows")
    assert code == 0, err[-2000:]
    for (rid, rtype), what in zip(cards, ("model card", "dataset card")):
        assert (f"the {what} README.md of the {rtype} repository {rid!r} was edited after hf_neuroformer wrote it, "
                f"and is replaced by this push's card; it stays in the repository's history (commit {edits[rid]}): "
                "carry its edits over from there") in out, out
        text = loopback_hub.files(rid, rtype)["README.md"].decode()
        assert card_mark_state(text) == "unedited" and "Notes of the lab" not in text
    # a card without the mark, or with text after it, is not taken for unedited
    marked = mark_card("# card")
    assert card_mark_state(marked) == "unedited" and card_mark_state("# card\n") == "unmarked"
    assert card_mark_state(marked + "more\n") == card_mark_state(marked.replace("card", "Card", 1)) == "edited"


def test_a_push_refused_for_its_dataset_repository_creates_nothing(trained, loopback_hub):
    """Break test: the dataset repository was checked (public with --private, another tool's
    dataset there) only after the model repository, and the model's new branch, had been created:
    a new model repository was deleted again after the refusal, but a new branch of an existing
    model repository stayed there, empty. Every check now runs on what exists before anything is
    created; a branch that a failed upload leaves at its start is deleted again, as a repository is."""
    from huggingface_hub import HfApi

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)

    _another_tools_dataset(api, "other/their-data", "their data")
    api.create_repo("lab/public-data", repo_type="dataset")
    push_to_hub(model_dir, "lab/mine", **kw)
    for dataset_repo_id, private, refusal in (("other/their-data", False, "not a Neuroformer windows dataset"),
                                              ("lab/public-data", True, "already exists and is public")):
        for repo_id, revision in (("lab/refused-new", None), ("lab/mine", "dev")):
            n_requests = len(loopback_hub.requests)
            with pytest.raises(ValueError, match=rf"{refusal}.*nothing was uploaded[^;]*$"):
                push_to_hub(model_dir, repo_id, revision=revision, private=private, recording=rec,
                            dataset_repo_id=dataset_repo_id, **kw)
            sent = [r for r in loopback_hub.requests[n_requests:] if r[0] not in ("GET", "HEAD")]
            # only reads (and the model card's check: the dataset card is made with the windows, after these checks)
            assert sent == [("POST", "/api/validate-yaml")], sent
            assert not api.repo_exists("lab/refused-new")
            assert _branches(api, "lab/mine") == ["main"]

    # an upload that fails on a new branch of an existing repository: the branch goes, the repository stays
    loopback_hub.fail_next("commit", 500, "disk full")
    with pytest.raises(HubPushError, match=r"disk full.*the empty branch 'dev' of the model repository 'lab/mine' "
                                           r"that this push had created was deleted again"):
        push_to_hub(model_dir, "lab/mine", revision="dev", **kw)
    assert _branches(api, "lab/mine") == ["main"]


def test_a_refused_push_builds_no_windows_dataset(trained, loopback_hub, tmp_path):
    """Break test: a push with windows built and tokenised every window of the recording (the
    dataset's Parquet shards and card) before the Hub's checks of the licence, token, branch and
    repositories; a refused push paid for all of it and only then said what to fix. Those checks
    now come first. Seen from the loopback Hub: the dataset card, which gives the windows' counts
    and so exists only once the windows are built, reaches its card validation only in a push that
    passed every check (the refused ones validated it before their refusal)."""
    from huggingface_hub import HfApi

    d, _, rec, _ = trained
    model_dir = d / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)
    sha = push_to_hub(model_dir, "lab/windows-checked", **kw).commit_oid
    api.create_repo("lab/public-windows", repo_type="dataset")
    _another_tools_dataset(api, "other/not-windows", "their data")
    loopback_hub.known_licenses = {"mit", "other"}
    windows = dict(recording=rec, dataset_repo_id="lab/windows-checked-data")
    refusals = [
        (ValueError, r"refused the model card's metadata", dict(license="cc-by-4.0", **windows, **kw)),
        (HubPushError, r"checking the Hub token of 'lab/windows-checked': no Hub token; .*set HF_TOKEN",
         dict(**windows, endpoint=loopback_hub.url)),  # no HF_TOKEN and no saved login (below)
        (ValueError, r"revision \(CLI: --revision\): .* not a branch", dict(revision=sha, **windows, **kw)),
        (ValueError, r"already exists and is public", dict(private=True, recording=rec,
                                                            dataset_repo_id="lab/public-windows", **kw)),
        (ValueError, r"not a Neuroformer windows dataset", dict(recording=rec, dataset_repo_id="other/not-windows",
                                                                **kw)),
    ]
    import huggingface_hub.constants

    for error, message, kwargs in refusals:
        n_cards = len(loopback_hub.validated)
        with pytest.MonkeyPatch.context() as no_login, pytest.raises(error, match=message):
            if "token" not in kwargs:
                no_login.delenv("HF_TOKEN", raising=False)
                no_login.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
                no_login.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
            push_to_hub(model_dir, "lab/windows-checked", **kwargs)
        assert [kind for kind, _ in loopback_hub.validated[n_cards:]] == ["model"], (message, loopback_hub.validated)
    assert not api.repo_exists("lab/windows-checked-data", repo_type="dataset")
    # the push that passes the checks builds the windows: its dataset card (with their counts) is validated
    n_cards = len(loopback_hub.validated)
    result = push_to_hub(model_dir, "lab/windows-checked", **windows, **kw)
    sent = loopback_hub.validated[n_cards:]
    dataset_cards = [card for kind, card in sent if kind == "dataset"]
    assert sent[0][0] == "model" and dataset_cards, sent
    assert f"train {result.dataset_windows['train']}" in dataset_cards[0] and result.dataset_windows["train"] > 0


def test_a_push_refused_at_repository_creation_or_without_a_token_builds_no_windows(trained, loopback_hub):
    """Break test: a push with windows refused where the Hub creates its repository (HTTP 403 / 401 of
    create-repo: a token without the right to create in the namespace) or sent with ``token=False`` (no
    token: the Hub refuses every write) built and tokenised every window first, its dataset card reaching
    the Hub's validation, and only then failed. The repositories are now created before the windows are
    built, and ``token=False`` is refused before any request: the loopback Hub sees no dataset card and no
    dataset repository, and the model repository the push created for a refused dataset one is gone, as are
    both repositories when the dataset card, now validated after they were created, is refused."""
    from huggingface_hub import HfApi

    d, _, rec, _ = trained
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    windows = dict(recording=rec, dataset_repo_id="lab/uncreated-windows")
    refusals = [  # (create-repo refusals: let through first, as the model repository's creation is the first)
        (0, 403, r"creating the model repository of 'lab/uncreated' .* HTTP 403"),
        (0, 401, r"creating the model repository of 'lab/uncreated' .* HTTP 401"),
        (1, 403, r"creating the dataset repository of 'lab/uncreated-windows' .* HTTP 403.*; the empty model "
                 r"repository 'lab/uncreated' that this push had created was deleted again"),
    ]
    for after, status, message in refusals:
        n_cards = len(loopback_hub.validated)
        loopback_hub.fail_next("create", status, "you cannot create repos in 'lab'", after=after)
        with pytest.raises(HubPushError, match=message):
            push_to_hub(d / "model", "lab/uncreated", **windows, **kw)
        assert [kind for kind, _ in loopback_hub.validated[n_cards:]] == ["model"], (message, loopback_hub.validated)
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"^token: False sends no Hub token, and the Hub refuses every write"):
        push_to_hub(d / "model", "lab/uncreated", **windows, endpoint=loopback_hub.url, token=False)
    assert len(loopback_hub.requests) == n_requests, loopback_hub.requests[n_requests:]
    api = HfApi(**kw)
    assert not api.repo_exists("lab/uncreated-windows", repo_type="dataset")
    assert not api.repo_exists("lab/uncreated")
    # the dataset card is now validated after the repositories are created: refused, both are deleted again
    loopback_hub.fail_next("validate_yaml", 400, "bad size_categories", after=1)  # the model card's passes
    with pytest.raises(ValueError, match=r"refused the dataset card's metadata: .*bad size_categories.*; the empty model "
                                         r"repository 'lab/uncreated' .* deleted again; the empty dataset repository "
                                         r"'lab/uncreated-windows' .* deleted again$"):
        push_to_hub(d / "model", "lab/uncreated", **windows, **kw)
    assert not api.repo_exists("lab/uncreated-windows", repo_type="dataset")
    assert not api.repo_exists("lab/uncreated")


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler (``KeyboardInterrupt``, as in a terminal) for the test. A
    suite started as a background job (``pytest ... &``) inherits SIGINT ignored: the loopback
    server's Ctrl-C then did nothing, or, once an earlier test of the worker had imported brian2
    (which wraps the handler it finds), failed with ``TypeError: 'Handlers' object is not
    callable``."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_the_upload_leaves_no_empty_repository(trained, loopback_hub, monkeypatch, capsys,
                                                              python_sigint_handler):
    """Break test: a push interrupted by Ctrl-C during its upload left the repository it had just
    created there, empty (private with --private): the clean-up of a failed push caught Exception,
    which KeyboardInterrupt is not. It is now deleted again, and the command says so after
    "interrupted"; the interrupt still reaches the caller."""
    from huggingface_hub import HfApi

    model_dir = trained[0] / "model"
    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")

    loopback_hub.interrupt_next("commit")
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id",
                                      "lab/ctrl-c", "--private")
    assert code == 130, err[-2000:]
    assert "interrupted; the empty model repository 'lab/ctrl-c' that this push had created was deleted again" in err
    assert not api.repo_exists("lab/ctrl-c")

    loopback_hub.interrupt_next("commit")
    with pytest.raises(KeyboardInterrupt) as info:
        push_to_hub(model_dir, "lab/ctrl-c", endpoint=loopback_hub.url, token="hf_loopback_token")
    assert any("was deleted again" in n for n in info.value.__notes__)
    assert not api.repo_exists("lab/ctrl-c")

    # after the windows dataset's commit: the dataset stays, and the note says it went up
    loopback_hub.interrupt_next("commit", after=1)
    with pytest.raises(KeyboardInterrupt) as info:
        push_to_hub(model_dir, "lab/ctrl-c", recording=trained[2], dataset_repo_id="lab/ctrl-c-data",
                    endpoint=loopback_hub.url, token="hf_loopback_token")
    assert info.value.__notes__[0].startswith("the windows dataset was already committed to 'lab/ctrl-c-data' ("), \
        info.value.__notes__
    assert "the empty model repository 'lab/ctrl-c' that this push had created was deleted again" in \
        info.value.__notes__[0]
    assert not api.repo_exists("lab/ctrl-c") and api.repo_exists("lab/ctrl-c-data", repo_type="dataset")


def test_ctrl_c_or_a_failure_as_the_new_repository_is_read_leaves_no_empty_repository(trained, loopback_hub,
                                                                                         python_sigint_handler):
    """Break test: the push recorded a repository it created for the clean-up only once it had read the new
    repository's head (one more request), so a Ctrl-C or a server error during that request left the new
    repository there, empty (private with --private). It is recorded as soon as it is created and deleted
    again; the interrupt or the error still reaches the caller, with the note."""
    from huggingface_hub import HfApi

    model_dir = trained[0] / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    api = HfApi(**kw)
    # info requests: the first asks whether the repository exists (not yet), the second reads the new one
    loopback_hub.interrupt_next("info", after=1)
    with pytest.raises(KeyboardInterrupt) as info:
        push_to_hub(model_dir, "lab/ctrl-c-created", private=True, **kw)
    assert any("the empty model repository 'lab/ctrl-c-created' that this push had created was deleted again" in n
               for n in getattr(info.value, "__notes__", [])), getattr(info.value, "__notes__", None)
    assert not api.repo_exists("lab/ctrl-c-created")

    loopback_hub.fail_next("info", 500, "busy", after=1)
    with pytest.raises(HubPushError, match=r"HTTP 500.*busy.*the empty model repository 'lab/ctrl-c-created' that "
                                           r"this push had created was deleted again"):
        push_to_hub(model_dir, "lab/ctrl-c-created", **kw)
    assert not api.repo_exists("lab/ctrl-c-created")


def test_an_empty_or_whitespace_commit_message_is_refused_by_name(trained, loopback_hub, monkeypatch, capsys):
    """Break test: ``commit_message="   "`` (or ``--commit-message " "``) was sent as given, and the
    repository's history showed a blank commit; ``""`` became the default without a word. Both are
    refused before any request, naming the argument; leaving it out gives the default message."""
    from huggingface_hub import HfApi

    from hf_neuroformer.hub import DEFAULT_COMMIT_MESSAGE

    model_dir = trained[0] / "model"
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    for message, what in (("   ", "only whitespace"), ("\n", "only whitespace"), ("", "an empty message"),
                          (5, "a int")):
        with pytest.raises(ValueError, match=rf"commit_message \(CLI: --commit-message\): .*got {what}; leave it out"):
            push_to_hub(model_dir, "lab/blank", commit_message=message, **kw)
    code, out, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", model_dir, "--repo-id",
                                      "lab/blank", "--commit-message", " ")
    assert code == 2 and "error: --commit-message: expected the commit message as text, got only whitespace" in err, err
    assert loopback_hub.requests == []
    push_to_hub(model_dir, "lab/blank", **kw)
    assert HfApi(**kw).list_repo_commits("lab/blank")[0].title == DEFAULT_COMMIT_MESSAGE


def test_a_commit_id_as_revision_is_refused_before_any_write(trained, loopback_hub):
    """Break test: ``revision=<a commit id>`` (copied from the Hub's history) resolved, so it was read
    as an existing branch; the push staged everything, uploaded the windows dataset and then failed
    at the model commit ("can only commit to a branch"). It is refused by name before any write."""
    from huggingface_hub import HfApi

    d, _, rec, _ = trained
    kw = dict(endpoint=loopback_hub.url, token="hf_loopback_token")
    sha = push_to_hub(d / "model", "lab/by-sha", **kw).commit_oid
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=rf"revision \(CLI: --revision\): '{sha}' is a commit or tag of the model "
                                         r"repository 'lab/by-sha' .* not a branch"):
        push_to_hub(d / "model", "lab/by-sha", revision=sha, recording=rec, dataset_repo_id="lab/by-sha-data", **kw)
    sent = [r for r in loopback_hub.requests[n_requests:] if r[0] not in ("GET", "HEAD")]
    assert sent == [("POST", "/api/validate-yaml")], sent  # the model card's (no windows were built for the dataset's)
    assert _branches(HfApi(**kw), "lab/by-sha") == ["main"]
    assert not HfApi(**kw).repo_exists("lab/by-sha-data", repo_type="dataset")


def test_push_says_when_a_split_has_fewer_windows_than_num_shards(shared_data, loopback_hub, monkeypatch, capsys,
                                                                   tmp_path):
    """'neuroformer push ... --num-shards 8' of a model whose train and validation splits hold 6
    windows each wrote one shard per window (a shard holds at least one window, as prepare caps it)
    without a word, where prepare notes the cap; push now says it with prepare's note."""
    nwb = shared_data(A2929)
    rec = load_recording(nwb, epoch="wake").restrict(600.0, 608.0)
    cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, max_past_length=128)
    metrics = train(rec, tmp_path / "model", cfg, TrainingConfig(max_steps=1, batch_size=32, eval_batch_size=256,
                                                                 generation_batch_size=512), progress=False)
    counts = {s: metrics[f"n_{s}_windows"] for s in ("train", "validation", "test")}
    assert counts["train"] < 8 and counts["validation"] < 8 <= counts["test"], counts
    code, stdout, stderr = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", tmp_path / "model",
                                            "--repo-id", "lab/few", "--data", nwb, "--epoch", "wake",
                                            "--dataset-repo-id", "lab/few-windows", "--num-shards", "8",
                                            "--provenance", "pynapple test data A2929-200711 (Peyrache lab), MIT")
    assert code == 0, stderr[-3000:]
    shards = [f for f in loopback_hub.files("lab/few-windows", repo_type="dataset") if f.endswith(".parquet")]
    assert len(shards) == counts["train"] + counts["validation"] + 8  # capped: no empty shard
    assert ("note: --num-shards 8: train, validation have fewer windows than that, so one shard per window (a shard "
            "holds at least one window)") in stdout, stdout


def test_push_refuses_a_weights_file_that_lacks_some_of_the_models_weights_or_has_other_shapes(
        trained, loopback_hub, tmp_path):
    """Break test: a folder whose model.safetensors lacks a weight (a copy cut short, a file of an
    older code version) was pushed: transformers initialised the missing weight at random and only
    logged it, and the repository then held that random weight as the trained model's, while
    every local --model command refuses such a folder. push_to_hub refuses it before any request."""
    import shutil

    from safetensors.torch import load_file, save_file

    src = tmp_path / "cut"
    shutil.copytree(trained[0] / "model", src)
    weights = load_file(src / "model.safetensors")
    del weights["neuroformer.layers.0.cross_attn.q_proj.bias"]
    save_file(weights, src / "model.safetensors", metadata={"format": "pt"})
    n_requests = len(loopback_hub.requests)
    with pytest.raises(ValueError, match=r"model_dir .*cut'.*lacks 1 of the NeuroformerForPreTraining's weights "
                                         r"\(neuroformer\.layers\.0\.cross_attn\.q_proj\.bias\).*nothing was uploaded"):
        push_to_hub(src, "lab/cut", endpoint=loopback_hub.url, token="hf_loopback_token")
    assert len(loopback_hub.requests) == n_requests, "refused before any request"
    # a config.json of another size than the weights: transformers' RuntimeError ("look at the above report!",
    # a report left unprinted) came out as a traceback; the weights are named with both shapes
    shutil.copyfile(trained[0] / "model" / "model.safetensors", src / "model.safetensors")
    cfg = json.loads((src / "config.json").read_text())
    h, cfg["hidden_size"] = cfg["hidden_size"], 2 * cfg["hidden_size"]
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=rf"model_dir .*cut'.*weights of another shape than the model its config.json "
                                         rf"describes \(dt_head.weight \(\d+, {h}\) in the file, \(\d+, {2 * h}\) in the "
                                         "model;"):
        push_to_hub(src, "lab/cut", endpoint=loopback_hub.url, token="hf_loopback_token")
    assert len(loopback_hub.requests) == n_requests, "refused before any request"


def test_card_says_how_many_generated_test_windows_were_cut_by_the_spike_cap(trained):
    """Break test: metrics.json records the generated test windows cut by the spike cap
    (test/n_capped_generated_windows; 'neuroformer evaluate' prints a note that their counts and
    rates are biased low), while the card gave the F1 and the rate and count correlations of that
    generation without a word on it. The card says it when the count is not 0."""
    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    capped = metrics["test/n_capped_generated_windows"]
    assert capped > 0, "the 8-step model is expected to overfill some windows"
    text = build_model_card(d / "model", "lab/capped", metrics).text
    verb = "was" if capped == 1 else "were"
    assert (f"{capped} of the {metrics['n_test_windows']} generated test windows {verb} cut by the spike cap "
            "(the model's current-window token budget), so the generated counts and rates are biased low in them "
            "(`test/n_capped_generated_windows`)") in " ".join(text.split())
    # Break test: one capped window read "1 of the 560 generated test windows were cut"
    for n, said in ((1, "1 of the 560 generated test windows was cut"), (2, "2 of the 560 generated test windows were cut")):
        card = build_model_card(d / "model", "lab/capped", {**metrics, "n_test_windows": 560,
                                                            "test/n_capped_generated_windows": n}).text
        assert said in " ".join(card.split())
    none = {**metrics, "test/n_capped_generated_windows": 0}
    assert "cut by the spike cap" not in build_model_card(d / "model", "lab/capped", none).text


def test_pushed_generation_config_holds_the_sampling_of_the_runs_test_generation(trained, tmp_path):
    """generation_config.json is what a reader of the repository takes for how the card's generated
    figures (F1, rate correlation) were sampled: a run with generation_top_p / generation_temperature
    other than generate_spikes' defaults must say so there (it held the defaults, 1.0 and 1.0)."""
    from hf_neuroformer.hub import save_for_hub

    d, _, _, _ = trained
    src = tmp_path / "run"
    shutil.copytree(d / "model", src)
    path = src / "training_config.json"
    record = json.loads(path.read_text())
    assert record["generation_top_p"] == 1.0 and record["generation_temperature"] == 1.0
    save_for_hub(d / "model", tmp_path / "stage-default")
    default = json.loads((tmp_path / "stage-default" / "generation_config.json").read_text())
    assert default.get("top_p", 1.0) == 1.0 and default.get("temperature", 1.0) == 1.0
    record.update(generation_top_p=0.9, generation_temperature=0.8)
    path.write_text(json.dumps(record))
    save_for_hub(src, tmp_path / "stage")
    gen = json.loads((tmp_path / "stage" / "generation_config.json").read_text())
    assert gen["top_p"] == 0.9 and gen["temperature"] == 0.8, gen
    assert gen["do_sample"] is True


def test_processor_push_to_hub_warns_that_it_pushes_no_remote_code(trained, loopback_hub, monkeypatch, tmp_path):
    """processor.push_to_hub (and processor.save_pretrained(push_to_hub=True)) uploaded
    processor_config.json and the tokenizer files without remote code and without a word, where
    model.push_to_hub warns: the repository's AutoProcessor / AutoTokenizer then needed the package."""
    import warnings

    d, _, _, _ = trained
    _point_this_process_at(loopback_hub, monkeypatch)
    processor = nf.NeuroformerProcessor.from_pretrained(d / "model")
    for name, push in (("push_to_hub", lambda: processor.push_to_hub("lab/processor-push")),
                       ("save_pretrained(push_to_hub=True)", lambda: processor.save_pretrained(
                           str(tmp_path / "p"), push_to_hub=True, repo_id="lab/processor-save-push"))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            push()
        said = [str(w.message) for w in caught if "without remote code" in str(w.message)]
        assert len(said) == 1 and f"NeuroformerProcessor.{name}" in said[0] and "hf_neuroformer.push_to_hub" in \
            said[0], [str(w.message) for w in caught]
    files = loopback_hub.files("lab/processor-push")
    assert "processor_config.json" in files and "tokenization_neuroformer.py" not in files  # what the warning says


def test_the_model_cards_of_model_cards_parse_and_show_figures_that_exist():
    """Every card in ``model_cards/`` (the hand-written ones; the template is a link to the package's)
    has metadata that huggingface_hub reads strictly, a licence id of the Hub's shape, the
    ``library_name`` and tags a push of the model writes (the A2929 card said
    ``library_name: hf_neuroformer`` without ``custom_code``, unlike every pushed card), and no figure
    link to a missing file."""
    from pathlib import Path

    from huggingface_hub import ModelCard

    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from hf_neuroformer.hub import MODEL_CARD_LIBRARY_NAME, MODEL_CARD_TAGS, check_license, is_reference_metric

    root = Path(__file__).resolve().parents[1] / "model_cards"
    cards = sorted(p for p in root.glob("*.md") if not p.is_symlink())
    assert cards
    for path in cards:
        card = ModelCard(path.read_text(encoding="utf-8"), ignore_metadata_errors=False)
        check_license(card.data.license, path.name)
        assert (card.data.library_name, card.data.tags) == (MODEL_CARD_LIBRARY_NAME, list(MODEL_CARD_TAGS)), path.name
        figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.text)
        assert figures, path.name
        for target in figures:
            assert (path.parent / target).is_file(), (path.name, target)
        # a model-index written by hand follows the pushed cards': the model's own metrics only (no baseline or
        # chance level), on a pushed dataset or a type that is no Hub repository id
        for r in card.data.eval_results or []:
            assert not is_reference_metric(f"{r.dataset_split}/{r.metric_type}"), (path.name, r.metric_type)
            if r.dataset_type not in (card.data.datasets or []):
                with pytest.raises(HFValidationError):
                    validate_repo_id(r.dataset_type)


def test_a_marked_card_with_crlf_line_breaks_is_not_taken_for_an_edited_one(loopback_hub, tmp_path):
    """save_card writes a card's line breaks as they are (``\\r\\n`` kept, newline=""), and the mark
    hashes those bytes; the next push read the card back with universal newlines (``\\r\\n`` ->
    ``\\n``), so an unedited card with ``\\r\\n`` (or a lone ``\\r``) was said to be edited and
    replaced. It is read as the bytes it is."""
    from huggingface_hub import HfApi

    from hf_neuroformer.hub import _replaced_card_note, card_mark_state, mark_card

    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")
    card = mark_card("---\r\ntags:\r\n- neuroformer\r\n---\r\n\r\n# windows\r\n\r\nSession A\rB.\r\n")
    assert card_mark_state(card) == "unedited"
    for rtype in ("model", "dataset"):
        api.create_repo("lab/crlf", repo_type=rtype)
        api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="lab/crlf", repo_type=rtype)
        info = api.repo_info("lab/crlf", repo_type=rtype)
        assert _replaced_card_note(api, "lab/crlf", rtype, info, None, tmp_path) is None, rtype
        edited = card.replace("# windows", "# our windows")
        api.upload_file(path_or_fileobj=edited.encode(), path_in_repo="README.md", repo_id="lab/crlf", repo_type=rtype)
        note = _replaced_card_note(api, "lab/crlf", rtype, api.repo_info("lab/crlf", repo_type=rtype), None, tmp_path)
        assert note is not None and "was edited after hf_neuroformer wrote it" in note, note


def test_an_offline_load_names_a_file_the_cache_lacks_not_a_repository_without_it(trained, loopback_hub, tmp_path,
                                                                                  monkeypatch):
    """``from_pretrained(repo, local_files_only=True)`` after a first download that fetched only the
    config (as ``AutoModelForPreTraining`` alone does) said "no vocab.json ... expected the tokenizer
    files saved with the model", of a repository that holds them; and with nothing cached, "neither
    processor_config.json nor config.json". Offline, the message now says the file is not in the
    cache and how to fetch it; online the same loads go through and then load offline."""
    from huggingface_hub import HfApi, hf_hub_download

    d, *_ = trained
    _point_this_process_at(loopback_hub, monkeypatch)
    api = HfApi(endpoint=loopback_hub.url, token="hf_loopback_token")
    api.create_repo("user/offline")
    api.upload_folder(folder_path=str(d / "model"), repo_id="user/offline",
                      allow_patterns=["config.json", "vocab.json", "tokenizer_config.json", "splits.json"])
    cache = str(tmp_path / "cache")
    hf_hub_download("user/offline", "config.json", cache_dir=cache)  # the first download fetched the config alone
    offline = {"cache_dir": cache, "local_files_only": True}
    for load in (nf.NeuroformerProcessor.from_pretrained, nf.NeuroformerTokenizer.from_pretrained):
        with pytest.raises(OSError, match=r"^user/offline: vocab\.json is not in the local cache, and this load is "
                                          r"offline \(local_files_only=True\).*hf download user/offline$"):
            load("user/offline", **offline)
    with pytest.raises(OSError, match=r"^user/offline: config\.json is not in the local cache"):
        nf.NeuroformerProcessor.from_pretrained("user/offline", cache_dir=str(tmp_path / "empty"),
                                                local_files_only=True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # HF_HUB_OFFLINE=1, read at import
    with pytest.raises(OSError, match=r"vocab\.json is not in the local cache, and this load is offline "
                                      r"\(HF_HUB_OFFLINE=1\)"):
        nf.NeuroformerTokenizer.from_pretrained("user/offline", cache_dir=cache)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    online = nf.NeuroformerProcessor.from_pretrained("user/offline", cache_dir=cache)
    again = nf.NeuroformerProcessor.from_pretrained("user/offline", **offline)
    assert again.tokenizer.get_vocab() == online.tokenizer.get_vocab() and len(online.tokenizer) == 18
    # a local folder without vocab.json keeps the message about the folder, offline or not
    local = tmp_path / "no_vocab"
    shutil.copytree(d / "model", local)
    (local / "vocab.json").unlink()
    with pytest.raises(OSError, match="no vocab.json .*tokenizer.save_pretrained"):
        nf.NeuroformerProcessor.from_pretrained(local, local_files_only=True)


def test_card_says_the_installed_tokenizer_loads_where_the_package_is_imported(trained, tmp_path):
    """The card said that with ``hf_neuroformer`` imported the installed config and model classes load
    the repository, "(the tokenizer still comes from this repository's file)": ``AutoTokenizer`` with
    ``trust_remote_code=True`` returns the installed ``NeuroformerTokenizer`` there. Checked on a
    staged repository (its remote code and ``auto_map``) in this process, where the package is imported."""
    from transformers import AutoTokenizer

    from hf_neuroformer.hub import build_model_card

    d, _, _, metrics = trained
    stage = tmp_path / "stage"
    save_for_hub(d / "model", stage)
    text = " ".join(build_model_card(stage, "lab/tok", metrics).text.split())
    assert "its installed config, model and tokenizer classes are used instead" in text
    assert "still comes from this repository" not in text
    tokenizer = AutoTokenizer.from_pretrained(stage, trust_remote_code=True)
    assert type(tokenizer) is nf.NeuroformerTokenizer, type(tokenizer).__module__


def test_card_says_past_window_truncation_counts_windows_not_dropped_spikes(trained, tmp_path):
    """The card's data section said "Truncated spikes (beyond the block size): 0 (past window: 20052)"
    of a run whose splits hold 32116 spikes: ``n_truncated_past_spikes`` counts a past spike once per
    window that reads it, which the card did not say, so it read as most of the data dropped."""
    from hf_neuroformer.hub import build_model_card, truncation_line

    d, _, _, metrics = trained
    text = " ".join(build_model_card(d / "model", "lab/trunc", metrics).text.split())
    assert "beyond the block size" not in text
    past = metrics["n_truncated_past_spikes"]
    windows = metrics["n_truncated_past_windows_by_split"]
    assert past > 0 and windows["train"] > 0, (past, windows)  # the tiny run's 128-token past budget cuts
    assert (f"- Spikes left out of current windows holding more than max_window_length (64) - 2 spikes: "
            f"{metrics['n_truncated_spikes']}. Past-window spikes left out of past windows holding more than "
            f"max_past_length (128) - 1: {past} in {windows['train']} train windows, {windows['validation']} "
            f"validation windows, {windows['test']} test windows, counted once per window that reads them") in text
    # a count of one window is singular; without the per-split counts (an older run) the totals stand alone
    assert truncation_line({"n_truncated_spikes": 3, "n_truncated_windows_by_split": {"train": 1, "test": 0}},
                           {"max_window_length": 8}) == (
        "- Spikes left out of current windows holding more than max_window_length (8) - 2 spikes: 3 in 1 train "
        "window, 0 test windows.")
    assert truncation_line({"n_truncated_spikes": 0, "n_truncated_past_spikes": 0}, {}).endswith(
        "max_past_length - 1: 0, counted once per window that reads them (a spike lies in the "
        "past of many windows), not spikes dropped from the data.")


def test_a_push_refuses_metrics_of_other_weights(trained, loopback_hub, tmp_path, monkeypatch, capsys):
    """Break test: weights saved with save_pretrained (after some training of one's own) into the folder
    that 'neuroformer train' wrote were pushed with a card showing the run's metrics.json results as
    theirs: nothing tied metrics.json to the weights. The run records their tensors' digest; push
    refuses other weights before any request, unless --allow-stale-metrics, whose card says the results are
    of earlier weights and keeps them out of the model-index. The same weights saved in shards pass; a
    metrics.json of a run older than the key is pushed as before, with a warning."""
    from huggingface_hub import ModelCard

    from hf_neuroformer.generation import tensors_sha256
    from hf_neuroformer.hub import STALE_METRICS_NOTE, metrics_weights_state

    d, _, _, metrics = trained
    assert metrics["weights_tensors_sha256"] == tensors_sha256(d / "model")
    src = tmp_path / "trained-on"
    shutil.copytree(d / "model", src)
    model = nf.NeuroformerForPreTraining.from_pretrained(src)
    with torch.no_grad():  # one more step of someone's own training, as far as the weights tell
        next(model.parameters()).add_(0.01)
    model.save_pretrained(src)
    n_requests = len(loopback_hub.requests)
    code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", src, "--repo-id", "lab/stale")
    assert code != 0 and f"{str(src)!r}: its metrics.json scores other weights than its model.safetensors" in err, err
    assert "nothing was uploaded" in err and "--allow-stale-metrics" in err, err
    assert len(loopback_hub.requests) == n_requests, "refused before any request"

    code, _, err = _push_in_process(loopback_hub, monkeypatch, capsys, "--model", src, "--repo-id", "lab/stale",
                                    "--allow-stale-metrics")
    assert code == 0, err[-3000:]
    files = loopback_hub.files("lab/stale")
    assert json.loads(files["metrics.json"]).keys() == json.loads((src / "metrics.json").read_text()).keys()
    text = files["README.md"].decode()
    assert STALE_METRICS_NOTE in text and "holds no results: they are of earlier weights" in text
    assert not ModelCard(text).data.eval_results, "results of earlier weights credited to these in the model-index"

    # the trained weights saved in shards: the same tensors, so the run's metrics are theirs
    sharded = tmp_path / "sharded"
    shutil.copytree(d / "model", sharded)
    (sharded / "model.safetensors").unlink()
    nf.NeuroformerForPreTraining.from_pretrained(d / "model").save_pretrained(sharded, max_shard_size="50KB")
    assert len(list(sharded.glob("model-*-of-*.safetensors"))) > 1
    assert metrics_weights_state(sharded, metrics) == "match"

    # a metrics.json written before the key: staged as before, with one warning
    old = tmp_path / "old-run"
    shutil.copytree(d / "model", old)
    record = json.loads((old / "metrics.json").read_text())
    del record["weights_tensors_sha256"]
    (old / "metrics.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"old-run'.*records no weights_tensors_sha256.* not checked") as caught:
        staged = save_for_hub(old, tmp_path / "old-stage")
    assert sum("weights_tensors_sha256" in str(w.message) for w in caught) == 1
    assert staged.keys() == record.keys() and card_metrics(staged)
