"""Modalities as inputs (issue 3): config and YAML, validation, reading windows from real
recordings without looking into the future, the embedding keeping the value, the model trained
a few steps on the Allen gratings with the orientation, save / load, cached generation."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

import hf_neuroformer as nf
from hf_neuroformer.modalities import fit_modalities, modality_columns
from hf_neuroformer.modeling_neuroformer import NeuroformerModalityEmbedding
from hf_neuroformer.training import TrainingConfig, load_yaml_config, train
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets, plan_splits
from tiny_configs import quiet, small_config

ALLEN = "allen_vcn_gratings"
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
ORIENTATION = {"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical"}


@pytest.fixture(scope="module")
def allen(shared_data):
    from hf_neuroformer.io import read_allen_gratings

    # 100 of the 1000 units keep the test fast (about 77 spikes per 100 ms trial)
    return read_allen_gratings(shared_data(ALLEN)).select_units(range(100))


@pytest.fixture(scope="module")
def a2929(shared_data):
    from hf_neuroformer.io import load_recording

    return load_recording(shared_data(A2929), epoch="wake").restrict(700.0, 760.0)


def _fitted_windows(rec, cfg):
    """``(DatasetDict, SplitPlan)`` of ``rec`` with ``cfg`` (its vocabulary and modality
    statistics filled in, in place), as ``train`` builds them."""
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    return build_window_datasets(rec, tok, cfg, plan)


# ---------------------------------------------------------------- config and YAML

def test_yaml_modalities_map_one_to_one_and_round_trip(tmp_path):
    text = """
current_window: 0.02
past_window: 0.05
split_by: trials
split_stratify_by: orientation_deg
num_modality_layers: 2
modalities:
  - name: orientation
    source: trial:orientation_deg
    kind: categorical
    window: [-0.05, 0.02]
  - name: head_direction
    source: behaviour:ry
    kind: continuous
    normalization: circular
    block: 0
    bin_size: 0.01
training:
  max_steps: 5
"""
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    cfg, training = load_yaml_config(path)
    assert training.max_steps == 5 and cfg.num_modality_layers == 2
    assert [m["name"] for m in cfg.modalities] == ["orientation", "head_direction"]
    assert cfg.modalities[0]["window"] == [-0.05, 0.02] and cfg.modalities[0]["role"] == "input"
    assert cfg.modalities[1]["normalization"] == "circular" and cfg.modalities[1]["window"] == [0.0, 0.02]
    assert cfg.modality_blocks() == [(0, ["orientation", "head_direction"])]  # both in block 0: one stage
    # written back as YAML (what a user would keep) and read again: the same modalities
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump({"current_window": cfg.current_window, "past_window": cfg.past_window,
                                     "modalities": cfg.modalities}))
    cfg2, _ = load_yaml_config(again)
    assert cfg2.modalities == cfg.modalities
    cfg.save_pretrained(tmp_path / "saved")
    assert nf.NeuroformerConfig.from_pretrained(tmp_path / "saved").modalities == cfg.modalities


def test_config_modality_looks_up_an_entry_by_name_and_names_the_known_ones():
    """Five places looked a modality up with next(m for m in config.modalities if m["name"] == name):
    an unknown name raised a bare StopIteration. NeuroformerConfig.modality(name) is the one lookup."""
    cfg = nf.NeuroformerConfig(modalities=[ORIENTATION, dict(name="eye", source="behaviour:eye", kind="continuous")])
    assert cfg.modality("eye") is cfg.modalities[1] and cfg.modality("orientation")["window"] == cfg.modalities[0]["window"]
    with pytest.raises(KeyError, match=r"modality 'speed': not a modality of this config; its modalities are "
                                       r"\['orientation', 'eye'\]"):
        cfg.modality("speed")
    with pytest.raises(KeyError, match=r"modality 'eye': not a modality of this config; it has none"):
        nf.NeuroformerConfig().modality("eye")


@pytest.mark.parametrize("modality, match", [
    ({**ORIENTATION, "colour": 1}, r"modalities\[0\].*unknown key \['colour'\]"),
    ({"name": "orientation", "kind": "categorical"}, r"modalities\[0\]: missing required key 'source'"),
    ({**ORIENTATION, "kind": "video"}, r"'orientation'\): kind 'video' goes with source 'stimulus:frames'"),
    ({**ORIENTATION, "frame_shape": [8, 8]}, r"'orientation'\): \['frame_shape'\] are keys of a video modality only"),
    ({**ORIENTATION, "kind": "spectral"}, r"\.kind: expected one of"),
    ({**ORIENTATION, "role": "target"}, r"\.role: expected 'input'"),
    ({**ORIENTATION, "source": "orientation_deg"}, r"\.source: expected 'behaviour:<key>'"),
    ({**ORIENTATION, "window": [0.0, 0.05]}, r"\.window: ends at 0.05 s, after the current window's end .*allow_future"),
    ({**ORIENTATION, "window": [0.01, 0.0]}, r"\.window: expected end > start"),
    ({**ORIENTATION, "block": -1}, r"\.block: expected an integer >= 0"),
    ({"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "minmax"}, r"\.normalization"),
    ({"name": "hd", "source": "behaviour:ry", "kind": "continuous", "std": [0.0]}, r"'hd'\)\.std: expected positive"),
    ({"name": "3d", "source": "behaviour:ry", "kind": "continuous"}, r"modalities\[0\]\.name: expected an identifier"),
    # statistics and classes of the wrong type (a hand-edited config.json): float() took '1' and True, and failed
    # on 'abc' / None / a mapping with an error naming no field; a list label failed with "unhashable type"
    *[({"name": "hd", "source": "behaviour:ry", "kind": "continuous", key: bad},
       rf"'hd'\)\.{key}: expected 1 finite value \(one per feature\)")
      for key in ("mean", "std") for bad in ("abc", ["1"], [True], [None], {"a": 1})],
    ({**ORIENTATION, "classes": [[0], [45]]}, r"'orientation'\)\.classes: expected a list of distinct labels"),
])
def test_bad_modality_entries_name_the_field(modality, match):
    with pytest.raises(ValueError, match=match):
        small_config(modalities=[modality])


@pytest.mark.parametrize("change, match", [
    ({"source": "behavior:ry"}, r"\.source: expected .*, got 'behavior:ry' \(did you mean 'behaviour:ry'\?\)$"),
    ({"source": "event:ry", "kind": "categorical"}, r"got 'event:ry' \(did you mean 'events:ry'\?\)$"),
    ({"source": "trials:orientation_deg", "kind": "categorical"},
     r"got 'trials:orientation_deg' \(did you mean 'trial:orientation_deg'\?\)$"),
    ({"source": "stimulus:idz", "kind": "categorical"}, r"got 'stimulus:idz' \(did you mean 'stimulus:ids'\?\)$"),
    ({"kind": "continous"}, r"\.kind: expected one of .*, got 'continous' \(did you mean 'continuous'\?\)$"),
    ({"normalization": "zscor"}, r"\.normalization: expected one of .*, got 'zscor' \(did you mean 'zscore'\?\)$"),
    ({"windw": [0.0, 0.01]}, r"unknown key \['windw'\] \(did you mean 'window' for 'windw'\?\); known keys"),
    # nothing close: no guess
    ({"source": "pupil"}, r"got 'pupil'$"),
    ({"kind": "spectral"}, r"got 'spectral'$"),
])
def test_a_misspelt_modality_entry_says_what_was_meant(change, match):
    """A misspelt top-level field gets "did you mean", as does a decoding target's key; a modality's
    source prefix ('behavior:ry', the American spelling), kind, normalization and keys were refused
    with the list of what is allowed only, which leaves the user to spot the one letter."""
    with pytest.raises(ValueError, match=match):
        small_config(modalities=[{"name": "hd", "source": "behaviour:ry", "kind": "continuous", **change}])


@pytest.mark.parametrize("name", ["keys", "training", "to"])
def test_a_modality_named_like_a_module_dict_attribute_is_refused_naming_the_field(name):
    # the model keeps the modality embeddings in an nn.ModuleDict keyed by name: these names passed the config
    # and the model then failed to build with torch's bare KeyError "attribute 'keys' already exists"
    modality = {"name": name, "source": "behaviour:ry", "kind": "continuous"}
    with pytest.raises(ValueError, match=rf"modalities\[0\]\.name: expected an identifier that is not an attribute "
                                         rf"of torch\.nn\.ModuleDict .*got '{name}'; rename the modality \(e\.g\. '{name}_'\)"):
        small_config(modalities=[modality], vocab_size=16)
    # the suggested name builds a model, the embedding under its own key
    cfg = small_config(modalities=[{**modality, "name": f"{name}_"}], vocab_size=16)
    model = nf.NeuroformerForPreTraining(cfg)
    assert isinstance(model.neuroformer.modality_embeddings[f"{name}_"], NeuroformerModalityEmbedding)


def test_unknown_yaml_keys_and_repeated_names_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("modalitys:\n  - name: x\n")
    with pytest.raises(ValueError, match=r"unknown NeuroformerConfig field \['modalitys'\]"):
        load_yaml_config(path)
    with pytest.raises(ValueError, match=r"names must be unique, repeated: \['orientation'\]"):
        small_config(modalities=[ORIENTATION, ORIENTATION])


def test_future_window_is_accepted_only_when_asked_for():
    cfg = small_config(modalities=[{**ORIENTATION, "window": [0.0, 0.03], "allow_future": True}])
    assert cfg.modalities[0]["window"] == [0.0, 0.03]


# ---------------------------------------------------------------- reading windows

def test_missing_source_names_it_and_lists_what_the_recording_has(allen):
    cfg = small_config(split_by="trials", modalities=[{"name": "speed", "source": "behaviour:speed", "kind": "continuous"}])
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(allen)
    with pytest.raises(ValueError, match=r"modalities\[0\] \('speed'\)\.source: 'behaviour:speed' is not in the "
                                         r"recording; the recording has behaviour \[\], trial columns \['orientation_deg'\]"):
        build_window_datasets(allen, tok, cfg)


def test_series_without_samples_in_the_training_split_is_named_with_its_span(a2929):
    """A behaviour series on another clock (head direction shifted by 1000 s) has no sample inside
    the training split: refused naming the source and where its samples and the split lie (it
    raised numpy's "cannot reshape array of size 0" before)."""
    from hf_neuroformer.recording import BehaviourSeries

    series = a2929.behaviour["ry"]
    shifted = nf.SpikeRecording(a2929.spike_times, a2929.unit_ids, unit_names=a2929.unit_names,
                                time_domain=a2929.time_domain,
                                behaviour={"ry": BehaviourSeries(series.timestamps + 1000.0, series.values, "rad")})
    for norm in ("zscore", "circular"):
        cfg = small_config(split_block_length=10.0, modalities=[{"name": "hd", "source": "behaviour:ry",
                                                                  "kind": "continuous", "normalization": norm}])
        with pytest.raises(ValueError, match=r"\('hd'\): no finite value of 'behaviour:ry' inside the training split "
                                             r"\(its \d+ values lie in \[17\d\d.*\] s, the training split's \d+ "
                                             r"segments? in \[7\d\d.*, 7\d\d.*\] s; times must be seconds"):
            fit_modalities(shifted, cfg, plan_splits(shifted, cfg))


def test_no_value_at_or_after_the_window_end_is_read(a2929):
    """Head direction over [-50 ms, current window end): every token lies inside, and changing
    every sample from the window's end on leaves the window's tokens unchanged."""
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
           "window": [-0.05, 0.1]}
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, modalities=[mod])
    starts = np.round(np.arange(705.0, 755.0, 0.1), 9)
    cols = modality_columns(a2929, cfg, starts)
    times = np.concatenate([np.asarray(t) for t in cols["mod_hd_times"]])
    assert times.size > 10 * len(starts)  # ~120 Hz: about 18 samples per 150 ms
    assert times.min() >= -0.05 and times.max() < 0.1
    series = a2929.behaviour["ry"]
    k = 200
    end = starts[k] + 0.1
    future = series.timestamps >= end
    changed = series.values.copy()
    changed[future] = changed[future] + 1.0
    from hf_neuroformer.recording import BehaviourSeries

    rec2 = nf.SpikeRecording(a2929.spike_times, a2929.unit_ids, unit_names=a2929.unit_names,
                             time_domain=a2929.time_domain,
                             behaviour={"ry": BehaviourSeries(series.timestamps, changed, series.unit)})
    cols2 = modality_columns(rec2, cfg, starts[: k + 1])
    assert cols2["mod_hd_values"][k] == cols["mod_hd_values"][k]
    assert cols2["mod_hd_times"][k] == cols["mod_hd_times"][k]


