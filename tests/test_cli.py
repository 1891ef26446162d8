"""The `neuroformer` command end to end on a real recording: train -> generate -> evaluate.

Most calls go through ``cli.main`` in this process (the same code as the console script, whose
exit status is ``main``'s return value; an uncaught exception fails the test), to spare the
suite an interpreter start (about 5 s) per call. ``run_cli`` runs the real command in a
subprocess where the test is about what a fresh process prints: a refusal's stderr holding one
line and no traceback, and warnings formatted like the command's errors (``main`` installs the
format; under pytest warnings are recorded instead of printed).
"""

import contextlib
import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from pynwb import NWBHDF5IO

TINY_YAML = """
hidden_size: 32
num_attention_heads: 4
intermediate_size: 64
max_past_length: 128
training:
  batch_size: 32
  eval_batch_size: 256
  generation_batch_size: 512
"""


def run_cli(*args, timeout=600):
    """The command in a fresh interpreter: ``subprocess.CompletedProcess`` (text stdout/stderr)."""
    return subprocess.run([sys.executable, "-m", "hf_neuroformer.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def main_cli(capsys, *args):
    """``cli.main`` in this process: ``(exit status, stdout, stderr)`` of the call."""
    from hf_neuroformer.cli import main

    capsys.readouterr()  # what earlier calls printed is not this call's
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """``(folder, A2929 path, result)``: ``neuroformer train`` (15 steps, seed 3) run in this
    process; ``result.returncode`` / ``.stdout`` / ``.stderr`` as ``run_cli`` gives them."""
    from hf_neuroformer.cli import main

    d = tmp_path_factory.mktemp("cli")
    nwb = shared_data("pynapple_A2929_headdirection/A2929-200711.nwb")
    (d / "tiny.yaml").write_text(TINY_YAML)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in ("train", "--config", d / "tiny.yaml", "--data", nwb, "--epoch", "wake",
                                      "--output-dir", d / "model", "--max-steps", 15, "--seed", 3)])
    res = subprocess.CompletedProcess(["neuroformer", "train"], code, out.getvalue(), err.getvalue())
    assert res.returncode == 0, res.stderr[-3000:]
    return d, nwb, res


