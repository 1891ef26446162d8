"""`neuroformer evaluate` in process, on a tiny untrained model (fast): the JSON keeps the
fidelity counts and the bits-per-spike counts apart, and bad options name the flag's field."""

import json
import re

import numpy as np
import pytest

import hf_neuroformer as nf
from hf_neuroformer import cli
from hf_neuroformer.io import read_npz, write_npz, write_nwb
from hf_neuroformer.windows import SplitPlan, plan_splits, window_starts_for_split

from tiny_configs import untrained_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_eval")
    rec = nf.simulate_coupled_network(n_units=4, duration=60.0, seed=5).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.02, max_window_length=16,
                               max_past_length=32, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0)
    tok, model = untrained_model(rec, cfg)
    plan = plan_splits(rec, cfg)
    model.save_pretrained(d / "model")
    tok.save_pretrained(d / "model")
    (d / "model" / "splits.json").write_text(json.dumps(plan.to_dict()))
    write_npz(rec, d / "real.npz")
    starts, _ = window_starts_for_split(plan, "test", cfg)
    gen = nf.generate_spikes(model, tok, rec, starts[:20], seed=0, progress=False)
    write_nwb(gen, d / "gen.nwb")
    n_train, _ = window_starts_for_split(plan, "train", cfg)
    return d, len(n_train)


def test_bits_per_spike_counts_do_not_overwrite_fidelity_counts(tiny, capsys):
    d, n_train = tiny
    out = d / "eval.json"
    rc = cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"),
                   "--output", str(out), "--model", str(d / "model"), "--split", "train", "--min-isis", "2"])
    assert rc == 0
    printed = capsys.readouterr().out
    ev = json.loads(out.read_text())
    # both nulls, under their own names (not prefixed into bits_per_spike_bits_per_spike_...), each
    # printed with the null it uses
    assert not [k for k in ev if k.startswith(("bits_per_spike_bits", "bits_per_spike_null"))]
    scored = (ev["model_log_likelihood_nats"] - ev["null_scored_rates_log_likelihood_nats"]) / (
        ev["bits_per_spike_n_spikes"] * np.log(2))
    assert ev["bits_per_spike_scored_rates_null"] == pytest.approx(scored)
    assert "train-split rates" in printed and "rates in these train windows (nlb_tools' null)" in printed
    # which way is better is said once above the two figures (0 is the null's own figure)
    assert "(higher is better; 0: no better than the null, below 0: worse)" in printed
    assert f"{ev['bits_per_spike_scored_rates_null']:.4f}" in printed
    # the generated file (written here without the grid) gets the ISI KS floor's grid from --model
    assert ev["isi_ks_floor_source"] == "--model's config" and ev["isi_ks_floor_dt_resolution_s"] == 0.02
    assert ev["isi_ks_floor_reason"] is None and "isi_ks_floor_mean" in printed and "(0 = same)" not in printed
    # this model directory was written without train() (no metrics.json): nothing to compare with, said so
    assert ev["model_training_spikes_check"]["status"] == "not recorded"
    # fidelity: the 20 generated windows; bits per spike: the model's train windows
    assert ev["n_windows"] == 20
    assert ev["bits_per_spike_n_windows"] == n_train != 20
    assert ev["bits_per_spike_split"] == "train"
    assert ev["bits_per_spike_n_spikes"] > 0 and "n_spikes" not in ev
    assert np.isfinite(ev["bits_per_spike"])
    # 95 % block-bootstrap intervals beside both figures, in the JSON and printed, with the blocks once
    n_blocks = ev["bits_per_spike_ci95_n_blocks"]
    assert n_blocks >= 5 and "10 s of window starts" in ev["bits_per_spike_ci95_blocks"]
    for key in ("bits_per_spike", "bits_per_spike_scored_rates_null"):
        lo, hi = ev[f"{key}_ci95"]
        assert lo < ev[key] < hi
        assert f"{ev[key]:>8.4f}" in printed and f"95% CI [{lo:.4f}, {hi:.4f}]" in printed
    assert f"block bootstrap over {n_blocks} blocks" in printed


def test_bad_psth_bin_size_names_its_own_field(tiny, capsys):
    d, _ = tiny
    rc = cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"),
                   "--psth-bin-size", "-1"])
    assert rc == 2
    assert "--psth-bin-size: " in capsys.readouterr().err


def test_psth_bin_size_without_trials_says_it_has_no_effect(tiny, capsys):
    """The recording has no trials: --psth-bin-size was taken and changed nothing, without a word."""
    d, _ = tiny
    args = ["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb")]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(args + ["--output", str(d / "no_flag.json")]) == 0
    assert not [w for w in caught if "has no effect" in str(w.message)]
    with pytest.warns(UserWarning, match=r"--psth-bin-size 0.05 s has no effect: no trial of the real recording"):
        assert cli.main(args + ["--psth-bin-size", "0.05", "--output", str(d / "psth_no_trials.json")]) == 0