def test_trial_labels_cover_their_window_and_stratified_split(allen):
    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[ORIENTATION])
    plan = plan_splits(allen, cfg)
    orient = np.asarray(allen.trial_info["orientation_deg"])
    for split in ("train", "validation", "test"):
        counts = np.unique(orient[plan.trial_index[split]], return_counts=True)[1]
        assert len(counts) == 4 and counts.min() == counts.max()  # every orientation equally in every split
    fit_modalities(allen, cfg, plan)
    assert cfg.modalities[0]["classes"] == [0, 45, 90, 135]
    starts = allen.trials[:, 0] + 0.03  # one window per trial, 30 ms into it
    cols = modality_columns(allen, cfg, starts)
    ids = np.asarray([c[0] for c in cols["mod_orientation_ids"]])
    assert np.array_equal(np.asarray(cfg.modalities[0]["classes"])[ids], orient)
    assert all(len(c) == 1 for c in cols["mod_orientation_ids"])  # the next trial starts after the gap
    # a window that starts exactly where a trial ends does not read that trial's label
    gap = modality_columns(allen, cfg, allen.trials[:1, 1])
    assert gap["mod_orientation_ids"] == [[]]


def test_an_interval_that_ended_at_the_modality_window_start_is_not_read(allen):
    """Trial 0 shows [0, 0.1) s, trial 1 [0.2, 0.3) s. A window starting at 0.12 s with the modality
    window [-0.02, 0.01) spans [0.10, 0.13) s: no stimulus is on. In floats 0.12 - 0.02 is
    0.09999999999999999, so trial 0's label was read (at -0.02 s): 92 of 3966 windows of a time
    split read the trial before theirs."""
    mods = [{**ORIENTATION, "window": [-0.02, 0.01]},
            {"name": "sid", "source": "stimulus:ids", "kind": "categorical", "window": [-0.02, 0.01]}]
    cfg = small_config(modalities=mods)
    cfg.modalities[0]["classes"], cfg.modalities[1]["classes"] = [0, 45, 90, 135], [0, 1, 2, 3]
    starts = np.round(np.arange(0.0, 39.99, 0.01), 9)
    cols = modality_columns(allen, cfg, starts)
    k12 = int(np.flatnonzero(starts == 0.12)[0])
    assert cols["mod_orientation_ids"][k12] == [] and cols["mod_sid_ids"][k12] == []
    trials = allen.trials
    for name in ("orientation", "sid"):
        n_wrong = 0
        for s, ids in zip(starts, cols[f"mod_{name}_ids"]):
            on = np.flatnonzero((trials[:, 1] > s - 0.02 + 1e-9) & (trials[:, 0] < s + 0.01 - 1e-9))
            n_wrong += len(ids) != len(on)
        assert n_wrong == 0, name


def test_trial_mode_windows_read_no_value_from_before_their_trial(allen):
    """Split by trials, each window's past spikes stop at its trial's start; its modality window
    [-0.15, 0.01) s reached 0.05 s into the previous trial (100 ms trials 100 ms apart) and read
    that trial's orientation, another split's trial maybe."""
    mod = {**ORIENTATION, "window": [-0.15, 0.01]}
    cfg = small_config(split_by="trials", past_window=0.15, modalities=[mod])
    ds, plan = _fitted_windows(allen, cfg)
    orient = np.asarray(allen.trial_info["orientation_deg"])
    classes = np.asarray(cfg.modalities[0]["classes"])
    trial_starts = allen.trials[:, 0]
    n_checked = 0
    for row in ds["test"].select(range(0, len(ds["test"]), 5)):
        s, clip = row["window_start"], row["past_clip_start"]
        k = int(np.flatnonzero(np.isclose(trial_starts, clip))[0])
        assert min(row["mod_orientation_times"]) >= clip - s - 1e-9
        assert np.all(classes[row["mod_orientation_ids"]] == orient[k]), (s, k)
        n_checked += s - clip < 0.1  # windows whose modality window reaches before their trial
    assert n_checked > 10

    # the gap before the window's own trial (the grey screen of a grating experiment) is still read:
    # a series sampled everywhere gives the onset window values from the previous trial's end on
    import dataclasses

    from hf_neuroformer.recording import BehaviourSeries

    t = np.arange(0.0, float(allen.trials[-1, 1]), 0.005)
    rec = dataclasses.replace(allen, behaviour={"v": BehaviourSeries(t, np.sin(t), "a.u.")})
    onsets = allen.trials[1:4, 0]
    cfg_v = small_config(split_by="trials", past_window=0.15, modalities=[
        {"name": "v", "source": "behaviour:v", "kind": "continuous", "window": [-0.15, 0.01], "mean": [0.0],
         "std": [1.0]}])
    cols = modality_columns(rec, cfg_v, onsets, clip_starts=onsets)
    for k, times in enumerate(cols["mod_v_times"]):
        gap_start = allen.trials[k, 1] - onsets[k]  # previous trial's end, relative to the onset
        assert gap_start < -0.05
        assert min(times) == pytest.approx(gap_start, abs=0.0051), (k, min(times), gap_start)


def test_time_split_refuses_stratification(a2929):
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=5.0,
                       split_stratify_by="orientation_deg")
    with pytest.raises(ValueError, match="split_stratify_by"):
        plan_splits(a2929, cfg)


# ---------------------------------------------------------------- the embedding keeps the value

def test_continuous_embedding_keeps_the_value():
    torch.manual_seed(0)
    mod = {"name": "speed", "source": "behaviour:speed", "kind": "continuous", "mean": [10.0], "std": [5.0]}
    cfg = small_config(modalities=[mod])
    emb = NeuroformerModalityEmbedding(cfg, cfg.modalities[0]).eval()
    values = torch.tensor([[[0.0]], [[10.0]], [[11.0]], [[30.0]]])
    times = torch.zeros(4, 1)
    out = emb({"values": values, "times": times})[:, 0]
    dist = torch.cdist(out, out)
    assert dist[~torch.eye(4, dtype=torch.bool)].min() > 1e-3  # four values, four embeddings
    # the value is normalised with the stored training statistics: 10 -> 0
    assert torch.allclose(emb.value_features(torch.tensor([[10.0], [15.0]])), torch.tensor([[0.0], [1.0]]))
    # circular: an angle and the same angle + 2 pi give one embedding, distinct angles do not
    circ = small_config(modalities=[{"name": "hd", "source": "behaviour:ry", "kind": "continuous",
                                     "normalization": "circular"}])
    cemb = NeuroformerModalityEmbedding(circ, circ.modalities[0]).eval()
    a = cemb({"values": torch.tensor([[[0.5]], [[0.5 + 2 * np.pi]], [[2.0]]]), "times": torch.zeros(3, 1)})[:, 0]
    assert torch.allclose(a[0], a[1], atol=1e-5) and (a[0] - a[2]).abs().max() > 1e-3


def test_different_head_directions_change_the_model_output(a2929):
    """Through the whole network: the same spikes with another head direction give other logits;
    a window without any sample (mask all False) still gives finite outputs (null token)."""
    torch.manual_seed(0)
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
           "window": [-0.05, 0.1]}
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=5.0,
                       modalities=[mod])
    ds, _ = _fitted_windows(a2929, cfg)
    rows = [ds["train"][i] for i in range(4)]
    batch = NeuroformerCollator(modalities=cfg.modalities)(rows)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    out = model(**batch)
    turned = {**batch, "modality_inputs": {"hd": {**batch["modality_inputs"]["hd"]}}}
    turned["modality_inputs"]["hd"]["values"] = batch["modality_inputs"]["hd"]["values"] + np.pi / 2
    out2 = model(**turned)
    # freshly initialised (weights of std 0.02) the effect is small but far above float noise:
    # the same inputs again give exactly the same logits
    assert torch.equal(model(**batch).logits, out.logits)
    assert (out.logits - out2.logits).abs().max() > 1e-6
    empty = {**batch, "modality_inputs": {"hd": {**batch["modality_inputs"]["hd"]}}}
    empty["modality_inputs"]["hd"]["mask"] = torch.zeros_like(batch["modality_inputs"]["hd"]["mask"])
    assert torch.isfinite(model(**empty).logits).all()
    with pytest.raises(ValueError, match=r"modality_inputs: missing \['hd'\]"):
        model(**{k: v for k, v in batch.items() if k != "modality_inputs"})