def test_train_writes_model_and_metrics(trained):
    d, _, res = trained
    for f in ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "metrics.json", "splits.json"):
        assert (d / "model" / f).is_file(), f
    text = (d / "model" / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON: undefined values are null
    m = json.loads(text)
    for k in ("test/id_nll", "test/dt_nll", "test/unigram_id_nll", "test/markov_id_nll", "test/marginal_dt_nll",
              "test/markov_dt_nll", "test/id_f1", "test/rate_corr", "n_test_windows", "n_truncated_spikes"):
        assert k in m, k
    # the spike-timing F1 of the test generation at 5 / 10 / 25 ms beside its chance levels and their SD over the
    # 3 draws (test_generate_then_evaluate checks them against evaluate's), printed with the other metrics
    assert m["timing_chance_draws"] == 3
    for lab in ("5ms", "10ms", "25ms"):
        for suffix in ("", "_chance_poisson", "_chance_poisson_sd", "_chance_shuffle", "_chance_shuffle_sd"):
            key = f"test/timing_f1_{lab}{suffix}"
            assert 0.0 <= m[key] <= 1.0 and key in res.stdout, key
    assert m["total_steps"] == 15
    # spikes are tokenized in dt order: knowing the previous spike's dt bin must beat the marginal
    assert m["test/markov_dt_nll"] < m["test/marginal_dt_nll"]
    assert m["n_test_windows"] > 100
    assert np.isfinite(m["test/id_nll"]) and m["test/id_nll"] > 0
    # the Markov baseline beats the unigram on head-direction cells (bursting, tuning)
    assert m["test/markov_id_nll"] < m["test/unigram_id_nll"]
    assert "test/id_nll" in res.stdout
    # standard error into a file (a StringIO here) is the log-file rule: each redraw a line of its own.
    # transformers' "Writing model shards" bar (save_pretrained) still redrew in place with carriage returns
    assert "\r" not in res.stderr and "training: 100%" in res.stderr, repr(res.stderr[-2000:])
    splits = json.loads((d / "model" / "splits.json").read_text())
    assert splits["mode"] == "time"
    assert all(600.0 <= a < b <= 1200.0 for s in splits["segments"].values() for a, b in s)
    # what no current window covers is counted: in time mode at least the first past window (1 s) of each segment
    for s, segs in splits["segments"].items():
        assert m["seconds_outside_windows_by_split"][s] >= len(segs) * 1.0 - 1e-6, s
        assert 0 < m["n_spikes_outside_windows_by_split"][s] < m["n_spikes_by_split"][s], s


def test_train_refuses_to_overwrite(trained, capsys):
    d, nwb, _ = trained
    before = (d / "model" / "model.safetensors").read_bytes()
    code, _, err = main_cli(capsys, "train", "--data", nwb, "--epoch", "wake", "--output-dir", d / "model",
                            "--max-steps", 1)
    assert code == 2
    assert "--overwrite" in err and "already holds a model" in err
    assert (d / "model" / "model.safetensors").read_bytes() == before


def test_a_refusal_under_torchrun_is_said_by_the_main_rank_alone(trained, capsys, monkeypatch):
    """Under torchrun every rank runs the command and reached the same refusal (here: the output folder
    already holds a model), so it was printed once per process. Rank 0 says it; another rank of its
    machine ends with the same status and says nothing (no process group exists yet: nothing of its own
    to say). The first process of another machine (LOCAL_RANK 0, RANK 2) may refuse alone (that
    machine's files, e.g. its own output folder holding a model, while rank 0 waits): it said nothing
    on that machine's terminal either; it says it, named by its rank."""
    d, nwb, _ = trained
    said = {}
    for rank, local in (("0", None), ("1", None), ("1", "1"), ("2", "0")):
        monkeypatch.setenv("RANK", rank)
        if local is None:
            monkeypatch.delenv("LOCAL_RANK", raising=False)
        else:
            monkeypatch.setenv("LOCAL_RANK", local)
        said[rank, local] = main_cli(capsys, "train", "--data", nwb, "--epoch", "wake", "--output-dir", d / "model",
                                     "--max-steps", 1)
    assert {code for code, _, _ in said.values()} == {2}
    assert said["0", None][2].startswith("neuroformer train: error: --output-dir: ")
    assert "already holds a model" in said["0", None][2]
    assert said["1", None][2] == said["1", "1"][2] == "", said
    assert said["2", "0"][2] == said["0", None][2].replace("error: ", "error: rank 2: ", 1), said["2", "0"][2]


def test_unknown_epoch_names_the_choices(trained, capsys):
    d, nwb, _ = trained
    code, _, err = main_cli(capsys, "train", "--data", nwb, "--epoch", "nap", "--output-dir", d / "other")
    assert code == 2
    assert "nap" in err and "wake" in err


def test_generate_then_evaluate(trained, capsys):
    d, nwb, _ = trained
    out = d / "gen.nwb"
    # train's seed and generation_batch_size: the spikes of train's own test generation
    code, _, err = main_cli(capsys, "generate", "--model", d / "model", "--data", nwb, "--epoch", "wake",
                            "--output", out, "--split", "test", "--seed", 3, "--batch-size", 512)
    assert code == 0, err[-3000:]
    with NWBHDF5IO(str(out), "r") as io:  # opens with plain pynwb
        f = io.read()
        assert len(f.units) == 15
        n_spikes = sum(len(f.units["spike_times"][i]) for i in range(len(f.units)))
        assert n_spikes > 0
        assert "time_support" in f.intervals
    # refusing to overwrite the generated file
    before = out.read_bytes()
    code, _, err = main_cli(capsys, "generate", "--model", d / "model", "--data", nwb, "--epoch", "wake",
                            "--output", out)
    assert code == 2 and "--overwrite" in err
    assert out.read_bytes() == before

    code, stdout, err = main_cli(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", out,
                                 "--output", d / "eval.json")
    assert code == 0, err[-3000:]
    assert "rate_corr" in stdout and "id_f1" in stdout
    ev = json.loads((d / "eval.json").read_text())
    assert 0.0 <= ev["id_f1"] <= 1.0
    assert -1.0 <= ev["rate_corr"] <= 1.0
    assert ev["n_generated_spikes"] == n_spikes
    splits = json.loads((d / "model" / "splits.json").read_text())
    test_len = sum(b - a for a, b in splits["segments"]["test"])
    # the generated windows cover the test segments minus each segment's first past window
    assert 0.8 * test_len <= ev["support_duration_s"] <= test_len
    _check_isi_ks_floor(d, nwb, out, ev, stdout)
    _check_spike_timing_f1(nwb, out, ev, stdout)
    # the same spikes as train's test generation, so its metrics.json holds evaluate's figures
    m = json.loads((d / "model" / "metrics.json").read_text())
    assert m["test/n_generated_spikes"] == n_spikes and m["test/id_f1"] == ev["id_f1"]
    assert m["timing_chance_draws"] == ev["timing_chance_draws"] == 3
    for lab in ("5ms", "10ms", "25ms"):
        for suffix in ("", "_chance_poisson", "_chance_poisson_sd", "_chance_shuffle", "_chance_shuffle_sd"):
            assert m[f"test/timing_f1_{lab}{suffix}"] == ev[f"timing_f1_{lab}{suffix}"], (lab, suffix)
    # a tolerance below half the dt bin (read from the generated file) is out of reach even for a perfect model
    dt = json.loads((d / "model" / "config.json").read_text())["dt_resolution"]
    with pytest.warns(UserWarning, match=rf"^--timing-tolerances: {dt / 4:g} s is less than half the generator's dt "
                                         rf"bin \({dt:g} s, from the generated file\)"):
        code, stdout, err = main_cli(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", out,
                                     "--timing-tolerances", f"{dt / 4},{dt / 2}")
    assert code == 0, err[-3000:]
    assert f"timing_f1_{dt / 4 * 1e3:g}ms" in stdout and "timing_f1_5ms " not in stdout


def _check_spike_timing_f1(nwb, generated_path, ev, stdout):
    """The spike-timing F1 of A2929's generated test windows: in the JSON at 5, 10 and 25 ms with both
    chance levels, printed with them, and its 10 ms match count equal to scipy's maximum bipartite
    matching of the same-unit spike pairs within 10 ms (an independent algorithm) over the files."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    from hf_neuroformer.io import load_recording, read_nwb

    assert ev["timing_tolerances_s"] == [0.005, 0.01, 0.025]
    assert ev["timing_n_real_spikes"] == ev["n_real_spikes"] and ev["timing_n_generated_spikes"] == ev["n_generated_spikes"]
    f1 = [ev[f"timing_f1_{lab}"] for lab in ("5ms", "10ms", "25ms")]
    assert 0.0 <= f1[0] <= f1[1] <= f1[2] <= 1.0  # a wider window never loses a pair
    for lab in ("5ms", "10ms", "25ms"):
        for kind in ("poisson", "shuffle"):
            assert 0.0 <= ev[f"timing_f1_{lab}_chance_{kind}"] <= 1.0
            assert f"{ev[f'timing_f1_{lab}_chance_{kind}']:.4f}" in stdout
        assert f"timing_f1_{lab}" in stdout and f"{ev[f'timing_f1_{lab}']:.4f}" in stdout
    rec, gen = load_recording(nwb, epoch="wake"), read_nwb(generated_path)
    sup = gen.support
    row = np.searchsorted(sup[:, 0], rec.spike_times, side="right") - 1
    inside = (row >= 0) & (rec.spike_times < sup[np.maximum(row, 0), 1])
    matched = 0
    for u in range(rec.n_units):
        a = rec.spike_times[inside & (rec.unit_ids == u)]
        b = gen.spike_times[gen.unit_ids == u]
        lo = np.searchsorted(b, a - 0.01 - 1e-9, side="left")  # the 1 ns rounding slack of the metric
        hi = np.searchsorted(b, a + 0.01 + 1e-9, side="right")
        rows = np.repeat(np.arange(len(a)), hi - lo)
        cols = np.concatenate([np.arange(x, y) for x, y in zip(lo, hi)]) if len(a) else np.zeros(0, int)
        graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(a), len(b)))
        matched += int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())
    assert ev["timing_n_matched_10ms"] == matched
    print(f"A2929 spike-timing F1 (5/10/25 ms): {f1}; Poisson chance "
          f"{[ev[f'timing_f1_{lab}_chance_poisson'] for lab in ('5ms', '10ms', '25ms')]}; window-shuffle chance "
          f"{[ev[f'timing_f1_{lab}_chance_shuffle'] for lab in ('5ms', '10ms', '25ms')]}; {matched} pairs at 10 ms")


def _check_isi_ks_floor(d, nwb, generated_path, ev, stdout):
    """The ISI KS floor of A2929 (grid read from the generated file, no --model): > 0, printed next
    to the statistic, and equal to scipy's KS of one unit's recorded ISIs against the same spikes
    moved to their dt-bin centres (computed here by hand)."""
    from scipy import stats

    from hf_neuroformer.io import load_recording, read_nwb

    cfg = json.loads((d / "model" / "config.json").read_text())
    w, dt = cfg["current_window"], cfg["dt_resolution"]
    assert ev["isi_ks_floor_source"] == "the generated file" and ev["isi_ks_floor_dt_resolution_s"] == dt
    assert ev["isi_ks_floor_reason"] is None and ev["isi_ks_floor_mean"] > 0.02
    assert "isi_ks_floor_mean" in stdout and "(0 = same)" not in stdout
    assert f"{ev['isi_ks_floor_mean']:.4f}" in stdout
    rec = load_recording(nwb, epoch="wake")
    sup = read_nwb(generated_path).support
    seg = np.concatenate([[0], np.cumsum(sup[1:, 0] > sup[:-1, 1] + 1e-9)])  # touching windows: one segment
    u = int(np.argmax(ev["isi_n_real_per_unit"]))
    t = rec.spike_times[rec.unit_ids == u]
    row = np.searchsorted(sup[:, 0], t, side="right") - 1
    inside = (row >= 0) & (t < sup[np.maximum(row, 0), 1])
    t, row = t[inside], row[inside]
    start = sup[row, 0]
    k = np.minimum(np.floor((t - start) / dt + 1e-9), np.ceil(w / dt - 1e-9) - 1)
    snapped = start + (k * dt + np.minimum((k + 1) * dt, w)) / 2
    same_segment = seg[row][1:] == seg[row][:-1]
    isi_real, isi_snapped = np.diff(t)[same_segment], np.diff(snapped)[same_segment]
    assert isi_real.size == ev["isi_n_real_per_unit"][u] > 100
    floor = stats.ks_2samp(isi_real, isi_snapped).statistic
    assert floor > 0 and ev["isi_ks_floor_per_unit"][u] == pytest.approx(floor, abs=1e-12)
    print(f"A2929 ISI KS: model {ev['isi_ks_mean']:.4f}, floor {ev['isi_ks_floor_mean']:.4f} "
          f"(unit {u}: {floor:.4f} over {isi_real.size} ISIs)")


def test_bits_per_spike_against_the_scored_windows_rates(trained):
    """A2929, time-blocked split: bits/spike against Poisson units at the test windows' own rates
    (nlb_tools' null) equals a by-hand numpy/scipy computation, and differs from the train-rate
    figure because the rates drift between the train and test blocks."""
    from scipy import stats

    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.likelihood import split_bits_per_spike
    from hf_neuroformer.windows import window_starts_for_split

    d, nwb, _ = trained
    model, tok, plan = load_pretrained(d / "model")
    rec = load_recording(nwb, epoch="wake")
    out = split_bits_per_spike(model, tok, rec, plan, "test")
    cfg = model.config
    w, dt = cfg.current_window, cfg.dt_resolution
    n_bins = int(np.ceil(w / dt - 1e-9))
    widths = np.minimum((np.arange(n_bins) + 1) * dt, w) - np.arange(n_bins) * dt

    def counts(split):  # (windows, units, dt bins) spike counts, by hand
        starts, _ = window_starts_for_split(plan, split, cfg, stride=w)
        c = np.zeros((len(starts), rec.n_units, n_bins))
        for i, s in enumerate(starts):
            a, b = np.searchsorted(rec.spike_times, [s, round(s + w, 9)])
            k = np.clip(np.floor((rec.spike_times[a:b] - s) / dt + 1e-9).astype(int), 0, n_bins - 1)
            np.add.at(c[i], (rec.unit_ids[a:b], k), 1)
        return c

    test, train = counts("test"), counts("train")
    keep = test.sum((1, 2)) <= cfg.max_window_length - 2  # windows that fit the token budget
    test = test[keep]
    assert out["n_windows"] == len(test) and out["n_windows_truncated"] == int((~keep).sum())
    n_spikes = int(test.sum())
    assert out["n_spikes"] == n_spikes > 1000
    own_rates = test.sum((0, 2)) / (len(test) * w)
    train_rates = np.maximum(train.sum((0, 2)), 0.5) / (len(train) * w)
    own_null = stats.poisson.logpmf(test, own_rates[None, :, None] * widths[None, None]).sum()
    train_null = stats.poisson.logpmf(test, train_rates[None, :, None] * widths[None, None]).sum()
    assert out["null_scored_rates_log_likelihood_nats"] == pytest.approx(own_null, rel=1e-10)
    assert out["null_log_likelihood_nats"] == pytest.approx(train_null, rel=1e-10)
    scored = (out["model_log_likelihood_nats"] - own_null) / (n_spikes * np.log(2))
    assert out["bits_per_spike_scored_rates_null"] == pytest.approx(scored, rel=1e-9)
    # the rates drift between the blocks (A2929: some units double), so the two figures differ
    assert np.max(np.abs(np.log(own_rates / train_rates))) > np.log(1.5)
    assert out["bits_per_spike"] - out["bits_per_spike_scored_rates_null"] > 0.02
    print(f"A2929 bits/spike: train-rate null {out['bits_per_spike']:.4f}, "
          f"scored-rates null {out['bits_per_spike_scored_rates_null']:.4f}")


def test_generate_with_wrong_recording_is_refused(trained, shared_data):
    d, nwb, _ = trained
    res = run_cli("generate", "--model", d / "model", "--data", nwb, "--epoch", "sleep", "--output", d / "x.nwb")
    assert res.returncode == 2
    # the whole reason, in one line, not just the word "recording" (which any error could hold)
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroformer generate: error: --data: the test windows of this "
                                               "model span ["), res.stderr
    assert "but the recording covers [0.000, 600.000] s" in err[0] and "Traceback" not in res.stderr
    assert not (d / "x.nwb").exists()


def test_free_running_generation_and_bits_per_spike(trained, capsys):
    d, nwb, _ = trained
    out = d / "gen_free.nwb"
    code, stdout, err = main_cli(capsys, "generate", "--model", d / "model", "--data", nwb, "--epoch", "wake",
                                 "--output", out, "--mode", "free_running", "--dt-temperature", "0.8", "--seed", 2,
                                 "--max-spikes", 4)
    assert code == 0, err[-3000:]
    assert "free-running past" in stdout
    # (--max-spikes: a barely trained model fills its windows, and 860 chained windows of up to
    # 64 spikes took minutes; 16 took 7-45 s on 2 cores, 4 takes about half of that)
    code, stdout, err = main_cli(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", out,
                                 "--output", d / "eval_free.json", "--model", d / "model")
    assert code == 0, err[-3000:]
    assert "bits/spike" in stdout
    # A2929 has no trials: the figure's panels are binned rates, and the line says so (it said PSTHs)
    assert "eval_free.png (rasters and binned rates over time of the most active units)" in stdout, stdout

    def no_nan(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    ev = json.loads((d / "eval_free.json").read_text(), parse_constant=no_nan)  # strict JSON: NaN written as null
    assert np.isfinite(ev["bits_per_spike"]) and ev["bits_per_spike_n_windows"] > 0 and ev["bits_per_spike_n_spikes"] > 0
    assert ev["model_log_likelihood_nats"] < 0 and ev["null_log_likelihood_nats"] < 0
    assert (d / "eval_free.png").is_file()
    code, _, err = main_cli(capsys, "generate", "--model", d / "model", "--data", nwb, "--epoch", "wake",
                            "--output", d / "bad.nwb", "--temperature", "0")
    assert code == 2 and "temperature" in err and not (d / "bad.nwb").exists()


def test_train_resume_without_checkpoint_fails_before_loading_data(tmp_path, capsys):
    code, _, err = main_cli(capsys, "train", "--resume", "--output-dir", tmp_path / "run", "--data",
                            tmp_path / "missing.nwb")
    assert code == 2 and "no checkpoint" in err and "--save-every" in err


def test_train_resume_names_a_damaged_or_missing_trainer_state_and_the_checkpoint_before(tmp_path, capsys):
    # the command reads the newest checkpoint's training settings before check_resume: a trainer_state.json
    # cut short gave "error: Expecting value: line 2 column 1 (char 10)", a missing one "[Errno 2] ..."
    import hf_neuroformer as nf
    from hf_neuroformer.training import TrainingConfig, train

    rec = nf.simulate_coupled_network(n_units=5, duration=20.0, seed=7).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                               max_past_length=48, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=2.0)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(rec, out, cfg, TrainingConfig(max_steps=2, batch_size=16, save_every=1), progress=False)
    state = out / "checkpoints" / "step-00000002" / "trainer_state.json"
    state.write_text(state.read_text()[:10])  # cut short
    code, _, err = main_cli(capsys, "train", "--resume", "--output-dir", out, "--max-steps", "4")
    assert code == 2 and "trainer_state.json' is damaged" in err and "(step-00000001)" in err, err
    state.unlink()
    code, _, err = main_cli(capsys, "train", "--resume", "--output-dir", out, "--max-steps", "4")
    assert code == 2 and "lacks trainer_state.json" in err and "(step-00000001)" in err, err


def test_train_resume_warns_once_of_checkpoint_settings_this_version_does_not_know(tmp_path, capsys):
    """'train --resume' warned of the checkpoint's training settings this version does not know
    when it read them; train(resume=True) now warns of them too (the Python path had dropped them
    without a word), so the command leaves its own warning to train's: one warning, not two."""
    import hf_neuroformer as nf
    from hf_neuroformer.io.arrays import write_npz

    rec = nf.simulate_coupled_network(n_units=5, duration=20.0, seed=7).recording
    data = write_npz(rec, tmp_path / "sim.npz")
    yaml_path = tmp_path / "tiny.yaml"
    yaml_path.write_text("current_window: 0.1\npast_window: 0.3\ndt_resolution: 0.01\nmax_window_length: 24\n"
                         "max_past_length: 48\nhidden_size: 16\nnum_attention_heads: 2\nintermediate_size: 32\n"
                         "split_block_length: 2.0\ntraining:\n  batch_size: 16\n  save_every: 2\n")
    run = ("train", "--config", yaml_path, "--data", data, "--output-dir", tmp_path / "run", "--no-figures",
           "--no-test-generation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main_cli(capsys, *run, "--max-steps", "2")[0] == 0
    path = tmp_path / "run" / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(path.read_text())
    state["training"]["label_smoothing"] = 0.1
    path.write_text(json.dumps(state))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = main_cli(capsys, *run, "--max-steps", "3", "--resume")
    assert code == 0, err[-3000:]
    ours = [str(w.message) for w in caught if "does not know" in str(w.message)]
    assert ours == [f"resume: {str(path)!r} holds training settings this version of hf_neuroformer does not know "
                    "(stored values): {'label_smoothing': 0.1}; the run continues without them"], ours


def test_main_job_splits_builtin_data_finely_and_warnings_read_like_errors(tmp_path, capsys):
    # The README's main job on the built-in 140-s recording warned that the 30-s default blocks
    # gave only 5 split blocks (0.6 / 0.2 / 0.2 for 0.7 / 0.15 / 0.15); without --config it now
    # uses 10-s blocks (14 blocks: 10 / 2 / 2) and says so. (In this process: a warning is
    # recorded here instead of printed, so both stderr and the recorded warnings are searched.)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # (no test generation: nothing below reads it; the test NLL intervals come from the test scoring)
        code, stdout, err = main_cli(capsys, "train", "--output-dir", tmp_path / "qs", "--max-steps", "2",
                                     "--no-test-generation")
    assert code == 0, err[-3000:]
    assert "split_block_length 10 s for the 140-s built-in recording" in stdout, stdout[-2000:]
    assert "split_block_length" not in err, err[-2000:]
    assert not [str(w.message) for w in caught if "split_block_length" in str(w.message)]
    plan = json.loads((tmp_path / "qs" / "splits.json").read_text())
    assert json.loads((tmp_path / "qs" / "config.json").read_text())["split_block_length"] == 10.0
    seconds = {s: sum(b - a for a, b in seg) for s, seg in plan["segments"].items()}
    assert abs(seconds["train"] / sum(seconds.values()) - 0.7) < 0.05, seconds  # 5 blocks gave 0.6
    # its test split (two 9-s segments) is 2 blocks of 10 s: no interval, and the reason names the flag that gives one
    m = json.loads((tmp_path / "qs" / "metrics.json").read_text())
    assert m["test/id_nll_ci95"] is None and m["test/ci95_n_blocks"] == 2 and m["test/ci95_block_s"] == 10.0
    assert "shorter blocks give an interval: e.g. --ci-block-s 2 (" in m["test/id_nll_ci95_reason"]
    assert "e.g. --ci-block-s 2 (" in stdout and "ci_block_s=" not in stdout
    # A config that asks for 30-s blocks on the same data gets the warning, printed like the
    # command's errors, not as "path/windows.py:240: UserWarning: ..." plus the source line
    # (a fresh process: what the user's terminal shows).
    cfg = tmp_path / "blocks30.yaml"
    cfg.write_text("split_block_length: 30.0\n")
    res = run_cli("prepare", "--config", cfg, "--output", tmp_path / "prep", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if "split_block_length: only 5 blocks" in ln]
    assert len(lines) == 1 and lines[0].startswith("neuroformer prepare: warning: split_block_length:"), res.stderr[-2000:]
    assert "windows.py" not in res.stderr and "warnings.warn(" not in res.stderr


@pytest.fixture(scope="module")
def builtin_ci2(tmp_path_factory):
    """``(folder, result)``: ``neuroformer train --max-steps 2 --save-every 2 --ci-block-s 2
    --no-test-generation`` on the built-in recording, run in this process (``result`` as ``run_cli``
    gives it). The test of the printed intervals and the test of a resume with nothing to do share this
    one run (each ran it); neither reads the test generation."""
    from hf_neuroformer.cli import main

    d = tmp_path_factory.mktemp("cli_ci2") / "qs"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--output-dir", str(d), "--max-steps", "2", "--save-every", "2", "--ci-block-s", "2",
                     "--no-test-generation"])
    return d, subprocess.CompletedProcess(["neuroformer", "train"], code, out.getvalue(), err.getvalue())


def test_train_ci_block_s_gives_the_builtin_recordings_test_intervals(builtin_ci2):
    """`neuroformer train --ci-block-s 2` on the 140-s built-in recording: its test split (two 9-s
    segments) is only 2 blocks of the default 10 s (no interval), 10 blocks of 2 s, and the test NLLs get
    intervals that hold their point values; the block length is recorded and printed."""
    d, res = builtin_ci2
    code, stdout, err = res.returncode, res.stdout, res.stderr
    assert code == 0, err[-3000:]
    m = json.loads((d / "metrics.json").read_text())
    assert m["test/ci95_block_s"] == 2.0 and m["test/ci95_n_blocks"] == 10
    assert "consecutive 2 s of window starts" in m["test/ci95_blocks"]
    for key in ("test/id_nll", "test/dt_nll"):
        lo, hi = m[f"{key}_ci95"]
        assert lo < m[key] < hi and f"{key}_ci95_reason" not in m, key
        assert f"{m[key]:.4f}  95% CI [{lo:.4f}, {hi:.4f}]" in stdout
    assert "test/ci95_block_s                  2.0" in stdout


def test_train_no_figures_leaves_out_the_figures_and_nothing_else(tmp_path, capsys, shared_data):
    """`neuroformer train` always drew training_curves.png and test_generation.png: train(write_figures=False)
    could leave them out, the command could not. `--no-figures` now leaves out those two and nothing else (a
    1-step run on 3 units of A2929 over 40 s, with and without the flag: the same files but the PNGs)."""
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.io.arrays import write_npz

    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    three = rec.select_units(np.argsort(rec.firing_rates)[-3:]).restrict(600.0, 640.0)
    with warnings.catch_warnings():  # (npz keeps the epochs and behaviour too; not needed here)
        warnings.simplefilter("ignore")
        write_npz(three, tmp_path / "three_units.npz")
    (tmp_path / "tiny.yaml").write_text(TINY_YAML + "split_block_length: 4\n")
    written = {}
    for name, extra in (("with", []), ("without", ["--no-figures"])):
        code, stdout, err = main_cli(capsys, "train", "--config", tmp_path / "tiny.yaml", "--data",
                                     tmp_path / "three_units.npz", "--output-dir", tmp_path / name, "--max-steps", "1",
                                     *extra)
        assert code == 0, err[-3000:]
        written[name] = sorted(p.name for p in (tmp_path / name).iterdir())
    figures = ["test_generation.png", "training_curves.png"]
    assert set(figures) <= set(written["with"]), written
    assert written["without"] == [f for f in written["with"] if f not in figures], written
    assert ".png" not in stdout, stdout  # the 'wrote' line of the run without figures names none


def _train_one_step_on_busiest_units(tmp_path, capsys, shared_data, n_units, stop, yaml_extra):
    """``(recording, metrics.json dict, stdout)``: ``neuroformer train`` for one step on the
    ``n_units`` busiest units of the A2929 wake epoch over [600 s, ``stop``), with ``TINY_YAML``
    plus ``yaml_extra``."""
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.io.arrays import write_npz

    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    rec = rec.select_units(np.argsort(rec.firing_rates())[-n_units:]).restrict(600.0, stop)
    assert rec.n_units == n_units
    with warnings.catch_warnings():  # (npz keeps the epochs and behaviour too; not needed here)
        warnings.simplefilter("ignore")
        write_npz(rec, tmp_path / "busiest_units.npz")
    (tmp_path / "tiny.yaml").write_text(TINY_YAML + yaml_extra)
    code, stdout, err = main_cli(capsys, "train", "--config", tmp_path / "tiny.yaml", "--data",
                                 tmp_path / "busiest_units.npz", "--output-dir", tmp_path / "model", "--max-steps", "1")
    assert code == 0, err[-3000:]
    return rec, json.loads((tmp_path / "model" / "metrics.json").read_text()), stdout


def test_train_says_why_a_null_rate_corr_is_undefined(tmp_path, capsys, shared_data):
    """Break test: on a recording of 2 units the test generation's firing-rate correlation is
    undefined (a Pearson r over units needs 3), and metrics.json held ``test/rate_corr: null``
    with no reason, though ``neuroformer evaluate`` on the same windows says why
    (``rate_corr_reason``). It now carries ``test/rate_corr_reason`` in evaluate's words, printed
    with the other metrics; a defined ``test/id_f1`` has no ``test/id_f1_reason``."""
    from hf_neuroformer.metrics.fidelity import firing_rate_correlation

    two, m, stdout = _train_one_step_on_busiest_units(tmp_path, capsys, shared_data, 2, 640.0, "split_block_length: 4\n")
    assert m["test/rate_corr"] is None
    # evaluate's reason for these units: it depends on the unit count only, not on the generated spikes
    expected = firing_rate_correlation(two, two)["rate_corr_reason"]
    assert expected and m["test/rate_corr_reason"] == expected
    assert any(line.split(None, 1) == ["test/rate_corr_reason", expected] for line in stdout.splitlines())
    assert m["test/id_f1"] is not None and "test/id_f1_reason" not in m
    assert m["test/timing_f1_10ms"] is not None and "test/timing_f1_10ms_reason" not in m


def test_train_says_why_a_null_binned_count_corr_is_undefined(tmp_path, capsys, shared_data):
    """Break test: with 0.4-s split blocks the test split of 3.5 s of the head-direction recording is
    one block that holds a single 0.1-s generated window, so the binned-count correlation of the
    test generation has fewer than 3 whole 0.1-s bins and is undefined; metrics.json held
    ``test/binned_count_corr_mean: null`` with no reason, though ``neuroformer evaluate`` on the same
    windows says why (``binned_count_corr_mean_reason``), as train already did for rate_corr. It now
    carries ``test/binned_count_corr_mean_reason`` in evaluate's words, printed with the metrics."""
    _, m, stdout = _train_one_step_on_busiest_units(tmp_path, capsys, shared_data, 3, 603.5,
                                                    "past_window: 0.1\nsplit_block_length: 0.4\n")
    n_bins = m["n_test_windows"]  # 0.1-s windows, touching ones merged: one whole 0.1-s bin each
    assert n_bins < 3 and m["test/binned_count_corr_mean"] is None
    expected = f"fewer than 3 whole bins of 0.1 s in the generated windows ({n_bins})"
    assert m["test/binned_count_corr_mean_reason"] == expected
    assert any(line.split(None, 1) == ["test/binned_count_corr_mean_reason", expected] for line in stdout.splitlines())


def test_resume_with_nothing_to_do_says_the_block_length_is_not_applied(builtin_ci2, capsys):
    """Break test: 'train --resume --ci-block-s 5' on a run that finished at its --max-steps has
    nothing to do, so nothing is scored: metrics.json kept its 2-s intervals while the command said
    only 'nothing to do', as if the 5 had been taken. It now warns that the length is not applied
    (the CLI's words and, from Python, ci_block_s=); the same length, or none given, says nothing."""
    from hf_neuroformer.simulation import default_recording
    from hf_neuroformer.training import TrainingConfig, train

    out, res = builtin_ci2
    assert res.returncode == 0, res.stderr[-3000:]
    with pytest.warns(UserWarning, match=r"^--ci-block-s 5 not applied: the resumed run has nothing to do.* blocks "
                                         r"of 2 s \(test/ci95_block_s\)"):
        code, stdout, _ = main_cli(capsys, "train", "--output-dir", out, "--max-steps", "2", "--resume",
                                   "--ci-block-s", "5")
    assert code == 0 and "resume: nothing to do" in stdout
    assert json.loads((out / "metrics.json").read_text())["test/ci95_block_s"] == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for flag in ([], ["--ci-block-s", "2"]):
            assert main_cli(capsys, "train", "--output-dir", out, "--max-steps", "2", "--resume", *flag)[0] == 0
    with pytest.warns(UserWarning, match=r"^ci_block_s=5 not applied"):
        m = train(default_recording(), out, training=TrainingConfig(max_steps=2, save_every=2), resume=True,
                  ci_block_s=5, progress=False)
    assert m["test/ci95_block_s"] == 2.0


def test_training_spikes_check_per_split(trained):
    """The model's record of its training spikes (split_spikes) against recordings of the same
    units: the same file re-read, with its units in another order, or cut to the test split is
    "same spikes" (the break test found false alarms for the last two); one test spike moved by
    1 ms is "other spikes" in the test split, with a warning; a wrong epoch covers no split."""
    import warnings

    from hf_neuroformer import SpikeRecording
    from hf_neuroformer.generation import check_recording_units, load_pretrained
    from hf_neuroformer.io import load_recording

    d, nwb, _ = trained
    _, tok, plan = load_pretrained(d / "model")
    rec = load_recording(nwb, epoch="wake")

    def check(r):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = check_recording_units(tok, r, model_dir=d / "model")
        return out, [str(w.message) for w in caught if "not the spikes" in str(w.message)]

    out, warned = check(rec)
    assert out["status"] == "same spikes" and sorted(out["splits_compared"]) == ["test", "train", "validation"]
    assert not warned
    reordered = rec.select_units(list(reversed(rec.unit_names)))
    assert reordered.unit_names != rec.unit_names
    assert check(reordered) == ({"status": "same spikes", "splits_compared": out["splits_compared"],
                                 "splits_differing": [], "n_spikes": {}}, [])
    seg = plan.segments["test"]
    cut = rec.restrict(float(seg[:, 0].min()), float(seg[:, 1].max()))
    out_cut, warned = check(cut)
    assert out_cut["status"] == "same spikes" and out_cut["splits_compared"] == ["test"] and not warned
    t = rec.spike_times.copy()
    k = int(np.searchsorted(t, seg[0, 0] + 1.0))  # a spike inside the first test segment
    t[k] += 0.001
    moved = SpikeRecording.from_unsorted(t, rec.unit_ids, unit_names=list(rec.unit_names),
                                         time_domain=rec.time_domain, session=rec.session)
    out_moved, warned = check(moved)
    assert out_moved["status"] == "other spikes" and out_moved["splits_differing"] == ["test"]
    assert len(warned) == 1 and "in its test split" in warned[0] and "pass the recording the model was trained on" in warned[0]
    assert "(same count, other times or units)" in warned[0]  # equal counts did read like a false alarm
    sleep = load_recording(nwb, epoch="sleep")
    out_sleep, warned = check(sleep)
    assert out_sleep["status"] == "not comparable" and not warned


@pytest.fixture(scope="module")
def gen_test(trained):
    """``(folder, A2929 path, file)``: ``neuroformer generate`` of the trained model without
    --split (so the test split) and at most 8 spikes a window, to be quick; shared, read-only."""
    from hf_neuroformer.cli import main

    d, nwb, _ = trained
    gen = d / "gen_test_8.nwb"
    assert main(["generate", "--model", str(d / "model"), "--data", str(nwb), "--epoch", "wake", "--output",
                 str(gen), "--max-spikes", "8"]) == 0
    return d, nwb, gen


def test_evaluate_notices_a_real_recording_other_than_the_generation_source(gen_test, tmp_path, capsys):
    """generate records which recorded spikes its windows came from; evaluate against a recording
    of the same units with other spikes warns and says so in its JSON, even without --model
    (the break test scored a re-simulated network's file silently)."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import load_recording, write_nwb
    from hf_neuroformer import SpikeRecording

    d, nwb, gen = gen_test
    assert main(["evaluate", "--real", str(nwb), "--epoch", "wake", "--generated", str(gen),
                 "--output", str(tmp_path / "same.json")]) == 0
    same = json.loads((tmp_path / "same.json").read_text())
    assert same["real_is_generation_source"] is True
    # what generated the file is on record and printed, and --model / --split must match it
    assert same["generation_settings"]["model"] == str((d / "model").resolve())
    assert same["generation_settings"]["split"] == "test" and same["generation_settings"]["mode"] == "teacher_forced"
    assert "test windows, teacher-forced past, sampled, by" in capsys.readouterr().out
    import shutil

    import torch

    from hf_neuroformer.generation import load_pretrained

    shutil.copytree(d / "model", tmp_path / "copy")  # the same weights elsewhere: accepted
    assert main(["evaluate", "--real", str(nwb), "--epoch", "wake", "--generated", str(gen),
                 "--model", str(tmp_path / "copy")]) == 0
    other, tok, _ = load_pretrained(d / "model")
    # the same weights saved in shards (push uploads such a folder as one model.safetensors, of other bytes
    # than the shards): accepted, where the files' digest called them other weights
    shutil.copytree(d / "model", tmp_path / "sharded")
    (tmp_path / "sharded" / "model.safetensors").unlink()
    other.save_pretrained(tmp_path / "sharded", max_shard_size="50KB")
    assert len(list((tmp_path / "sharded").glob("model-*-of-*.safetensors"))) > 1
    assert main(["evaluate", "--real", str(nwb), "--epoch", "wake", "--generated", str(gen),
                 "--model", str(tmp_path / "sharded")]) == 0
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    other.save_pretrained(tmp_path / "other")
    for f in ("vocab.json", "tokenizer_config.json", "splits.json", "metrics.json"):
        shutil.copy(d / "model" / f, tmp_path / "other" / f)
    capsys.readouterr()
    for extra, named in ((["--model", str(d / "model"), "--split", "validation"], "--split 'validation' vs 'test'"),
                         (["--model", str(tmp_path / "other")], "has other weights than")):
        assert main(["evaluate", "--real", str(nwb), "--epoch", "wake", "--generated", str(gen), *extra]) == 2
        err = capsys.readouterr().err
        assert "was generated by another model or split" in err and named in err, err
    rec = load_recording(nwb, epoch="wake")
    support = load_recording(gen).support
    t = rec.spike_times.copy()
    k = int(np.searchsorted(t, support[0, 0]))  # the first recorded spike inside the generated windows
    t[k] = (t[k] + min(t[k + 1], support[0, 1])) / 2
    moved = SpikeRecording.from_unsorted(t, rec.unit_ids, unit_names=list(rec.unit_names),
                                         time_domain=rec.time_domain, session=rec.session)
    write_nwb(moved, tmp_path / "moved.nwb")
    with pytest.warns(UserWarning, match="--real: inside the generated windows it holds other spikes"):
        assert main(["evaluate", "--real", str(tmp_path / "moved.nwb"), "--generated", str(gen),
                     "--output", str(tmp_path / "other.json")]) == 0
    assert json.loads((tmp_path / "other.json").read_text())["real_is_generation_source"] is False
    # --real forgotten: the built-in simulated recording was used; the error says so, not only "units differ"
    assert main(["evaluate", "--generated", str(gen)]) == 2
    err = capsys.readouterr().err
    assert "--real: not given, so the built-in simulated recording (16 units) was used" in err, err
    # ... and where the unit lists differ: with as many units as the built-in recording, it read
    # "the built-in simulated recording (16 units) was used, but gen.nwb has 16 units", as if they matched
    g = load_recording(gen)
    plus = SpikeRecording.from_unsorted(g.spike_times, g.unit_ids, unit_names=[*g.unit_names, "extra"],
                                        time_domain=g.time_domain, session=g.session, time_support=g.support)
    write_nwb(plus, tmp_path / "plus.nwb")
    assert main(["evaluate", "--generated", str(tmp_path / "plus.nwb")]) == 2
    err = capsys.readouterr().err
    assert ("(16 units) was used, but" in err and "1 generated unit is not in --real ('extra'); 1 unit of --real is "
            "not in --generated ('unit15')" in err), err


def test_generate_records_the_sampling_settings_it_used(trained, tmp_path):
    """The settings generate writes into the file (and evaluate copies into its JSON) are the ones
    sampled with: an unset --dt-top-k / --dt-temperature / --dt-top-p takes the unit-id head's value
    and an unset --max-spikes is max_window_length - 1; both were recorded as null, which reads as
    'no top-k on the dt head' and 'no cap'."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.generation import read_settings_scratch
    from hf_neuroformer.io import read_nwb_scratch

    d, nwb, _ = trained
    gen = tmp_path / "g.nwb"
    assert main(["generate", "--model", str(d / "model"), "--data", str(nwb), "--epoch", "wake", "--output",
                 str(gen), "--top-k", "3", "--temperature", "0.7", "--dt-top-p", "0.9"]) == 0
    s = read_settings_scratch(read_nwb_scratch(gen))
    cap = json.loads((d / "model" / "config.json").read_text())["max_window_length"] - 1
    assert (s["top_k"], s["temperature"], s["top_p"]) == (3, 0.7, 1.0)
    assert (s["dt_top_k"], s["dt_temperature"], s["dt_top_p"]) == (3, 0.7, 0.9)
    assert s["max_spikes"] == cap


def test_outputs_never_replace_the_model_files(gen_test, tmp_path, capsys):
    """evaluate --output / --figure, and embed's figure and the .json beside it, naming a file of
    the --model directory are refused even with --overwrite: 'evaluate --model M --output
    M/config.json --overwrite' replaced the model's config with the metrics, and the model then
    failed to load with a message about its weights. Without --model (the README's form) the
    model directory the --generated file records is guarded the same way: it was not, and the
    metrics went over that model's config.json. Other names in the folder stay allowed."""
    d, nwb, gen = gen_test  # generated by "generate --model M" without --split: the test split
    model = d / "model"
    before = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    ev = ("evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen, "--model", model, "--overwrite")
    code, _, err = main_cli(capsys, *ev, "--output", model / "config.json")
    assert code == 2 and "--output:" in err and "config.json of the --model directory" in err
    code, _, err = main_cli(capsys, *ev, "--output", tmp_path / "e.json", "--figure", model / "training_curves.png")
    assert code == 2 and "--figure:" in err and "training_curves.png of the --model directory" in err
    emb = ("embed", "--model", model, "--data", nwb, "--epoch", "wake", "--color-by", "ry", "--overwrite")
    code, _, err = main_cli(capsys, *emb, "--output", model / "config.png")
    assert code == 2 and "--output (.json beside it):" in err and "config.json of the --model directory" in err
    # without --model (the README's form) the --generated file records the model's directory
    ev_no_model = tuple(a for a in ev if a not in ("--model", model))
    code, _, err = main_cli(capsys, *ev_no_model, "--output", model / "config.json")
    assert code == 2 and "--output:" in err and "config.json of the model directory" in err
    assert str(model.resolve()) in err and "it generated" in err
    code, _, err = main_cli(capsys, *ev_no_model, "--output", model / "training_curves.json")  # its default figure
    assert code == 2 and "training_curves.png of the model directory" in err
    assert {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()} == before
    code, _, err = main_cli(capsys, *ev, "--output", model / "eval.json")  # another name in the folder: allowed
    assert code == 0, err[-3000:]
    assert json.loads((model / "eval.json").read_text())["n_units"] == 15
    for name in ("eval.json", "eval.png"):
        (model / name).unlink()


@pytest.fixture(scope="module")
def gen_validation(trained):
    """``(folder, A2929 path, file)``: ``neuroformer generate --split validation`` of the trained
    model (at most 8 spikes a window, to be quick)."""
    from hf_neuroformer.cli import main

    d, nwb, _ = trained
    gen = d / "gen_validation.nwb"
    assert main(["generate", "--model", str(d / "model"), "--data", str(nwb), "--epoch", "wake", "--output",
                 str(gen), "--split", "validation", "--max-spikes", "8"]) == 0
    return d, nwb, gen


def test_evaluate_scores_the_split_the_file_was_generated_from(gen_validation, capsys, tmp_path):
    """Without --split, evaluate --model scores the split recorded in the generated file and says
    so (it refused "--split 'test' vs 'validation'" until --split validation was passed); an
    explicit --split that disagrees is still refused."""
    d, nwb, gen = gen_validation
    base = ["evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen, "--model", d / "model"]
    code, out, err = main_cli(capsys, *base, "--output", tmp_path / "ev.json")
    assert code == 0, err[-3000:]
    assert f"--split not given: scoring the 'validation' split (the split {gen} was generated from)" in out, out
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["bits_per_spike_split"] == "validation"
    code, _, err = main_cli(capsys, *base, "--split", "test")
    assert code == 2 and "--split 'test' vs 'validation'" in err, err


@pytest.mark.parametrize("flag, value, expected", [
    ("--bin-size", "100", "--bin-size: 100 s leaves 0 whole bins in the generated windows"),
    ("--bin-size", "1e6", "and the binned-count correlation, Fano factor and pairwise correlations need at least 3"),
])
def test_evaluate_refuses_a_bin_longer_than_the_generated_windows(gen_validation, capsys, tmp_path, flag, value,
                                                                   expected):
    # a bin longer than the scored span gave NaN metrics with n_bins 0 (connectivity refused one)
    d, nwb, gen = gen_validation
    code, _, err = main_cli(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen,
                            "--output", tmp_path / "ev.json", flag, value)
    assert code == 2, err[-3000:]
    assert expected in err and "expected a bin of at most" in err, err
    assert not (tmp_path / "ev.json").exists()


def test_an_output_linked_to_a_model_file_is_refused(gen_test, tmp_path, capsys):
    """The model-file guard compared only the name and folder given: 'evaluate --output
    elsewhere/eval.json --overwrite', where eval.json is a link to the model's config.json,
    passed it, and the metrics were written through the link over the config (outputs are
    written through links). The guard now also looks at the link's target."""
    d, nwb, gen = gen_test
    model = d / "model"
    before = (model / "config.json").read_bytes()
    link = tmp_path / "eval.json"
    link.symlink_to(model / "config.json")
    ev = ("evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen, "--model", model, "--overwrite")
    code, _, err = main_cli(capsys, *ev, "--output", link)
    assert code == 2 and "--output:" in err and "a link to config.json of the --model directory" in err, err
    assert (model / "config.json").read_bytes() == before and link.is_symlink()
    # a link to a file of another folder stays allowed
    (tmp_path / "other.json").write_text("{}")
    (tmp_path / "ok.json").symlink_to(tmp_path / "other.json")
    from hf_neuroformer.cli import _check_not_a_model_file
    _check_not_a_model_file(tmp_path / "ok.json", "--output", model)
    # another case of a model file's name: the same file on macOS / Windows (the check was case-sensitive)
    with pytest.raises(ValueError, match=r"--output: .*Config\.json' is Config\.json \(the name of config\.json on a "
                                         r"case-insensitive file system\) of the --model directory"):
        _check_not_a_model_file(model / "Config.json", "--output", model)
    with pytest.raises(ValueError, match=r"MODEL\.SAFETENSORS \(the name of model\.safetensors"):
        _check_not_a_model_file(model / "MODEL.SAFETENSORS", "--figure", model)
    _check_not_a_model_file(model / "Eval.json", "--output", model)  # not a model file in any case


def test_prepare_says_when_a_split_has_fewer_windows_than_num_shards(tmp_path, capsys):
    """`prepare --num-shards 200` on the built-in recording (validation and test: 160 windows each)
    wrote one shard per window there without a word; the summary now says the request was capped."""
    code, stdout, err = main_cli(capsys, "prepare", "--output", tmp_path / "prep", "--num-shards", "200")
    assert code == 0, err[-3000:]
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    capped = [s for s, e in manifest["splits"].items() if len(e["shards"]) < 200]
    assert capped == ["validation", "test"] and len(manifest["splits"]["train"]["shards"]) == 200
    assert ("note: --num-shards 200: validation, test have fewer windows than that, so one shard per window"
            in stdout), stdout


def test_prepare_prints_one_shard_in_the_singular(tmp_path, capsys, shared_data):
    """Break test: ``prepare --num-shards 1`` printed "1 shards" on each split's line (and would print
    "1 windows", "1 spikes"): every count of the line now takes its noun in the singular at 1. One unit of
    A2929 over 60 s of its wake epoch, written to NWB."""
    from hf_neuroformer.io import load_recording, write_nwb
    from hf_neuroformer.recording import count_noun

    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    start = float(rec.time_domain[0])
    nwb = write_nwb(rec.select_units([0]).restrict(start, start + 60.0), tmp_path / "one_unit.nwb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty behaviour series, 3 split blocks: said on stderr, not tested here
        code, stdout, err = main_cli(capsys, "prepare", "--data", nwb, "--output", tmp_path / "prep",
                                     "--num-shards", "1")
    assert code == 0, err[-3000:]
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    for split, e in manifest["splits"].items():
        assert len(e["shards"]) == 1
        line = next(ln for ln in stdout.splitlines() if ln.startswith(f"  {split} "))
        assert line.split() == [split, *count_noun(e["n_windows"], "window").split(),
                                *count_noun(e["n_spikes"], "spike").split(), "1", "shard",
                                *(f"({e['n_truncated_spikes']} truncated in "
                                 f"{count_noun(e['n_truncated_windows'], 'window')}, "
                                 f"{count_noun(e['n_truncated_past_spikes'], 'past-window spike')} left out of "
                                 f"{count_noun(e['n_truncated_past_windows'], 'window')}"
                                 + (f"; {e['n_windows_without_spikes']} without a spike, kept"
                                    if e["n_windows_without_spikes"] else "") + ")").split()], line
    assert " 1 shards" not in stdout, stdout


def test_simulate_prints_one_directed_edge_in_the_singular(tmp_path, capsys):
    """Break test: a hub network of 2 units (one hub, one target; no edge from a target back onto its hub,
    so the hub edge is the only one) printed "1 directed edges"; now "1 directed edge"."""
    from hf_neuroformer.recording import count_noun
    from hf_neuroformer.simulation import read_network

    nwb = tmp_path / "two.nwb"
    code, stdout, err = main_cli(capsys, "simulate", "--kind", "hub-glm", "--units", "2", "--hubs", "1",
                                 "--targets-per-hub", "1", "--duration", "2", "--output", nwb)
    assert code == 0, err[-3000:]
    net = read_network(nwb)
    w = net.weights[~np.eye(2, dtype=bool)]
    assert int((w != 0).sum()) == 1
    assert (f"[neuroformer] simulated hub-glm: 2 units, {count_noun(net.recording.n_spikes, 'spike')} in 2 s "
            in stdout), stdout
    assert f"Hz mean), 1 directed edge ({int((w > 0).sum())} excitatory, {int((w < 0).sum())} inhibitory;" in stdout, \
        stdout


def test_generate_greedy_and_num_samples(trained, tmp_path, capsys):
    """generate_spikes' greedy decoding and num_samples had no flags: --greedy gives the same spikes
    whatever the seed, recorded in the file; --num-samples 2 writes one file per sample
    (<stem>-sample<r>.nwb), each recording which sample it is; both together are refused."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.generation import read_settings_scratch
    from hf_neuroformer.io import read_nwb, read_nwb_scratch

    d, nwb, _ = trained
    common = ["generate", "--model", str(d / "model"), "--data", str(nwb), "--epoch", "wake", "--max-spikes", "8"]
    greedy = []
    for seed in ("0", "5"):
        out = tmp_path / f"greedy{seed}.nwb"
        assert main(common + ["--output", str(out), "--greedy", "--seed", seed]) == 0, capsys.readouterr().err
        greedy.append(read_nwb(out))
        s = read_settings_scratch(read_nwb_scratch(out))
        assert s["greedy"] is True and s["num_samples"] == 1 and "sample" not in s
    assert greedy[0].n_spikes > 0 and np.array_equal(greedy[0].spike_times, greedy[1].spike_times)
    assert np.array_equal(greedy[0].unit_ids, greedy[1].unit_ids)
    assert "greedy decoding" in capsys.readouterr().out

    out = tmp_path / "g.nwb"
    assert main(common + ["--output", str(out), "--num-samples", "2"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert not out.exists()
    samples = []
    for r in range(2):
        path = tmp_path / f"g-sample{r}.nwb"
        assert f"sample {r} of 2" in printed and str(path) in printed, printed
        samples.append(read_nwb(path))
        s = read_settings_scratch(read_nwb_scratch(path))
        assert (s["sample"], s["num_samples"], s["greedy"]) == (r, 2, False)
    assert not (samples[0].n_spikes == samples[1].n_spikes
                and np.array_equal(samples[0].spike_times, samples[1].spike_times))

    assert main(common + ["--output", str(tmp_path / "x.nwb"), "--greedy", "--num-samples", "2"]) == 2
    err = capsys.readouterr().err
    assert "--num-samples: greedy decoding (--greedy) gives the same spikes in every sample" in err, err
    assert not list(tmp_path.glob("x*.nwb"))