def test_psth_bin_size_that_leaves_under_three_bins_in_the_trials_is_refused(tiny, capsys):
    """Trials as long as one generated window (0.1 s) and --psth-bin-size 0.06 s: one whole bin, and the
    PSTH correlation needs three (over two it is +1 or -1). A chosen bin is refused with the longest that fits, which is then
    scored."""
    from dataclasses import replace

    from hf_neuroformer.io import load_recording, read_nwb

    d, _ = tiny
    gen = read_nwb(d / "gen.nwb")
    real = load_recording(d / "real.npz")
    write_nwb(replace(real, trials=gen.support[:5].copy()), d / "real_trials.nwb")  # .npz holds no trials
    args = ["evaluate", "--real", str(d / "real_trials.nwb"), "--generated", str(d / "gen.nwb")]
    assert cli.main(args + ["--psth-bin-size", "0.06", "--output", str(d / "psth_refused.json")]) == 2
    err = capsys.readouterr().err
    assert "--psth-bin-size: 0.06 s leaves 1 whole bin in the covered trial length" in err, err
    assert ", 5 trials), and the PSTH correlation needs at least 3 (over 2 it is +1 or -1" in err, err
    suggested = err.split("expected a bin of at most ")[1].split(" s")[0]
    assert float(suggested) <= 0.1 / 3, err
    assert not (d / "psth_refused.json").exists()
    # two bins are refused too: each unit's PSTH correlation over 2 bins was +1 or -1, whatever the PSTHs
    assert cli.main(args + ["--psth-bin-size", "0.05", "--output", str(d / "psth_refused.json")]) == 2
    assert "leaves 2 whole bins in the covered" in capsys.readouterr().err
    # the suggested bin fits: three bins per trial, scored
    assert cli.main(args + ["--psth-bin-size", suggested, "--output", str(d / "psth_fits.json")]) == 0
    metrics = json.loads((d / "psth_fits.json").read_text())
    assert metrics["psth_n_bins"] == 3, metrics
    assert metrics["psth_n_trials_used"] == 5 and metrics["psth_corr_mean"] is not None, metrics


def test_trials_too_short_for_the_default_psth_bin_say_which_bin_fits(tiny, capsys):
    """25 ms trials hold 2 bins of the default 10 ms: psth_corr was NaN with 'the covered trial length
    (0.025 s) holds fewer than 3 bins of 0.01 s' and no word of the --psth-bin-size that fits (a chosen
    one that does not fit is refused naming it)."""
    from dataclasses import replace

    from hf_neuroformer.io import load_recording, read_nwb

    d, _ = tiny
    starts = read_nwb(d / "gen.nwb").support[:5, 0]
    real = load_recording(d / "real.npz")
    write_nwb(replace(real, trials=np.stack([starts, starts + 0.025], 1)), d / "real_short_trials.nwb")
    args = ["evaluate", "--real", str(d / "real_short_trials.nwb"), "--generated", str(d / "gen.nwb")]
    assert cli.main(args + ["--output", str(d / "short_default.json")]) == 0
    printed = capsys.readouterr().out
    assert "holds fewer than 3 bins of 0.01 s; pass a --psth-bin-size of at most " in printed, printed
    suggested = printed.split("pass a --psth-bin-size of at most ")[1].split(" s")[0]
    assert cli.main(args + ["--psth-bin-size", suggested, "--output", str(d / "short_fits.json")]) == 0
    metrics = json.loads((d / "short_fits.json").read_text())
    assert metrics["psth_n_bins"] == 3 and metrics["psth_n_trials_used"] == 5
    # the bins fit; a NaN here (this untrained model's few spikes in 25 ms) has its own reason, not the bins'
    assert (metrics["psth_reason"] is None) == (metrics["psth_corr_mean"] is not None), metrics["psth_reason"]
    assert "fewer than 3 bins" not in (metrics["psth_reason"] or "")


def test_trials_the_windows_cover_in_part_are_scored_with_min_trial_coverage(tiny, capsys):
    """Generation tiles a trial with whole windows, so it may cover less of each trial than the PSTH's
    0.95: psth_corr was NaN ('none of the 1 trials is covered') and evaluate had no way to lower it."""
    from dataclasses import replace

    from hf_neuroformer.io import load_recording, read_nwb
    from hf_neuroformer.metrics import support_segments

    d, _ = tiny
    end = support_segments(read_nwb(d / "gen.nwb").support)[0, 1]
    real = load_recording(d / "real.npz")
    # one 0.5 s trial whose first 0.4 s the generated windows cover (0.8 of it)
    write_nwb(replace(real, trials=np.array([[end - 0.4, end + 0.1]])), d / "real_partial_trial.nwb")
    args = ["evaluate", "--real", str(d / "real_partial_trial.nwb"), "--generated", str(d / "gen.nwb")]
    assert cli.main(args + ["--output", str(d / "partial_default.json")]) == 0
    printed = capsys.readouterr().out
    assert "a --min-trial-coverage of 0.8 uses it)" in printed, printed
    assert json.loads((d / "partial_default.json").read_text())["psth_n_trials_used"] == 0
    # a --psth-bin-size that has no effect says why (it said no trial lies inside the windows: this one does, in part)
    with pytest.warns(UserWarning, match=r"--psth-bin-size 0.05 s has no effect: no trial of the real recording is "
                                         r"used, .*a --min-trial-coverage of 0.8 uses it\)"):
        assert cli.main(args + ["--psth-bin-size", "0.05", "--output", str(d / "partial_bin.json")]) == 0
    assert cli.main(args + ["--min-trial-coverage", "0.8", "--output", str(d / "partial_08.json")]) == 0
    metrics = json.loads((d / "partial_08.json").read_text())
    assert metrics["psth_n_trials_used"] == 1 and metrics["psth_reason"] is None, metrics
    assert metrics["psth_duration_s"] == pytest.approx(0.4) and metrics["psth_n_bins"] == 40
    assert "PSTH over 1 trials" in capsys.readouterr().out  # the figure uses the same trials