# ---------------------------------------------------------------- training on real data

@pytest.fixture(scope="module")
def trained(allen, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("allen_orientation")
    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg",
                       modalities=[{**ORIENTATION, "window": [-0.02, 0.01]}])
    # no test-split generation and no figures: the tests read the model, its log and loss / count metrics
    # (generation with the orientation is checked by generate_spikes below)
    metrics = train(allen, out, cfg, TrainingConfig(max_steps=6, batch_size=16, eval_every=3, learning_rate=3e-3,
                                                    generate_test=False), overwrite=True, progress=False,
                    write_figures=False)
    return out, metrics


def test_tiny_model_trains_on_allen_with_the_orientation(trained, allen):
    out, metrics = trained
    log = json.loads((out / "training_log.json").read_text())
    assert log[-1]["validation/loss"] < log[0]["validation/loss"]
    assert np.isfinite(metrics["test/id_nll"]) and metrics["n_truncated_spikes"] == 0
    assert metrics["n_truncated_modality_tokens"] == {"orientation": {"train": 0, "validation": 0, "test": 0}}
    saved = json.loads((out / "config.json").read_text())
    assert saved["modalities"][0]["classes"] == [0, 45, 90, 135]  # training classes saved with the model


def test_saved_model_reloads_with_automodel_and_reads_the_orientation(trained, allen):
    from transformers import AutoModelForPreTraining

    from hf_neuroformer.generation import generate_spikes, load_pretrained

    out, _ = trained
    model, tok, plan = load_pretrained(out)
    auto = AutoModelForPreTraining.from_pretrained(out).eval()
    assert type(auto).__name__ == "NeuroformerForPreTraining"
    ds, _ = build_window_datasets(allen, tok, model.config, plan)
    rows = [ds["test"][i] for i in range(6)]
    batch = NeuroformerCollator(modalities=model.config.modalities)(rows)
    with torch.no_grad():
        a, b = model.eval()(**batch), auto(**batch)
        assert torch.allclose(a.logits, b.logits, atol=1e-5)
        other = {**batch, "modality_inputs": {"orientation": {**batch["modality_inputs"]["orientation"]}}}
        other["modality_inputs"]["orientation"]["ids"] = (batch["modality_inputs"]["orientation"]["ids"] + 2) % 4
        assert (model(**other).logits - a.logits).abs().max() > 1e-5  # the orientation reaches the heads
    # cached and uncached generation pass the modality inputs alike: same seed, same spikes
    starts = allen.trials[plan.trial_index["test"][:3], 0]
    kw = dict(past_clip_starts=starts, max_spikes=20, seed=3, progress=False)
    g1 = generate_spikes(model, tok, allen, starts, use_cache=True, **kw)
    g2 = generate_spikes(model, tok, allen, starts, use_cache=False, **kw)
    assert g1.n_spikes > 0 and np.array_equal(g1.spike_times, g2.spike_times)
    assert np.array_equal(g1.unit_ids, g2.unit_ids)
    with pytest.raises(ValueError, match="read from the recording"):
        generate_spikes(model, tok, allen, starts, conditioning={"orientation": [0, 0, 0]}, progress=False)


@pytest.mark.parametrize("name", sorted(p.name for p in (__import__("pathlib").Path(__file__).resolve().parents[1]
                                                          / "configs").glob("*.yaml")))
def test_example_configs_load(name):
    from pathlib import Path

    cfg, training = load_yaml_config(Path(__file__).resolve().parents[1] / "configs" / name)
    assert isinstance(cfg.modalities, list) and training.max_steps > 0


def test_nan_trial_labels_are_refused_with_their_count(allen):
    import dataclasses

    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[ORIENTATION])
    plan = plan_splits(allen, cfg)
    orient = np.asarray(allen.trial_info["orientation_deg"], dtype=float).copy()
    orient[plan.trial_index["train"][:3]] = np.nan  # three training trials without a label
    rec = dataclasses.replace(allen, trial_info={**allen.trial_info, "orientation_deg": orient})
    with pytest.raises(ValueError, match=r"orientation.*3 of .* labels .* NaN"):
        fit_modalities(rec, cfg, plan)


def test_a_future_modality_window_reads_nothing_after_its_trial(allen):
    """Split by trials with ``allow_future``: the modality window [0, 0.15) s of a window in a 100 ms
    trial reached into the next trial (100 ms later) and read its orientation, another split's
    trial maybe (88 of the 980 tokens of the Allen train windows came from validation or test
    trials). The span now ends at the window's own trial's end."""
    mod = {**ORIENTATION, "window": [0.0, 0.15], "allow_future": True}
    cfg = small_config(split_by="trials", modalities=[mod])
    ds, plan = _fitted_windows(allen, cfg)
    orient = np.asarray(allen.trial_info["orientation_deg"])
    classes = np.asarray(cfg.modalities[0]["classes"])
    trials = allen.trials
    n_reaching = 0
    for split in ("train", "validation", "test"):
        for row in ds[split]:
            s = row["window_start"]
            k = int(np.flatnonzero(np.isclose(trials[:, 0], row["past_clip_start"]))[0])
            assert k in plan.trial_index[split]
            times = np.asarray(row["mod_orientation_times"])
            assert times.size == 1 and np.all(s + times < trials[k, 1]), (split, s, k, times)
            assert np.all(classes[row["mod_orientation_ids"]] == orient[k]), (split, s, k)
            n_reaching += s + 0.15 > trials[k + 1, 0] if k + 1 < len(trials) else 0
    assert n_reaching > 100  # windows whose modality window reaches the next trial's start


def test_a_future_modality_window_stays_inside_its_time_block(a2929):
    """Split by time blocks with ``allow_future``: the last windows of a block read head direction
    up to 0.9 s after the block's end, across the split gap (0.2 s) into another split's block.
    A window now also needs its modality window inside its block, as it needs its past."""
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
           "window": [0.0, 1.0], "allow_future": True, "bin_size": 0.1}
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=5.0,
                       split_by="time", modalities=[mod])
    ds, plan = _fitted_windows(a2929, cfg)
    for split in ("train", "validation", "test"):
        seg = plan.segments[split]
        starts = np.asarray(ds[split]["window_start"])
        assert len(starts)
        # the whole modality window [s, s + 1) of every window lies inside one block of its split
        inside = (starts[:, None] >= seg[None, :, 0] - 1e-9) & (starts[:, None] + 1.0 <= seg[None, :, 1] + 1e-9)
        assert np.all(inside.sum(1) == 1), (split, starts[inside.sum(1) != 1][:5])
        for s, times in zip(starts, ds[split]["mod_hd_times"]):
            t = s + np.asarray(times)
            assert np.all(((t[:, None] >= seg[None, :, 0]) & (t[:, None] < seg[None, :, 1])).any(1)), (split, s)


def test_classes_come_from_intervals_overlapping_the_training_split_not_ones_ending_at_its_start():
    """A test trial stored as [0.0, 0.1 + 0.2 = 0.30000000000000004) s ends at the training trial's
    start (0.3 s) as windows read it (``ModalityTrack.in_span``), so its label 'a' is not a training
    class; compared exactly, it overlapped and 'a' was fitted as a class the training split never had."""
    from hf_neuroformer.windows import SplitPlan

    rec = nf.SpikeRecording(spike_times=np.array([0.05, 0.4]), unit_ids=np.array([0, 1]), time_domain=(0.0, 0.6),
                         trials=np.array([[0.0, 0.1 + 0.2], [0.3, 0.6]]),
                         trial_info={"label": np.array(["a", "b"], dtype=object)})
    cfg = small_config(modalities=[{"name": "lab", "source": "trial:label", "kind": "categorical",
                                    "window": [-0.02, 0.0]}])
    none = np.zeros((0, 2))
    plan = SplitPlan("trials", {"train": np.array([[0.3, 0.6]]), "validation": none, "test": np.array([[0.0, 0.1 + 0.2]])},
                     {"train": np.array([1]), "validation": np.zeros(0, dtype=np.int64), "test": np.array([0])})
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == ["b"]


def test_a_window_gives_the_same_logits_alone_as_in_a_batch_padded_to_more_modality_tokens(a2929):
    """40 % of the head-direction samples are NaN, so windows hold 7 to 14 tokens: in one batch the
    shorter ones are padded. Each window alone gives the same logits at its real positions (the
    padded modality tokens are masked everywhere), with weights of std 0.2 so that a leak shows."""
    from dataclasses import replace

    rng = np.random.default_rng(0)
    ry = a2929.behaviour["ry"]
    v = np.asarray(ry.values, dtype=float).copy()
    v[rng.random(len(v)) < 0.4] = np.nan
    rec = replace(a2929, behaviour={**a2929.behaviour, "ry": nf.recording.BehaviourSeries(ry.timestamps, v, ry.unit)})
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
           "window": [-0.05, 0.1]}
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=5.0,
                       modalities=[mod])
    ds, _ = _fitted_windows(rec, cfg)
    rows = [ds["train"][i] for i in range(0, 240, 10)]
    counts = [len(r["mod_hd_times"]) for r in rows]
    assert max(counts) - min(counts) >= 4
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    for p in model.parameters():
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.2)
    collate = NeuroformerCollator(modalities=cfg.modalities)
    batch = collate(rows)
    with torch.no_grad():
        both = model(**batch)
        for i, row in enumerate(rows):
            one = model(**collate([row]))
            n = int(batch["attention_mask"][i].sum())  # real positions come first
            assert (both.logits[i, :n] - one.logits[0, :n]).abs().max() < 1e-4
            assert (both.dt_logits[i, :n] - one.dt_logits[0, :n]).abs().max() < 1e-4
    assert (both.logits[0] - both.logits[1]).abs().max() > 0.1  # the windows differ: the check has teeth