def test_isi_ks_floor_without_a_grid_says_so(tiny, capsys):
    """A generated file that does not record its grid, and no --model: the floor is not guessed."""
    d, _ = tiny
    out = d / "eval_nogrid.json"
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"),
                     "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(out.read_text())
    assert ev["isi_ks_floor_mean"] is None and ev["isi_ks_floor_source"] is None
    assert "--model" in ev["isi_ks_floor_reason"] and "isi_ks_floor_mean is NaN" in printed


def test_default_timing_tolerances_below_half_the_dt_bin_are_said_to_be_the_default(tiny, capsys):
    """Break test: with 20 ms dt bins the default 5 ms tolerance is out of reach, and evaluate warned
    '--timing-tolerances: 0.005 s is less than half the generator's dt bin ...' to a user who never
    passed --timing-tolerances. The warning now says the tolerances are the default; one passed is
    named as before."""
    d, _ = tiny
    base = ["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"), "--model", str(d / "model"),
            "--min-isis", "2"]
    with pytest.warns(UserWarning, match=r"^--timing-tolerances \(not given: the default 0\.005,0\.01,0\.025 s\): "
                                         r"0\.005 s is less than half the generator's dt bin \(0\.02 s"):
        assert cli.main(base) == 0
    with pytest.warns(UserWarning, match=r"^--timing-tolerances: 0\.005 s is less than half the generator's dt bin"):
        assert cli.main(base + ["--timing-tolerances", "0.005,0.01"]) == 0
    capsys.readouterr()


def test_isi_ks_floor_with_no_unit_to_score_says_why(tiny, capsys):
    """The floor was computed but every unit had too few ISIs: NaN with a reason, not a NaN
    printed as if the floor existed (break test)."""
    d, _ = tiny
    out = d / "eval_fewisis.json"
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"),
                     "--output", str(out), "--model", str(d / "model"), "--min-isis", "100000"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(out.read_text())
    assert ev["isi_ks_floor_mean"] is None and "no unit has >= 100000 ISIs" in ev["isi_ks_floor_reason"]
    assert "isi_ks_floor_mean is NaN: no unit has" in printed


def test_default_bin_size_longer_than_the_windows_is_noted(tiny, capsys):
    """One generated 0.1 s window holds 1 whole bin of the default --bin-size (0.1 s), and the
    binned metrics need 2: they came out NaN (n_bins 1) without a word. The default is not refused
    (the other metrics are still useful), but a note says which metrics and why; the JSON is as before."""
    d, _ = tiny
    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.io import load_recording

    model, tok, plan = load_pretrained(d / "model")
    rec = load_recording(d / "real.npz")
    starts, _ = window_starts_for_split(plan, "test", model.config)
    write_nwb(nf.generate_spikes(model, tok, rec, starts[:1], seed=0, progress=False), d / "gen_one.nwb")
    out = d / "eval_one.json"
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen_one.nwb"),
                     "--output", str(out), "--figure", str(d / "eval_one.png")]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert metrics["n_bins"] == 1 and metrics["binned_count_corr_mean"] is None and metrics["pairwise_corr_r"] is None
    notes = [line for line in printed.splitlines() if line.strip().startswith("note: ")]
    assert len(notes) == 1, printed
    assert "binned_count_corr_mean" in notes[0] and "pairwise_corr_r" in notes[0], notes
    assert "the default --bin-size 0.1 s leaves 1 whole bin in the generated windows" in notes[0], notes
    # 3 bins (a correlation over 2 is +1 or -1); the window is 25.6..25.7 s in float
    assert "; pass a --bin-size of at most 0.0333" in notes[0], notes
    # windows that hold the bins: no note
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb")]) == 0
    assert "note: " not in capsys.readouterr().out


def test_generate_records_the_batch_size_the_seed_depends_on(tiny, capsys):
    """The same --seed with another --batch-size gives other spikes (the rows of a batch share the
    sampler's draws), so the file's record of how it was made must hold the batch size: two files
    with different spikes carried the same settings, and neither could be reproduced from them."""
    from hf_neuroformer.generation import read_settings_scratch
    from hf_neuroformer.io import read_nwb, read_nwb_scratch

    d, _ = tiny
    files = {}
    for b in (256, 3):
        out = d / f"gen_batch{b}.nwb"
        assert cli.main(["generate", "--model", str(d / "model"), "--data", str(d / "real.npz"), "--output", str(out),
                         "--seed", "7", "--batch-size", str(b)]) == 0
        files[b] = (read_nwb(out), read_settings_scratch(read_nwb_scratch(out)))
    capsys.readouterr()
    (big, s_big), (small, s_small) = files[256], files[3]
    assert not (big.n_spikes == small.n_spikes and np.array_equal(big.spike_times, small.spike_times))
    assert (s_big["batch_size"], s_small["batch_size"]) == (256, 3)
    assert s_big["seed"] == s_small["seed"] == 7


def test_real_recording_of_other_units_is_refused_naming_the_flag(tiny, capsys, tmp_path):
    """--real holding other units than --generated (another recording, or the same names in another
    order) is refused naming --real and where the lists differ; it failed in compare_recordings as
    'generated.unit_names: expected the real recording's 5 units (['unit0', 'unit1', 'unit2']...),
    got 4 (['unit0', 'unit1', 'unit2']...)', naming no flag and showing the same names on both sides."""
    from hf_neuroformer import SpikeRecording
    from hf_neuroformer.io import load_recording

    d, _ = tiny
    rec = load_recording(d / "real.npz")
    other = nf.simulate_coupled_network(n_units=5, duration=60.0, seed=5).recording
    order = np.array([1, 0, 2, 3])  # unit k of the new file is unit order[k] of the old one
    inverse = np.argsort(order)
    swapped = SpikeRecording.from_unsorted(rec.spike_times, inverse[rec.unit_ids],
                                           unit_names=[rec.unit_names[k] for k in order],
                                           time_domain=rec.time_domain, session=rec.session)
    cases = ((other, "5 units (session", "1 unit of --real is not in --generated ('unit4')"),
             (swapped, "4 units", f"the same names in another order, unit 0 is {rec.unit_names[1]!r} in --real"),
             # another session: named first ('1 generated units are not in --real' was all it said of A2929)
             (SpikeRecording.from_unsorted(other.spike_times, other.unit_ids, unit_names=list(other.unit_names),
                                           time_domain=other.time_domain, session="another-session"),
              "1 unit of --real is not in --generated ('unit4')"))
    for k, (real, *expected) in enumerate(cases):
        write_npz(real, tmp_path / f"real{k}.npz")
        rc = cli.main(["evaluate", "--real", str(tmp_path / f"real{k}.npz"), "--generated", str(d / "gen.nwb")])
        err = capsys.readouterr().err
        assert rc == 2
        assert "its units are not those of --generated" in err, err
        assert all(e in err for e in expected), err
        if real.session != rec.session:  # the sessions first, then the units
            assert (f"error: --real: a recording of session {real.session!r}, but --generated {d / 'gen.nwb'} was "
                    f"generated from session {rec.session!r}; its units" in err), err


def test_bits_per_spike_scoring_shows_progress(tiny, capsys):
    """evaluate --model scores every window of the split with the model (A2929's 1780 test windows:
    5-16 s on 2 CPU cores, a full-size model longer) and showed nothing meanwhile; a bar now runs
    over the windows, as generate's does."""
    d, n_train = tiny
    rc = cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"),
                   "--model", str(d / "model"), "--split", "train", "--min-isis", "2"])
    assert rc == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "scoring windows (log-likelihood)" in err, err
    assert f"{n_train}/{n_train}" in err, err


def test_figure_uses_the_bins_the_metrics_used(tiny, capsys):
    """--psth-bin-size / --bin-size set the bins of psth_corr / binned_count_corr but not the figure's,
    which drew 10 ms PSTHs and 0.1 s rates whatever they said: its curves were not the ones scored.
    A chosen bin now reaches the figure (the printed line names the figure's bins); the defaults stay."""
    from dataclasses import replace

    from hf_neuroformer.io import load_recording, read_nwb

    d, _ = tiny
    gen = read_nwb(d / "gen.nwb")
    write_nwb(replace(load_recording(d / "real.npz"), trials=gen.support[:5].copy()), d / "real_trials_fig.nwb")
    runs = ((["--real", str(d / "real.npz"), "--bin-size", "0.5"], "binned rate, 500 ms bins"),
            (["--real", str(d / "real.npz")], "binned rate, 100 ms bins"),
            (["--real", str(d / "real_trials_fig.nwb"), "--psth-bin-size", "0.03"], "PSTH over 5 trials, 30 ms bins"),
            (["--real", str(d / "real_trials_fig.nwb")], "PSTH over 5 trials, 10 ms bins"))
    for k, (extra, expected) in enumerate(runs):
        assert cli.main(["evaluate", "--generated", str(d / "gen.nwb"), "--figure", str(d / f"fig{k}.png"),
                         *extra]) == 0
        out = capsys.readouterr().out
        assert f"wrote {d / f'fig{k}.png'} (rasters and" in out and expected in out, out