def test_a_circular_modality_refuses_a_series_in_degrees(a2929):
    """The head direction in degrees (unit 'deg') as a 'circular' input trained without a word on
    cos/sin of degrees, while decoding refuses the same series as a circular target. Labelled
    'rad', it is warned of."""
    import dataclasses

    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    rec = dataclasses.replace(a2929, behaviour={"ry": BehaviourSeries(ry.timestamps, np.degrees(ry.values), "deg")})
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
           "window": [-0.05, 0.05]}
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005, split_block_length=5.0,
                       modalities=[mod])
    with pytest.raises(ValueError, match=r"modalities\[0\] \('hd'\)\.normalization: 'circular' embeds angles in "
                                         r"radians .* behaviour\['ry'\] is in 'deg'; convert it with np.deg2rad"):
        _fitted_windows(rec, cfg)
    # labelled 'rad' (0..359): trained on cos/sin of degrees without a word; now warned of (not refused:
    # unwrapped radians are fine angles), naming the modality, the series and its unit
    mislabelled = dataclasses.replace(rec, behaviour={"ry": dataclasses.replace(rec.behaviour["ry"], unit="rad")})
    with pytest.warns(UserWarning, match=r"modalities\[0\] \('hd'\): behaviour\['ry'\] \(unit 'rad'\) is read as "
                                         r"angles in radians, but holds values up to 3[0-9.]+, beyond two turns"):
        _fitted_windows(mislabelled, cfg)
    # z-scored degrees are fine (no angle assumed), and the radians series as before
    _fitted_windows(rec, small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005, split_block_length=5.0,
                                      modalities=[{**mod, "normalization": "zscore"}]))
    _fitted_windows(a2929, small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005,
                                        split_block_length=5.0, modalities=[dict(mod)]))


def test_a_circular_modality_refuses_a_trial_column_in_degrees(allen):
    """Allen's orientation_deg (0..135 here, a trial column: no unit) as a 'circular' input trained on
    cos/sin of degrees without a word; in radians it is taken."""
    import dataclasses

    mod = {"name": "ori", "source": "trial:orientation_deg", "kind": "continuous", "normalization": "circular"}
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005, modalities=[mod])
    with pytest.raises(ValueError, match=r"modalities\[0\] \('ori'\)\.normalization: 'circular' embeds angles in "
                                         r"radians .* trial_info\['orientation_deg'\]: expected angles in radians "
                                         r"within \[-2 pi, 2 pi\], got values up to 135; degrees\? convert with np.deg2rad"):
        _fitted_windows(allen, cfg)
    rad = dataclasses.replace(allen, trial_info={"orientation": np.deg2rad(allen.trial_info["orientation_deg"])})
    ds, _ = _fitted_windows(rad, small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005,
                                              modalities=[{**mod, "source": "trial:orientation"}]))
    assert len(ds["train"]) > 0


def test_modality_statistics_read_the_samples_of_a_trial_that_holds_a_shorter_one():
    """Break test (the trial_at fix of d0a3bfb missed this lookup): fit_modalities kept the samples
    inside the training trials by the latest trial starting before each sample, so with trials
    [0, 10) and [2, 3) in the training split the samples of [3, 10) s, which the windows of the
    longer trial read, were left out of the z-score statistics (mean 1.0 instead of about 70)."""
    from hf_neuroformer.recording import BehaviourSeries, SpikeRecording
    from hf_neuroformer.windows import SplitPlan

    t = np.arange(0.0, 16.0, 0.5)
    v = np.where((t >= 3.0) & (t < 10.0), 100.0, 1.0)
    trials = np.array([[0.0, 10.0], [2.0, 3.0], [11.0, 12.0], [13.0, 14.0]])
    rec = SpikeRecording(spike_times=np.arange(0.05, 15.0, 0.1), unit_ids=np.arange(150) % 2,
                         unit_names=["a", "b"], time_domain=(0.0, 16.0), trials=trials,
                         behaviour={"v": BehaviourSeries(t, v, "a.u.")})
    plan = SplitPlan("trials", {"train": trials[:2], "validation": trials[2:3], "test": trials[3:]},
                     {"train": np.array([0, 1]), "validation": np.array([2]), "test": np.array([3])})
    cfg = small_config(split_by="trials", modalities=[
        {"name": "v", "source": "behaviour:v", "kind": "continuous", "normalization": "zscore"}])
    fit_modalities(rec, cfg, plan)
    inside = t < 10.0
    assert cfg.modalities[0]["mean"] == [pytest.approx(float(v[inside].mean()))]
    assert cfg.modalities[0]["std"] == [pytest.approx(float(v[inside].std()))]


def test_byte_string_trial_labels_are_text_classes_that_a_config_can_save(allen):
    """A trial column of byte strings (dtype 'S', from h5py / MATLAB) gave classes [b'o0', ...]:
    the config then failed to save ("Object of type bytes is not JSON serializable"), after the
    whole training run. Labels are read as text, as the text column of the same values."""
    import dataclasses

    text = np.array([f"o{v}" for v in allen.trial_info["orientation_deg"]], dtype=object)
    rec = dataclasses.replace(allen, trial_info={**allen.trial_info, "ob": text.astype("S"), "ot": text})
    mods = [{"name": "ob", "source": "trial:ob", "kind": "categorical"},
            {"name": "ot", "source": "trial:ot", "kind": "categorical"}]
    cfg = small_config(split_by="trials", modalities=mods)
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == cfg.modalities[1]["classes"] == ["o0", "o135", "o45", "o90"]
    json.loads(cfg.to_json_string())  # saved as a model's config.json is
    starts = rec.trials[:5, 0]
    cols = modality_columns(rec, cfg, starts)
    assert cols["mod_ob_ids"] == cols["mod_ot_ids"] and all(len(ids) for ids in cols["mod_ob_ids"])


def test_a_continuous_modality_on_a_text_column_says_to_make_it_categorical(allen):
    """kind 'continuous' on a text trial column failed with numpy's bare "could not convert string
    to float: 'l'", naming neither the modality nor the fix."""
    import dataclasses

    rec = dataclasses.replace(allen, trial_info={**allen.trial_info, "side": np.array(["l", "r"] * 100, dtype=object)})
    cfg = small_config(split_by="trials", modalities=[{"name": "side", "source": "trial:side", "kind": "continuous"}])
    plan = plan_splits(rec, cfg)
    with pytest.raises(ValueError, match=r"modalities\[0\] \('side'\)\.kind: 'continuous' needs numbers, but "
                                         r"'trial:side' holds text \(e\.g\. 'l'\); use kind: categorical"):
        fit_modalities(rec, cfg, plan)


def test_categorical_labels_mixing_booleans_and_numbers_are_refused(allen):
    """A trial column holding True, 1, False and 0 (an object column, e.g. a pandas table merged from
    two sessions) gave 2 classes, [False, True]: True == 1 in Python, so 1 was read as True and 0 as
    False without a word. Such labels are refused, and a window label of the other type is not one of
    the fitted classes."""
    import dataclasses

    n = len(allen.trials)
    mixed = np.array([[True, 1, False, 0][k % 4] for k in range(n)], dtype=object)
    ints = np.array([k % 2 for k in range(n)])
    rec = dataclasses.replace(allen, trial_info={**allen.trial_info, "m": mixed, "i": ints,
                                                 "b": ints.astype(bool)})
    cfg = small_config(split_by="trials", modalities=[{"name": "m", "source": "trial:m", "kind": "categorical"}])
    plan = plan_splits(rec, cfg)
    with pytest.raises(ValueError, match=r"'trial:m' mix booleans and numbers \(0, 1, False, True\); True equals 1"):
        fit_modalities(rec, cfg, plan)
    # one type per column: integers and booleans each fit two classes of their own type
    cfg = small_config(split_by="trials", modalities=[{"name": "i", "source": "trial:i", "kind": "categorical"},
                                                      {"name": "b", "source": "trial:b", "kind": "categorical"}])
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == [0, 1] and cfg.modalities[1]["classes"] == [False, True]
    assert all(type(c) is bool for c in cfg.modalities[1]["classes"])
    # integer classes read a boolean label as unknown, not as 1
    cfg.modalities[1]["classes"] = [0, 1]
    with pytest.raises(ValueError, match=r"label (True|False) at window .* is not one of the training classes \[0, 1\]"):
        modality_columns(rec, cfg, rec.trials[:4, 0])
    # as a decoding target the column was refused as 'text'; the message now says what it holds
    from hf_neuroformer.decoding import DecodingTarget, DecodingTargetError, kind_problem

    with pytest.raises(DecodingTargetError, match=r"got booleans mixed with numbers \(True equals 1"):
        kind_problem(rec, DecodingTarget("trial:m", "classification"))


def test_modality_integer_fields_take_numpy_integers_and_save_them_as_json_integers():
    """A modality's ``block``, ``column`` and ``num_features`` were checked with ``isinstance(v, int)``,
    so a count computed with numpy (``np.int64(2)`` from an array's shape) was refused as "expected an
    integer", while every other count of the package takes numpy integers (``is_whole_number``). They
    are now taken and stored as Python ints, so ``config.json`` still serializes."""
    import json

    import numpy as np

    from hf_neuroformer import NeuroformerConfig

    cfg = NeuroformerConfig(modalities=[dict(name="eye", source="behaviour:eye", kind="continuous",
                                             num_features=np.int64(2), block=np.int32(0), column=None)])
    m = json.loads(cfg.to_json_string())["modalities"][0]
    assert (m["num_features"], m["block"]) == (2, 0)
    assert type(cfg.modalities[0]["num_features"]) is int and type(cfg.modalities[0]["block"]) is int
    for bad in (True, 2.5, "2", 0):
        with pytest.raises(ValueError, match=r"modalities\[0\] \('eye'\)\.num_features"):
            NeuroformerConfig(modalities=[dict(name="eye", source="behaviour:eye", kind="continuous", num_features=bad)])


VIDEO = {"name": "clip", "source": "stimulus:frames", "kind": "video", "frame_shape": [8, 8], "num_frames": 2}
HD = {"name": "hd", "source": "behaviour:ry", "kind": "continuous"}


@pytest.mark.parametrize("base, key, whole, stored", [
    (HD, "block", 1.0, 1), (HD, "column", 0.0, 0), (HD, "num_features", 2.0, 2), (HD, "max_tokens", 8.0, 8),
    (VIDEO, "num_frames", 4.0, 4), (VIDEO, "num_layers", 0.0, 0), (VIDEO, "frame_shape", [8.0, 16.0], [8, 16]),
    (VIDEO, "patch_size", [1.0, 4, 4.0], [1, 4, 4])])
def test_modality_integer_fields_take_a_yaml_float_as_an_int_and_refuse_fractions_text_and_bools(base, key, whole,
                                                                                                  stored):
    """``NeuroformerConfig`` takes ``64.0`` for an integer field (checked_int: YAML or JSON may write it
    so), but a modality's ``block``, ``column``, ``num_features``, ``max_tokens``, ``num_frames``,
    ``num_layers``, ``frame_shape`` and ``patch_size`` refused it ("expected an integer >= 1, got 8.0").
    They follow the same rule now, stored as ints (config.json holds 8, not 8.0); 3.7, "2" and True are
    still refused, naming the field."""
    m = nf.NeuroformerConfig(modalities=[{**base, key: whole}]).modalities[0]
    assert m[key] == stored and all(type(v) is int for v in (m[key] if isinstance(stored, list) else [m[key]]))
    assert json.loads(nf.NeuroformerConfig(modalities=[m]).to_json_string())["modalities"][0][key] == stored
    bad_values = [3.7, "2", True] if not isinstance(stored, list) else [[8.5, 8], ["8", 8], [True, 8]]
    for bad in bad_values:
        if isinstance(stored, list):
            bad = bad + stored[len(bad):]
        with pytest.raises(ValueError, match=rf"modalities\[0\] \('{base['name']}'\)\.{key}: expected"):
            nf.NeuroformerConfig(modalities=[{**base, key: bad}])


@pytest.mark.parametrize("base, key, seconds", [
    (HD, "window", [-0.05, 0.0]), (HD, "window", [0.0, 0.05]), (HD, "bin_size", 0.05), (VIDEO, "frame_interval", 0.05)])
def test_modality_lengths_in_seconds_held_as_float32_are_refused_by_name(base, key, seconds):
    """Break test: a modality's ``window``, ``bin_size`` and ``frame_interval`` went through ``float()``, so
    np.float32(0.05) was stored as 0.05000000074505806 s (the config's own windows refuse it: a spike on a
    window or bin edge then falls on the other side). Refused now with the config's message, naming the
    field (and the window's end); numpy float64 and Python numbers are still taken, stored exactly."""
    def given(cast):
        if key != "window":
            return cast(seconds)
        i = next(i for i, v in enumerate(seconds) if v)  # the end that is not 0
        return [cast(v) if j == i else v for j, v in enumerate(seconds)]

    where = rf"modalities\[0\] \('{base['name']}'\)\.{key}"
    for cast in (np.float32, np.float16, lambda v: torch.tensor(v), lambda v: torch.tensor(v, dtype=torch.bfloat16)):
        bad = given(cast)
        index = rf"\[{next(i for i, v in enumerate(seconds) if v)}\]" if key == "window" else ""
        with pytest.raises(ValueError, match=where + index + r": expected a Python float or float64 length \(s\), got "
                                             r"(float32|float16|bfloat16) .*give a Python float or float64"):
            nf.NeuroformerConfig(current_window=0.05, past_window=0.1, modalities=[{**base, key: bad}])
    for cast in (np.float64, float):
        m = nf.NeuroformerConfig(current_window=0.05, past_window=0.1, modalities=[{**base, key: given(cast)}])
        assert m.modalities[0][key] == seconds and type(m.modalities[0][key] if key != "window"
                                                         else m.modalities[0][key][0]) is float


def test_neuroformer_train_reads_yaml_floats_as_ints_and_saves_them_as_ints(a2929, tmp_path, capsys):
    """``neuroformer train --config`` with the integer fields written as YAML floats (``32.0``, a
    modality's ``block: 0.0`` / ``max_tokens: 4.0``; a config written by a tool that keeps every number
    a float) trains and saves a config.json that holds them as ints; a fraction is refused by field."""
    from hf_neuroformer import cli
    from hf_neuroformer.io import write_nwb

    data = tmp_path / "a2929_15s.nwb"
    write_nwb(a2929.restrict(700.0, 715.0), data)
    text = ("current_window: 0.05\npast_window: 0.1\nmax_window_length: 32.0\nmax_past_length: 64.0\n"
            "hidden_size: 16.0\nnum_attention_heads: 2.0\nnum_hidden_layers: 1.0\nintermediate_size: 32.0\n"
            "split_block_length: 5\nmodalities:\n  - name: hd\n    source: behaviour:ry\n    kind: continuous\n"
            "    block: 0.0\n    max_tokens: 4.0\n    num_features: 1.0\ntraining:\n  batch_size: 8.0\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    # (warnings: 15 s tile only 3 split blocks, so the split fractions are approximate)
    code = quiet(cli.main, ["train", "--config", str(cfg), "--data", str(data), "--output-dir", str(tmp_path / "m"),
                            "--max-steps", "1"])
    assert code == 0, capsys.readouterr().err[-2000:]
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    got = [saved[k] for k in ("max_window_length", "max_past_length", "hidden_size", "num_attention_heads")]
    got += [saved["modalities"][0][k] for k in ("block", "max_tokens", "num_features")]
    assert got == [32, 64, 16, 2, 0, 4, 1] and all(type(v) is int for v in got), got
    cfg.write_text(text.replace("block: 0.0", "block: 0.5"))
    capsys.readouterr()
    assert cli.main(["train", "--config", str(cfg), "--data", str(data), "--output-dir", str(tmp_path / "m2"),
                     "--max-steps", "1"]) == 2
    assert "NeuroformerConfig.modalities[0] ('hd').block: expected an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()


def test_yaml_floats_for_the_modality_integers_load_as_ints(tmp_path):
    """The same through load_yaml_config, as ``neuroformer train --config`` reads the file."""
    path = tmp_path / "c.yaml"
    path.write_text("hidden_size: 32.0\nmodalities:\n  - name: hd\n"
                    "    source: behaviour:ry\n    kind: continuous\n    block: 0.0\n    max_tokens: 8.0\n"
                    "  - name: clip\n    source: stimulus:frames\n    kind: video\n    frame_shape: [8.0, 8.0]\n"
                    "    num_frames: 2.0\n    patch_size: [1.0, 4.0, 4.0]\n    num_layers: 1.0\n")
    cfg = load_yaml_config(path)[0]
    saved = json.loads(cfg.to_json_string())
    assert saved["hidden_size"] == 32
    assert [(m["block"], m["max_tokens"]) for m in saved["modalities"]] == [(0, 8), (1, 32)]
    assert (saved["modalities"][1]["frame_shape"], saved["modalities"][1]["patch_size"]) == ([8, 8], [1, 4, 4])
    assert "8.0" not in cfg.to_json_string() and "32.0" not in cfg.to_json_string()
    path.write_text("modalities:\n  - name: hd\n    source: behaviour:ry\n    kind: continuous\n    max_tokens: 8.5\n")
    with pytest.raises(ValueError, match=r"modalities\[0\] \('hd'\)\.max_tokens: expected an integer >= 1, got 8\.5"):
        load_yaml_config(path)


def test_labels_read_only_before_the_trials_are_classes_of_the_training_split(shared_data):
    """Split by trials, a trial's first windows read their modality window back to window[0] before
    the trial (down to the previous trial's end), but fit_modalities took classes and statistics
    from inside the training trials only. Zheng 2022's fixation cross comes about 1 s before each
    clip, in the gap (438 of 450; all 90 of the encoding task): a categorical stream of fixation
    onsets labelled by task was fitted to ['recognition', 'timediscrimination'], and the training
    windows were then refused ("label 'encoding' ... is not one of the training classes"). The
    classes are now the labels the training windows read. Real times and labels: the NWB trials
    table (fixcross_time, task)."""
    import dataclasses
    import warnings

    from hf_neuroformer.io import load_recording
    from hf_neuroformer.recording import EventSeries
    from hf_neuroformer.windows import window_starts_for_split

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = load_recording(shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"))
    fix = np.asarray(rec.trial_info["fixcross_time"], dtype=np.float64)
    order = np.argsort(fix, kind="stable")
    task = np.asarray(rec.trial_info["task"], dtype=object)
    rec = dataclasses.replace(rec, events={**rec.events, "fixation": EventSeries(fix[order], task[order], "fixation")})
    mod = {"name": "fix", "source": "events:fixation", "kind": "categorical", "window": [-1.2, 0.0]}
    cfg = small_config(current_window=0.1, past_window=1.2, dt_resolution=0.01, modalities=[mod])
    plan = plan_splits(rec, cfg)
    assert plan.mode == "trials"
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == ["encoding", "recognition", "timediscrimination"]
    starts, clips = window_starts_for_split(plan, "train", cfg)
    cols = modality_columns(rec, cfg, starts, clips)
    read = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in cols["mod_fix_ids"]])
    assert set(read.tolist()) == {0, 1, 2}  # the training windows read all three


def test_events_one_float_step_before_a_trial_end_are_fitted_as_the_last_window_reads_them(allen):
    """Break test: an event computed in floats can land one step before a trial's end (``0.7 - 0.4``
    is 0.29999999999999993 s, not 0.3). The trial's last window reads it (its span ends at the trial's
    end on the 1 ns grid), but fit_modalities took every sample within 0.5 ns of a segment's end as
    outside: with one such event per trial it refused the modality as having "no label ... inside the
    training split (... times must be seconds on the spikes' clock)", though every training trial's
    last window holds one. Real trials: the Allen gratings'."""
    import dataclasses

    from hf_neuroformer.binning import on_time_grid
    from hf_neuroformer.recording import EventSeries
    from hf_neuroformer.windows import window_starts_for_split

    ends = on_time_grid(np.asarray(allen.trials, dtype=np.float64)[:, 1])
    before_end = np.nextafter(ends, -np.inf)  # one float step before each trial's end
    assert np.all(before_end < ends) and np.all(ends - before_end < 1e-13)
    rec = dataclasses.replace(allen, events={"lick": EventSeries(before_end)})
    cfg = small_config(split_by="trials", modalities=[{"name": "lick", "source": "events:lick", "kind": "categorical"}])
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == ["lick"]
    starts, clips = window_starts_for_split(plan, "train", cfg)
    cols = modality_columns(rec, cfg, starts, clips)
    # each training trial's last window reads its trial's event, and no other window reads one
    n_train_trials = len(plan.segments["train"])
    assert sum(len(ids) for ids in cols["mod_lick_ids"]) == n_train_trials
    assert sum(len(ids) == 1 for ids in cols["mod_lick_ids"]) == n_train_trials