def test_no_figures_writes_the_metrics_json_alone(tiny, capsys, tmp_path):
    """`evaluate --output eval.json` always wrote eval.png beside it (the default figure), and nothing, in the
    command or in Python, could leave it out. `--no-figures` leaves out the figure and nothing else (the same
    files but the PNG, the same metrics); with --figure, which asks for one, it is refused before any work."""
    d, _ = tiny
    argv = ["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"), "--min-isis", "2"]
    written, said = {}, {}
    for name, extra in (("with", []), ("without", ["--no-figures"])):
        folder = tmp_path / name
        assert cli.main([*argv, "--output", str(folder / "eval.json"), *extra]) == 0
        written[name], said[name] = sorted(p.name for p in folder.iterdir()), capsys.readouterr().out
    assert written["with"] == ["eval.json", "eval.png"], written
    assert written["without"] == ["eval.json"], written
    assert f"wrote {tmp_path / 'with' / 'eval.png'}" in said["with"] and ".png" not in said["without"], said
    assert json.loads((tmp_path / "without" / "eval.json").read_text()) == json.loads(
        (tmp_path / "with" / "eval.json").read_text())
    assert cli.main(["evaluate", "--real", str(tmp_path / "never_read.npz"), "--generated", str(d / "gen.nwb"),
                     "--output", str(tmp_path / "e.json"), "--figure", str(tmp_path / "e.png"), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "evaluate: error: --no-figures: given with --figure" in err, err
    assert not list(tmp_path.glob("e.*"))


def test_no_figures_over_an_earlier_evaluation_names_its_figure_left_there(tiny, capsys, tmp_path):
    """Break test: `evaluate --output eval.json --overwrite --no-figures` after an evaluation that drew its figure
    replaced eval.json and left the earlier eval.png beside it, a figure of other metrics, without a word. It is
    left as it is (the command never names it) and now named in a warning; a first run with --no-figures says
    nothing."""
    import warnings

    d, _ = tiny
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"), "--min-isis", "2",
            "--output", str(out)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="--no-figures")
        assert cli.main([*argv, "--no-figures"]) == 0
    assert cli.main([*argv, "--overwrite"]) == 0
    drawn = (tmp_path / "eval.png").read_bytes()
    capsys.readouterr()
    with pytest.warns(UserWarning, match=r"^--no-figures: '.*eval\.png' \(--output's figure name\) is there from "
                                         r"before and is left as it is: it is not a figure of this evaluation"):
        assert cli.main([*argv, "--overwrite", "--no-figures"]) == 0
    assert (tmp_path / "eval.png").read_bytes() == drawn and ".png" not in capsys.readouterr().out


def test_generate_says_1_window_not_1_windows(tiny, tmp_path, capsys):
    """generate printed "of the 1 test windows (1 windows)", "in 1 test windows" and "1 windows cut by the
    spike cap": a count of 1 now
    takes the singular (recording.count_noun), here on a split plan whose test split is one window."""
    import shutil

    d, _ = tiny
    model = shutil.copytree(d / "model", tmp_path / "model")
    plan = json.loads((model / "splits.json").read_text())
    plan["segments"]["test"] = [[25.3, 25.75]]  # one 0.1-s window after its 0.3-s past window
    (model / "splits.json").write_text(json.dumps(plan))
    assert cli.main(["generate", "--model", str(model), "--data", str(d / "real.npz"), "--output",
                     str(tmp_path / "gen.nwb"), "--max-spikes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "generating 1 sample of the 1 test window (1 window)" in printed and " in 1 test window (" in printed, printed
    n_capped = int(re.search(r"; (\d+) windows? cut by the spike cap\)", printed)[1])
    assert f"; {n_capped} window{'' if n_capped == 1 else 's'} cut by the spike cap)" in printed, printed


def test_evaluate_says_how_many_generated_windows_were_cut_at_the_spike_cap(tiny, capsys):
    """Windows that --max-spikes cuts (the model drew a spike past it, not EOS) have counts and rates
    biased low; generate printed how many, but the file did not record it, and evaluate (run on the file
    later) scored them without a word. The count is now in the file, the JSON and a note. Since 9f2e1d5
    a window that reaches the cap and ends there is not counted: both lines said 'reached the spike cap'
    for the count, which such windows also did; they now say 'cut by the spike cap'."""
    from hf_neuroformer.io import read_nwb

    d, _ = tiny
    gen = d / "gen_capped.nwb"
    assert cli.main(["generate", "--model", str(d / "model"), "--data", str(d / "real.npz"), "--output", str(gen),
                     "--max-spikes", "1"]) == 0
    printed = capsys.readouterr().out
    n_capped = int(re.search(r"; (\d+) windows? cut by the spike cap\)", printed)[1])  # "1 window", "2 windows"
    assert n_capped > 0, printed
    n_windows = len(read_nwb(gen).support)
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(gen), "--output",
                     str(d / "capped.json")]) == 0
    out = capsys.readouterr().out
    assert json.loads((d / "capped.json").read_text())["n_capped_generated_windows"] == n_capped
    was = "was" if n_capped == 1 else "were"
    assert f"note: {n_capped} of the {n_windows} generated windows {was} cut by the spike cap (max_spikes 1)" in out, out
    # a file that does not record it (written by write_nwb, not by generate): null, no note
    assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"), "--output",
                     str(d / "uncapped.json")]) == 0
    assert json.loads((d / "uncapped.json").read_text())["n_capped_generated_windows"] is None
    assert "spike cap" not in capsys.readouterr().out