def test_events_one_float_step_before_a_trial_start_are_not_fitted_as_no_window_reads_them(allen):
    """Break test, the reverse edge of the one above: an event one float step before a trial's start
    (0.29999999999999993 s for a trial starting at 0.3 s) is read by no window of the trial (a span
    starts at the trial's start on the 1 ns grid), but fit_modalities took every sample within 0.5 ns
    before a segment's start as inside: its label became a class that no training window reads.
    Real trials: the Allen gratings'."""
    import dataclasses

    from hf_neuroformer.binning import on_time_grid
    from hf_neuroformer.recording import EventSeries
    from hf_neuroformer.windows import window_starts_for_split

    trials = np.asarray(allen.trials, dtype=np.float64)
    trials = trials[trials[:, 0] > allen.time_domain[0]]  # an event before the first trial is outside the recording
    starts = on_time_grid(trials[:, 0])
    before_start = np.nextafter(starts, -np.inf)  # one float step before each trial's start
    assert np.all(before_start < starts) and np.all(starts - before_start < 1e-13)
    mid = (trials[:, 0] + trials[:, 1]) / 2
    times = np.concatenate([before_start, mid])
    order = np.argsort(times, kind="stable")
    labels = np.array(["early"] * len(trials) + ["mid"] * len(trials), dtype=object)
    rec = dataclasses.replace(allen, events={"lick": EventSeries(times[order], labels[order])})
    cfg = small_config(split_by="trials", modalities=[{"name": "lick", "source": "events:lick", "kind": "categorical"}])
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == ["mid"]
    # the training windows read one 'mid' event per trial that has one, and no 'early' one (modality_columns
    # refuses a label that is not a class)
    w_starts, clips = window_starts_for_split(plan, "train", cfg)
    cols = modality_columns(rec, cfg, w_starts, clips)
    n_mid = int(np.sum([np.any((mid >= a) & (mid < b)) for a, b in plan.segments["train"]]))
    assert sum(len(ids) for ids in cols["mod_lick_ids"]) == n_mid > 0