def test_a_model_folder_with_another_runs_tokenizer_is_refused_naming_model(tiny, capsys, tmp_path):
    """A --model folder whose vocab.json comes from another run (files of two runs copied together)
    was refused as a wrong --data ('this recording's units are not the ones the model ... was
    trained on'), sending the user to the recording; load_pretrained now checks the tokenizer
    against config.json and names --model."""
    import shutil

    d, _ = tiny
    mixed = tmp_path / "mixed"
    shutil.copytree(d / "model", mixed)
    vocab = json.loads((mixed / "vocab.json").read_text())
    last = max(vocab, key=vocab.get)
    (mixed / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k != last}))
    rc = cli.main(["generate", "--model", str(mixed), "--data", str(d / "real.npz"), "--output", str(tmp_path / "g.nwb")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"error: --model: {str(mixed)!r}: its tokenizer files (vocab.json, tokenizer_config.json) do not belong" in err
    assert "len(tokenizer) = " in err and "--data" not in err, err
    assert not (tmp_path / "g.nwb").exists()


def test_the_same_file_as_generated_and_real_is_warned_about(tiny, tmp_path):
    """evaluate --generated A --real A scored a recording against itself (every correlation 1, every
    KS distance 0) without a word."""
    from hf_neuroformer.io import load_recording

    d, _ = tiny
    write_nwb(load_recording(d / "real.npz"), tmp_path / "real.nwb")
    with pytest.warns(UserWarning, match=r"--generated and --real are the same file .*compares the recording with "
                                         r"itself"):
        assert cli.main(["evaluate", "--generated", str(tmp_path / "real.nwb"), "--real", str(tmp_path / "real.nwb")]) == 0


def test_evaluate_model_ci_block_s_sets_the_bits_per_spike_blocks(tiny, capsys, tmp_path):
    """evaluate --model --ci-block-s S: the bits-per-spike intervals resample S-s blocks of the scored
    windows, and the JSON records S. The test split of the 60-s recording is too short for five
    blocks of the default 10 s: no interval, and the reason names --ci-block-s (the command's words)."""
    d, _ = tiny
    base = ["evaluate", "--real", str(d / "real.npz"), "--generated", str(d / "gen.nwb"), "--model", str(d / "model"),
            "--split", "test", "--min-isis", "2"]
    assert cli.main(base + ["--output", str(tmp_path / "default.json")]) == 0
    printed = capsys.readouterr().out
    ev = json.loads((tmp_path / "default.json").read_text())
    assert ev["bits_per_spike_ci95"] is None and ev["bits_per_spike_ci95_block_s"] == 10.0
    assert ev["bits_per_spike_ci95_n_blocks"] < 5
    reason = ev["bits_per_spike_ci95_reason"]
    assert "shorter blocks give an interval: e.g. --ci-block-s " in reason and "ci_block_s=" not in reason
    assert reason in printed
    assert cli.main(base + ["--output", str(tmp_path / "short.json"), "--ci-block-s", "1"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads((tmp_path / "short.json").read_text())
    assert ev["bits_per_spike_ci95_block_s"] == 1.0 and ev["bits_per_spike_ci95_n_blocks"] >= 5
    assert "1 s of window starts" in ev["bits_per_spike_ci95_blocks"]
    lo, hi = ev["bits_per_spike_ci95"]
    assert lo < ev["bits_per_spike"] < hi and f"95% CI [{lo:.4f}, {hi:.4f}]" in printed
    # the help names the key the JSON records the length under (it said ci95_block_s, which is not there)
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help().split())
    key = re.search(r"recorded as (\S+?)\)", help_text).group(1)
    assert key in ev and ev[key] == 1.0, key


def test_generate_and_evaluate_refuse_a_diverged_model(tiny, capsys, tmp_path):
    """Break test: a diverged run's model (saved with NaN weights, as train keeps it for inspection)
    made 'generate' fail inside torch.multinomial with a traceback, and 'evaluate --model' stop with
    "model_log_likelihood: ... window_log_likelihoods gives NaN for truncated windows", blaming
    truncation and naming no flag. Both now refuse it first, as embed and connectivity do. The
    refusal said "retrain it with a lower learning_rate", a name no flag has: it now names the
    training.learning_rate field of train's --config file (a decoder's: finetune's --learning-rate)."""
    import torch

    d, _ = tiny
    bad = tmp_path / "diverged"
    model = nf.NeuroformerForPreTraining.from_pretrained(d / "model")
    with torch.no_grad():
        model.id_head.weight.fill_(float("nan"))
    model.save_pretrained(bad)
    for name in ("vocab.json", "tokenizer_config.json", "splits.json"):
        (bad / name).write_bytes((d / "model" / name).read_bytes())
    capsys.readouterr()
    out = tmp_path / "gen.nwb"
    runs = {"generate": ["generate", "--model", str(bad), "--data", str(d / "real.npz"), "--output", str(out)],
            "evaluate": ["evaluate", "--generated", str(d / "gen.nwb"), "--real", str(d / "real.npz"),
                         "--model", str(bad), "--min-isis", "2"]}
    for cmd, argv in runs.items():
        assert cli.main(argv) == 2, cmd
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"neuroformer {cmd}: error: --model: {str(bad)!r}: "), last
        assert "weight tensors hold NaN or infinite values (first: id_head.weight)" in last, last
        # the command line names the field of train's --config that sets the rate (learning_rate is no flag)
        assert last.endswith("retrain it with a lower training.learning_rate (a --config file's training: section)"), last
    assert not out.exists()


def test_units_silent_in_the_train_windows_are_named_with_the_null_floor(tiny, tmp_path, capsys):
    """evaluate --model: a unit with no spike in the train windows gets the train-rate null's floor
    (half a spike over them) instead of rate 0; the JSON names it and counts its scored spikes, and a
    note line says so (bits_per_spike depends on the floor)."""
    d, _ = tiny
    rec = read_npz(d / "real.npz")
    plan = SplitPlan.from_dict(json.loads((d / "model" / "splits.json").read_text()))
    cfg = nf.NeuroformerConfig.from_pretrained(d / "model")
    n_train = len(window_starts_for_split(plan, "train", cfg, stride=cfg.current_window)[0])  # tiling, as the null
    drop = np.zeros(rec.n_spikes, dtype=bool)
    for a, b in plan.segments["train"]:
        drop |= (rec.spike_times >= a) & (rec.spike_times < b) & (rec.unit_ids == 1)
    quiet_rec = nf.SpikeRecording(spike_times=rec.spike_times[~drop], unit_ids=rec.unit_ids[~drop],
                                  unit_names=rec.unit_names, time_domain=rec.time_domain, session=rec.session)
    write_npz(quiet_rec, tmp_path / "quiet.npz")
    out = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--real", str(tmp_path / "quiet.npz"), "--generated", str(d / "gen.nwb"),
                     "--output", str(out), "--model", str(d / "model"), "--split", "test", "--min-isis", "2"]) == 0
    printed = capsys.readouterr().out
    ev = json.loads(out.read_text())
    assert ev["bits_per_spike_units_silent_in_fit_split"] == [1]
    assert ev["bits_per_spike_silent_unit_null_rate_hz"] == pytest.approx(0.5 / (n_train * 0.1))
    test_spikes = sum(int(((quiet_rec.spike_times >= a) & (quiet_rec.spike_times < b)
                           & (quiet_rec.unit_ids == 1)).sum()) for a, b in plan.segments["test"])
    assert 0 < ev["bits_per_spike_n_spikes_of_units_silent_in_fit_split"] <= test_spikes
    assert "1 unit fires no spike in the train windows (units [1])" in printed


def test_generate_prints_the_past_spikes_left_out_to_fit_max_past_length(shared_data, tmp_path, capsys):
    """Past windows longer than max_past_length tokens lose their oldest spikes; generate_spikes counts
    them per window (generation_stats['n_past_truncated']), train and prepare print the count, but
    'neuroformer generate' said nothing: the windows were generated from shortened pasts silently.
    It now prints how many past spikes were left out, in how many windows, and the budget."""
    from hf_neuroformer.generation import generate_split
    from hf_neuroformer.io import load_recording

    from tiny_configs import quiet, small_config

    rec = quiet(load_recording, shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"),
                epoch="wake").restrict(660.0, 700.0)
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.005, split_block_length=5.0,
                       max_window_length=8, max_past_length=4)
    tok, model = untrained_model(rec, cfg)
    plan = plan_splits(rec, cfg)
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "splits.json").write_text(json.dumps(plan.to_dict()))
    quiet(write_npz, rec, tmp_path / "real.npz")
    cut = generate_split(model, tok, rec, plan, "test", max_spikes=1, progress=False).generation_stats[
        "n_past_truncated"]
    assert sum(cut) > 0 and 0 < sum(k > 0 for k in cut) < len(cut)  # some windows' pasts are cut, not all
    capsys.readouterr()
    assert cli.main(["generate", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "real.npz"),
                     "--output", str(tmp_path / "gen.nwb"), "--max-spikes", "2"]) == 0
    printed = capsys.readouterr().out
    assert (f"{sum(cut)} past-window spikes left out (the oldest) in {sum(k > 0 for k in cut)} of the {len(cut)} "
            "windows, whose past windows are longer than max_past_length=4 tokens") in printed, printed