def test_a_behaviour_series_in_milliseconds_is_warned_of_when_a_few_samples_fall_inside(a2929):
    """Break test: head-direction timestamps in ms on a recording whose clock starts at 0 (spikes in s)
    put 8 of 7200 samples inside its 60 s, one every 8.3 s: training fitted the statistics on those
    and left nearly every window without a value, with no word of the time base (frames in ms were
    warned of, samples were not). Now the samples outside the recorded time are counted in a warning."""
    from hf_neuroformer.recording import BehaviourSeries

    series = a2929.behaviour["ry"]
    ms = nf.SpikeRecording(a2929.spike_times - 700.0, a2929.unit_ids, unit_names=a2929.unit_names,
                           time_domain=(0.0, 60.0),
                           behaviour={"ry": BehaviourSeries((series.timestamps - 700.0) * 1000.0, series.values, "rad")})
    n_in = int(np.sum(ms.behaviour["ry"].timestamps < 60.0))
    assert 0 < n_in < 20
    cfg = small_config(split_block_length=10.0, modalities=[{"name": "hd", "source": "behaviour:ry",
                                                              "kind": "continuous"}])
    plan = quiet(plan_splits, ms, cfg)
    with pytest.warns(UserWarning, match=rf"\('hd'\): {len(series.timestamps) - n_in} of {len(series.timestamps)} "
                                         r"samples of 'behaviour:ry' lie outside the recorded time \[0, 60\) s .*"
                                         r"milliseconds\?"):
        fit_modalities(ms, cfg, plan)
    # the recording in seconds: no such warning
    cfg = small_config(split_block_length=10.0, modalities=[{"name": "hd", "source": "behaviour:ry",
                                                              "kind": "continuous"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_modalities(a2929, cfg, quiet(plan_splits, a2929, cfg))


def test_a_label_only_outside_the_training_split_says_how_to_give_it_a_class(a2929):
    """Break test: an event label that only a validation block holds ('reward' among 'lick's) stopped
    the window building with "label 'reward' at window ... s is not one of the training classes
    ['lick']", naming neither why (no embedding for a label no training window read) nor a fix."""
    cfg = small_config(split_block_length=10.0, modalities=[{"name": "ev", "source": "events:licks",
                                                              "kind": "categorical"}])
    plan = quiet(plan_splits, a2929, cfg)
    a, b = plan.segments["validation"][0]
    times = np.linspace(700.5, 759.5, 60)
    labels = np.where((times > a) & (times < b), "reward", "lick").astype(object)
    assert (labels == "reward").any()
    rec = nf.SpikeRecording(a2929.spike_times, a2929.unit_ids, unit_names=a2929.unit_names,
                            time_domain=a2929.time_domain, events={"licks": nf.EventSeries(times, labels)})
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] == ["lick"]
    with pytest.raises(ValueError, match=r"label 'reward' at window .* is not one of the training classes \['lick'\]: "
                                         r"no training window read it.*split_stratify_by.*or map it to one of the "
                                         r"classes .*'events:licks'"):
        modality_columns(rec, cfg, times[labels == "reward"] - 0.005)  # each window holds one reward event


def test_a_series_whose_samples_in_the_training_split_are_all_nan_is_not_blamed_on_the_clock(a2929):
    """Break test: head direction lost (NaN) in every training block but recorded elsewhere was refused
    with "no finite value ... inside the training split (its values lie in [700, 760] s, the training
    split's segments in [700, 760] s; times must be seconds on the spikes' clock)": the samples are
    there, on the right clock; they are NaN. The message now counts them and says so."""
    from hf_neuroformer.recording import BehaviourSeries

    cfg = small_config(split_block_length=10.0, modalities=[{"name": "hd", "source": "behaviour:ry",
                                                              "kind": "continuous"}])
    plan = quiet(plan_splits, a2929, cfg)
    ry = a2929.behaviour["ry"]
    train = np.asarray(plan.segments["train"])
    in_train = ((ry.timestamps[:, None] >= train[:, 0]) & (ry.timestamps[:, None] < train[:, 1])).any(1)
    lost = nf.SpikeRecording(a2929.spike_times, a2929.unit_ids, unit_names=a2929.unit_names,
                             time_domain=a2929.time_domain,
                             behaviour={"ry": BehaviourSeries(ry.timestamps, np.where(in_train, np.nan, ry.values), "rad")})
    with pytest.raises(ValueError, match=rf"\('hd'\): no finite value of 'behaviour:ry' inside the training split \(its "
                                         rf"{int(in_train.sum())} samples there are all NaN or infinite: the series "
                                         r"was not recorded in the training split's time") as err:
        quiet(fit_modalities, lost, cfg, plan)
    assert "clock" not in str(err.value)


def test_a_trained_model_given_a_behaviour_series_in_milliseconds_warns_through_the_processor(a2929):
    """Break test: a model trained with head direction in s, given a recording whose ``ry`` timestamps
    are in ms (its clock from 0), read no value in nearly every window and said nothing (the processor
    and the commands that run a trained model check the recording, but not its time base)."""
    from hf_neuroformer.recording import BehaviourSeries
    from tiny_configs import untrained_model

    cfg = small_config(split_block_length=10.0, modalities=[{"name": "hd", "source": "behaviour:ry",
                                                              "kind": "continuous"}])
    fit_modalities(a2929, cfg, quiet(plan_splits, a2929, cfg))
    ry = a2929.behaviour["ry"]
    ms = nf.SpikeRecording(a2929.spike_times - 700.0, a2929.unit_ids, unit_names=a2929.unit_names,
                           time_domain=(0.0, 60.0), session=a2929.session,
                           behaviour={"ry": BehaviourSeries((ry.timestamps - 700.0) * 1000.0, ry.values, "rad")})
    tok, _ = untrained_model(a2929, cfg)
    processor = nf.NeuroformerProcessor.from_config(tok, cfg)
    with pytest.warns(UserWarning, match=r"^recording: the model's modality 'hd': 7\d\d\d of 7\d\d\d samples of 'behaviour:ry' "
                                         r"lie outside the recorded time \[0, 60\) s .*behaviour\['ry'\]\.timestamps must "
                                         r"be seconds"):
        processor.check_recording(ms)
    with warnings.catch_warnings():  # the recording in seconds: no such warning
        warnings.simplefilter("error")
        processor.check_recording(a2929)


def test_frame_onsets_out_of_order_are_refused_naming_the_frame():
    """Break test: frame onsets with two frames swapped (or one logged twice) were refused with
    "stimulus.frame_times: expected finite, strictly increasing onsets (s)", naming no frame among
    thousands; the message now names the first one and how to fix it, as for behaviour samples."""
    from hf_neuroformer.recording import RecordingValidationError, Stimulus

    ft = np.arange(100) / 60.0
    ft[[40, 41]] = ft[[41, 40]]
    for times, match in ((ft, r"strictly increasing times, frame 41 \(0\.66666\d* s\) does not come after frame 40"),
                         (np.r_[ft[:10], ft[9], ft[11:]], r"strictly increasing times, frame 10 \(0\.15 s\) does not "
                                                          r"come after frame 9"),
                         (np.r_[ft[:5], np.nan, ft[6:]], r"finite times, frame 5 is nan")):
        with pytest.raises(RecordingValidationError, match=r"stimulus\.frame_times: expected " + match):
            nf.SpikeRecording(np.array([0.1, 1.0]), np.array([0, 0]), time_domain=(0.0, 2.0),
                              stimulus=Stimulus(frames=np.zeros((100, 4, 4)), frame_times=times))


def test_an_event_without_a_label_says_to_drop_events_not_trials(a2929):
    """Break test: an event stream with a label missing (None) in the training split was refused with
    "... map the missing ones to a label of their own, or drop those trials", on a recording without
    trials; the fix names what the source holds (events here)."""
    times = np.linspace(700.5, 759.5, 60)
    labels = np.array([None] + ["lick"] * 59, dtype=object)
    rec = nf.SpikeRecording(a2929.spike_times, a2929.unit_ids, unit_names=a2929.unit_names,
                            time_domain=a2929.time_domain, events={"licks": nf.EventSeries(times, labels)})
    cfg = small_config(split_block_length=10.0, split_seed=0,
                       modalities=[{"name": "ev", "source": "events:licks", "kind": "categorical"}])
    plan = quiet(plan_splits, rec, cfg)
    assert any(a <= 700.5 < b for a, b in plan.segments["train"])  # the unlabelled event is a training one
    with pytest.raises(ValueError, match=r"1 of \d+ labels of 'events:licks' in the training split are None, NaN or "
                                         r"infinite; .*or drop those events\)$"):
        fit_modalities(rec, cfg, plan)


def test_trial_mode_statistics_are_those_the_training_windows_read_and_no_other_splits(a2929):
    """Split by trials with a modality window that starts before the current window, a trial's first
    windows read head direction in the gap before their trial, but the z-score statistics came from
    inside the training trials only (mean 4.7275 rad, against 4.7136 rad of the samples the training
    windows read, on 700-715 s of A2929). Now they are those of the samples the
    training windows read (recounted from their modality tokens); and values of the validation and
    test trials and of the gaps before them (here +100 rad) change nothing: no leakage."""
    import dataclasses

    from hf_neuroformer.recording import BehaviourSeries
    from hf_neuroformer.windows import window_starts_for_split

    rec = a2929.restrict(700.0, 715.0)
    onsets = np.arange(700.2, 714.0, 1.0)  # 0.5-s trials, 0.5 s apart
    rec = dataclasses.replace(rec, trials=np.stack([onsets, onsets + 0.5], axis=1), trial_info={})
    cfg = small_config(past_window=0.3, max_past_length=400, split_by="trials", modalities=[
        {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "window": [-0.3, 0.01], "max_tokens": 64}])
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    starts, clips = window_starts_for_split(plan, "train", cfg)
    cols = modality_columns(rec, cfg, starts, clips)
    assert sum(cols["mod_hd_n_truncated"]) == 0  # every sample of a modality window is a token
    read = {round(s + t, 9) for s, ts in zip(starts, cols["mod_hd_times"]) for t in ts}  # each sample once
    series = rec.behaviour["ry"]
    idx = np.searchsorted(series.timestamps, np.array(sorted(read)) - 1e-9)
    vals = np.asarray(series.values, dtype=np.float64).reshape(len(series.timestamps), -1)[idx, 0]
    inside = np.zeros(len(series.timestamps), dtype=bool)
    for a, b in plan.segments["train"]:
        inside |= (series.timestamps >= a) & (series.timestamps < b)
    assert len(vals) > inside.sum()  # the gaps before the training trials are read
    assert cfg.modalities[0]["mean"] == [pytest.approx(float(vals.mean()))]
    assert cfg.modalities[0]["std"] == [pytest.approx(float(vals.std()))]
    # the other splits' trials, with the gap before each, set far off: the statistics do not move
    other = np.zeros(len(series.timestamps), dtype=bool)
    for a, b in np.concatenate([plan.segments["validation"], plan.segments["test"]]):
        other |= (series.timestamps >= a - 0.3) & (series.timestamps < b)
    shifted = np.where(other[:, None], np.asarray(series.values).reshape(len(other), -1) + 100.0,
                       np.asarray(series.values).reshape(len(other), -1))
    rec2 = dataclasses.replace(rec, behaviour={"ry": BehaviourSeries(series.timestamps, shifted, series.unit)})
    cfg2 = small_config(past_window=0.3, max_past_length=400, split_by="trials", modalities=[
        {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "window": [-0.3, 0.01], "max_tokens": 64}])
    fit_modalities(rec2, cfg2, plan)
    assert cfg2.modalities[0]["mean"] == [pytest.approx(cfg.modalities[0]["mean"][0])]
    assert cfg2.modalities[0]["std"] == [pytest.approx(cfg.modalities[0]["std"][0])]


def test_a_split_whose_windows_hold_no_value_of_a_modality_is_warned_of_and_a_training_split_refused(a2929):
    """Break test: head direction recorded in part of the session only (here: its samples of the
    validation block dropped, as if tracking was lost there) gave validation windows that all read
    only the null token, and build_window_datasets (what train and finetune tokenize with) said
    nothing; a stream of events that no training window reads (all in the first past window of a
    training block, before any window's modality window) trained a model that never saw one. Now
    the split is warned of, counted, and the training split refused, naming the modality."""
    import dataclasses

    from hf_neuroformer.recording import BehaviourSeries, EventSeries

    rec = a2929.restrict(700.0, 718.0)
    cfg = small_config(current_window=0.05, past_window=0.05, dt_resolution=0.005, split_block_length=3.0,
                       modalities=[{"name": "hd", "source": "behaviour:ry", "kind": "continuous"}])
    plan = quiet(plan_splits, rec, cfg)
    (va, vb), = plan.segments["validation"]
    ry = rec.behaviour["ry"]
    keep = (ry.timestamps < va) | (ry.timestamps >= vb)
    gap = dataclasses.replace(rec, behaviour={"ry": BehaviourSeries(ry.timestamps[keep], ry.values[keep], "rad")})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    with warnings.catch_warnings():  # the whole series: no such warning
        warnings.simplefilter("error")
        n_val = len(build_window_datasets(rec, tok, cfg, plan)[0]["validation"])
    with pytest.warns(UserWarning, match=rf"^modality 'hd' \('behaviour:ry', window \[0, 0\.05\) s\): none of the "
                                         rf"windows of the validation split \({n_val}\) holds a value of it in its "
                                         r"modality window, so the model reads only the modality's learned null token"):
        ds, _ = build_window_datasets(gap, tok, cfg, plan)
    assert n_val > 50 and all(len(t) == 0 for t in ds["validation"]["mod_hd_times"])
    assert all(len(t) for t in ds["test"]["mod_hd_times"])  # the other splits read it
    # events only in the first 20 ms of each training block: inside the training split, in no window
    first = np.asarray(plan.segments["train"])[:, 0] + 0.02
    ev = dataclasses.replace(rec, events={"cue": EventSeries(first, None, "cue")})
    cfg_ev = small_config(current_window=0.05, past_window=0.05, dt_resolution=0.005, split_block_length=3.0,
                          vocab_size=len(tok), modalities=[{"name": "cue", "source": "events:cue", "kind": "categorical"}])
    with pytest.raises(ValueError, match=r"^modality 'cue' \('events:cue', window \[0, 0\.05\) s\): none of the \d+ "
                                         r"train windows holds a value of it, so the model would learn nothing of it"):
        build_window_datasets(ev, tok, cfg_ev, plan)


def test_the_processor_warns_when_none_of_its_windows_holds_a_value_of_a_modality(a2929, shared_data):
    """Break test: a model reading head direction given windows of the sleep epoch (no tracking) read
    only the modality's null token in every window, and the processor said nothing (decode_windows
    counted it, the processor did not)."""
    from hf_neuroformer.io import load_recording
    from tiny_configs import untrained_model

    cfg = small_config(modalities=[{"name": "hd", "source": "behaviour:ry", "kind": "continuous",
                                    "normalization": "circular"}])
    tok, _ = untrained_model(a2929, cfg)
    processor = nf.NeuroformerProcessor.from_config(tok, cfg)
    with warnings.catch_warnings():  # tracked windows: no warning
        warnings.simplefilter("error")
        processor(a2929, [710.0, 710.01])
    sleep = quiet(load_recording, shared_data(A2929), epoch="sleep").restrict(100.0, 101.0)
    starts = 100.1 + 0.01 * np.arange(12)
    match = (r"^modality 'hd' \('behaviour:ry', window \[0, 0\.01\) s\): none of the 12 windows holds a value of it "
             r"in its modality window, so the model reads only the modality's learned null token there")
    with pytest.warns(UserWarning, match=match) as caught:
        inputs = processor(sleep, starts)
    assert [w.filename for w in caught if "null token" in str(w.message)] == [__file__]  # points at the call
    assert inputs["modality_inputs"]["hd"]["mask"].sum() == 0
    with pytest.warns(UserWarning, match=match):
        processor.to_dataset(sleep, starts)


def test_windows_without_values_at_counts_what_the_windows_read(allen_video, a2929):
    """windows_without_values_at (what inspect counts per split) against windows_without_values of
    the modality tokens the windows read (modality_columns), on the Allen gratings split by trials:
    frames only in the first 10 s (later windows see none), events in every third trial, and the
    orientation as a continuous trial value (intervals), each with a window reaching before the
    trial; and A2929's head direction with a stretch of NaN samples (a NaN is no value)."""
    import dataclasses

    from hf_neuroformer.modalities import windows_without_values, windows_without_values_at
    from hf_neuroformer.recording import BehaviourSeries, EventSeries
    from hf_neuroformer.windows import window_starts_for_split

    stim = allen_video.stimulus
    early = stim.frame_times < 10.0
    rec = dataclasses.replace(allen_video, stimulus=dataclasses.replace(
        stim, frames=stim.frames[early], frame_times=stim.frame_times[early]),
        events={"cue": EventSeries(allen_video.trials[::3, 0] + 0.005, None, "cue")})
    cfg = small_config(split_by="trials", modalities=[
        {"name": "video", "source": "stimulus:frames", "kind": "video", "frame_shape": [16, 16], "num_frames": 2,
         "patch_size": [1, 8, 8], "window": [-0.02, 0.01]},
        {"name": "cue", "source": "events:cue", "kind": "categorical", "window": [-0.02, 0.01]},
        {"name": "ori", "source": "trial:orientation_deg", "kind": "continuous", "window": [-0.02, 0.01]}])
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    ry = a2929.behaviour["ry"]
    values = np.where((ry.timestamps > 705.0) & (ry.timestamps < 706.0), np.nan, np.asarray(ry.values).ravel())
    hd = dataclasses.replace(a2929.restrict(700.0, 710.0), behaviour={"ry": BehaviourSeries(ry.timestamps, values, "rad")})
    hd_cfg = small_config(modalities=[{"name": "hd", "source": "behaviour:ry", "kind": "continuous",
                                       "normalization": "circular"}])
    cases = [(rec, cfg, *window_starts_for_split(plan, s, cfg)) for s in ("train", "test")]
    cases.append((hd, hd_cfg, 704.5 + 0.01 * np.arange(200), None))
    for r, c, starts, clips in cases:
        cols = modality_columns(r, c, starts, clips)
        want = {m["name"]: windows_without_values(cols, m) for m in c.modalities}
        assert windows_without_values_at(r, c, starts, clips) == want
        assert all(0 < k < len(starts) for name, k in want.items() if name != "ori")


@pytest.fixture(scope="module")
def flat_series_recording():
    """20 s of two units' spikes with a behaviour series ``flat`` that is constant (2.0) but for
    one NaN sample: fitting it warns twice (NaN samples, constant in the training split)."""
    from hf_neuroformer.recording import BehaviourSeries, SpikeRecording

    t = np.arange(0.0, 20.0, 0.05)
    v = np.full(len(t), 2.0)
    v[3] = np.nan
    spikes = np.arange(0.005, 20.0, 0.013)
    return SpikeRecording(spike_times=spikes, unit_ids=np.arange(len(spikes)) % 2,
                          unit_names=["a", "b"], time_domain=(0.0, 20.0),
                          behaviour={"flat": BehaviourSeries(t, v, "a.u.")})


def _fit_warnings(got):
    return [w for w in got if "'flat'" in str(w.message) or "constant in the training split" in str(w.message)]


def test_modality_fit_warnings_point_at_the_line_that_called_the_public_function(flat_series_recording, tmp_path):
    """fit_modalities warned with the default stacklevel: its 'NaN or infinite' and 'constant in
    the training split' warnings named modalities.py, also when build_window_datasets, train,
    split_window_counts or describe_recording fitted the statistics. Each now names the user's line."""
    from hf_neuroformer.inspection import describe_recording, split_window_counts

    rec = flat_series_recording
    mods = [{"name": "flat", "source": "behaviour:flat", "kind": "continuous", "normalization": "zscore"}]

    def config():
        return small_config(split_block_length=2.0, modalities=[dict(m) for m in mods])

    def tokenizer(cfg):
        tok = nf.NeuroformerTokenizer.from_config(cfg)
        tok.add_units(rec)
        cfg.vocab_size = len(tok)
        return tok

    calls = {
        "fit_modalities": lambda cfg: fit_modalities(rec, cfg, quiet(plan_splits, rec, cfg)),
        "build_window_datasets": lambda cfg: build_window_datasets(rec, tokenizer(cfg), cfg),
        "split_window_counts": lambda cfg: split_window_counts(rec, cfg),
        "describe_recording": lambda cfg: describe_recording(rec, cfg),
    }
    for name, call in calls.items():
        cfg = config()
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call(cfg)
        ours = _fit_warnings(got)
        assert [str(w.message).split(": ", 1)[1][:12] for w in ours] == ["1 of 400 sam", "constant in "], name
        # the line of the call (the lambda's), not one frame too far (the loop's call(cfg))
        assert {(w.filename, w.lineno) for w in ours} == {(__file__, call.__code__.co_firstlineno)}, (
            name, [(str(w.message)[:50], w.filename, w.lineno) for w in ours])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        train(rec, tmp_path / "m", config(), TrainingConfig(max_steps=1, batch_size=8, generate_test=False),
              progress=False)
    ours = _fit_warnings(got)
    assert len(ours) == 2 and {(w.filename, w.lineno) for w in ours} == {(__file__, line)}, [
        (str(w.message)[:50], w.filename, w.lineno) for w in ours]


def test_modality_reading_warnings_point_at_the_line_that_called_the_public_function(tmp_path):
    """A circular series in degrees labelled 'rad' is warned of each time a modality track is read.
    build_window_datasets (hence train and the decoding datasets) tokenized its windows with
    tokenize_windows' default stacklevel, fit_modalities (train) and check_recording_modalities read
    the track with modality_track's and generate_spikes its columns with modality_columns': the
    warning named windows.py, modalities.py or generation.py (and so came again at each of those lines).
    It now names the line that called the public function, every time."""
    from hf_neuroformer.generation import generate_spikes
    from hf_neuroformer.modalities import check_recording_modalities
    from hf_neuroformer.recording import BehaviourSeries, SpikeRecording
    from tiny_configs import untrained_model

    t = np.arange(0.0, 20.0, 0.05)
    spikes = np.arange(0.005, 20.0, 0.013)
    rec = SpikeRecording(spike_times=spikes, unit_ids=np.arange(len(spikes)) % 2, unit_names=["a", "b"],
                         time_domain=(0.0, 20.0),  # 5 degrees a sample, wrapped at 360: 'rad' by mistake
                         behaviour={"hd": BehaviourSeries(t, (t * 100.0) % 360.0, "rad")})

    def config():
        return small_config(split_block_length=2.0, modalities=[
            {"name": "hd", "source": "behaviour:hd", "kind": "continuous", "normalization": "circular"}])

    cfg = config()
    tok, model = untrained_model(rec, cfg)
    processor = nf.NeuroformerProcessor.from_config(tok, cfg)
    calls = {
        "build_window_datasets": lambda: build_window_datasets(rec, tok, cfg),
        "train": lambda: train(rec, tmp_path / "m", config(), TrainingConfig(max_steps=1, batch_size=8,
                                                                               generate_test=False),
                               progress=False, write_figures=False),
        "generate_spikes": lambda: generate_spikes(model, tok, rec, [5.0, 5.01], progress=False),
        "processor": lambda: processor(rec, [5.0, 5.01]),
        "check_recording_modalities": lambda: check_recording_modalities(cfg, rec),
    }
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        ours = [w for w in got if "beyond two turns" in str(w.message)]
        assert ours and all(str(w.message).startswith("NeuroformerConfig.modalities[0] ('hd'): behaviour['hd'] "
                                                      "(unit 'rad')") for w in ours), name
        # the line of the call (the lambda's), not the package's line that read the track
        assert {(w.filename, w.lineno) for w in ours} == {(__file__, call.__code__.co_firstlineno)}, (
            name, [(w.filename, w.lineno) for w in ours])


def test_run_ablation_fit_warnings_point_at_the_line_that_called_it(flat_series_recording, tmp_path):
    """run_ablation fits the modalities once before any variant trains (a missing source refused
    first); its split plan and fit warnings named ablation.py. They now name the caller's line.
    A file where the first variant's folder would be stops it before any training."""
    from hf_neuroformer.ablation import run_ablation

    cfg = small_config(split_block_length=2.0, modalities=[
        {"name": "flat", "source": "behaviour:flat", "kind": "continuous", "normalization": "zscore"}])
    (tmp_path / "0-state-only").write_text("not a folder")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 2  # the call's, inside the pytest.raises block
        with pytest.raises(FileExistsError, match="0-state-only' exists and is not a directory"):
            run_ablation(flat_series_recording, cfg, TrainingConfig(max_steps=1), work_dir=tmp_path)
    ours = _fit_warnings(got)
    assert len(ours) == 2 and {(w.filename, w.lineno) for w in ours} == {(__file__, line)}, [
        (str(w.message)[:50], w.filename, w.lineno) for w in got]


def test_run_ablation_variant_training_warnings_point_at_the_line_that_called_it(tmp_path):
    """train took no stacklevel, so the warnings of each variant's training run (here 'no
    validation windows', one per variant) named ablation.py. They now name the caller's line."""
    from hf_neuroformer.ablation import run_ablation
    from hf_neuroformer.recording import SpikeRecording

    spikes = np.arange(0.005, 10.0, 0.013)
    rec = SpikeRecording(spike_times=spikes, unit_ids=np.arange(len(spikes)) % 2,
                         unit_names=["a", "b"], time_domain=(0.0, 10.0))
    cfg = small_config(split_block_length=2.0, split_fractions=[0.8, 0.0, 0.2])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        run_ablation(rec, cfg, TrainingConfig(max_steps=1, batch_size=8, generate_test=False),
                     progress=False, work_dir=tmp_path)
    ours = [w for w in got if "no validation windows" in str(w.message)]
    assert len(ours) == 2 and {(w.filename, w.lineno) for w in ours} == {(__file__, line)}, [
        (str(w.message)[:50], w.filename, w.lineno) for w in got]


def test_inspection_modality_reading_warning_points_at_the_line_that_called_it():
    """describe_recording counted each split's windows without a modality value with
    windows_without_values_at, which read the track with modality_track's default stacklevel: a
    circular series in degrees labelled 'rad' was warned of at modalities.py (besides the fit's
    warning at the user's line). windows_without_values_at now takes a stacklevel; both point at
    the line that called the public function."""
    from hf_neuroformer.inspection import describe_recording
    from hf_neuroformer.modalities import windows_without_values_at
    from hf_neuroformer.recording import BehaviourSeries, SpikeRecording

    t = np.arange(0.0, 20.0, 0.05)
    spikes = np.arange(0.005, 20.0, 0.013)
    rec = SpikeRecording(spike_times=spikes, unit_ids=np.arange(len(spikes)) % 2, unit_names=["a", "b"],
                         time_domain=(0.0, 20.0),  # 5 degrees a sample, wrapped at 360: 'rad' by mistake
                         behaviour={"hd": BehaviourSeries(t, (t * 100.0) % 360.0, "rad")})
    cfg = small_config(split_block_length=2.0, modalities=[
        {"name": "hd", "source": "behaviour:hd", "kind": "continuous", "normalization": "circular"}])
    calls = {
        "describe_recording": lambda: describe_recording(rec, cfg),
        "windows_without_values_at": lambda: windows_without_values_at(rec, cfg, [1.0, 5.0, 30.0]),
    }
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = call()
        ours = [w for w in got if "beyond two turns" in str(w.message)]
        # describe_recording: the fit's and each split's count's; windows_without_values_at: one
        assert len(ours) == (4 if name == "describe_recording" else 1), (name, [str(w.message)[:60] for w in got])
        assert {(w.filename, w.lineno) for w in ours} == {(__file__, call.__code__.co_firstlineno)}, (
            name, [(w.filename, w.lineno) for w in ours])
    # the count itself: the window at 30 s (past the recording) reads no sample
    assert out == {"hd": 1}