def test_a_splits_json_with_overlapping_splits_is_refused_naming_the_file(tiny, capsys, tmp_path):
    """A damaged or hand-edited splits.json whose test segment overlaps a train segment was read as
    it was: generate and evaluate --model scored windows the model was trained on (GUIDE trap 6).
    SplitPlan.read now refuses it, naming the file and the two segments."""
    import shutil

    d, _ = tiny
    bad = tmp_path / "overlap"
    shutil.copytree(d / "model", bad)
    plan = json.loads((bad / "splits.json").read_text())
    train = plan["segments"]["train"][0]
    test = [train[0] + 1.0, train[0] + 3.0]  # inside the first train segment
    plan["segments"]["test"] = [test] + plan["segments"]["test"]
    (bad / "splits.json").write_text(json.dumps(plan))
    path = str(bad / "splits.json")
    with pytest.raises(ValueError, match=re.escape(f"{path!r}: the train segment [{train[0]:g}, {train[1]:g}) s "
                                                   f"overlaps the test segment [{test[0]:g}, {test[1]:g}) s")):
        SplitPlan.read(path)
    capsys.readouterr()
    out = tmp_path / "gen.nwb"
    runs = {"generate": ["generate", "--model", str(bad), "--data", str(d / "real.npz"), "--output", str(out)],
            "evaluate": ["evaluate", "--generated", str(d / "gen.nwb"), "--real", str(d / "real.npz"),
                         "--model", str(bad), "--min-isis", "2", "--output", str(tmp_path / "eval.json")]}
    for cmd, argv in runs.items():
        assert cli.main(argv) == 2, cmd
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"neuroformer {cmd}: error: "), last
        assert (f"{path!r}: the train segment [{train[0]:g}, {train[1]:g}) s overlaps the test segment "
                f"[{test[0]:g}, {test[1]:g}) s") in last, last
        assert "restore the file of the run that wrote this directory" in last, last
    assert not out.exists() and not (tmp_path / "eval.json").exists()


def test_greedy_generation_is_recorded_as_greedy_with_the_sampling_settings_not_used(tiny, capsys):
    """``generate --greedy`` recorded the temperatures and top-k / top-p in the file as if it had
    sampled with them, and evaluate's line on how the file was made did not say greedy: the file now
    records them as null (not used) beside greedy true, and evaluate prints 'greedy decoding' (or
    'sampled' for a sampled file)."""
    from hf_neuroformer.generation import read_settings_scratch
    from hf_neuroformer.io import read_nwb_scratch

    d, _ = tiny
    sampling = ("temperature", "top_p", "top_k", "dt_temperature", "dt_top_p", "dt_top_k")
    lines = {}
    for how, flags in (("greedy", ["--greedy", "--temperature", "0.5", "--top-k", "3"]), ("sampled", [])):
        gen = d / f"gen_{how}.nwb"
        assert cli.main(["generate", "--model", str(d / "model"), "--data", str(d / "real.npz"), "--output", str(gen),
                         "--max-spikes", "2", *flags]) == 0
        settings = read_settings_scratch(read_nwb_scratch(gen))
        assert settings["greedy"] is (how == "greedy")
        used = {k: settings[k] for k in sampling}
        if how == "greedy":
            assert used == dict.fromkeys(sampling), used
        else:
            assert used["temperature"] == 1.0 and used["dt_temperature"] == 1.0, used
        capsys.readouterr()
        assert cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(gen)]) == 0
        lines[how] = next(ln for ln in capsys.readouterr().out.splitlines() if " of generated windows (" in ln)
    assert "past, greedy decoding, by " in lines["greedy"], lines
    assert "past, sampled, by " in lines["sampled"], lines


def test_a_file_scored_with_another_model_of_other_units_names_model_not_real(tiny, capsys, tmp_path):
    """``evaluate --generated G --model M`` with M not the model that generated G, and trained on other
    units: the refusal blamed --real ('this recording's units are not the ones the model ... was trained
    on: pass the recording it was trained on'), when the recording was right and --model was wrong. The
    file's record of its model is checked first, before the recording is read."""
    from tiny_configs import untrained_model

    d, _ = tiny
    gen = tmp_path / "gen.nwb"
    assert cli.main(["generate", "--model", str(d / "model"), "--data", str(d / "real.npz"), "--output", str(gen)]) == 0
    other_rec = nf.simulate_coupled_network(n_units=3, duration=60.0, seed=5).recording  # not unit3 of --real
    cfg = nf.NeuroformerConfig.from_pretrained(d / "model")
    tok, model = untrained_model(other_rec, cfg)
    model.save_pretrained(tmp_path / "other")
    tok.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "splits.json").write_text(json.dumps(plan_splits(other_rec, cfg).to_dict()))
    capsys.readouterr()
    rc = cli.main(["evaluate", "--real", str(d / "real.npz"), "--generated", str(gen), "--model", str(tmp_path / "other")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error: --model/--split: " in err and "has other weights than" in err and "--real" not in err, err
