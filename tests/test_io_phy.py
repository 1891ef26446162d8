"""Kilosort / Phy folders (``hf_neuroformer.io.read_phy``).

No sorter output is among the shared recordings, so each test writes one in the format
Kilosort and Phy write (``spike_times.npy`` in samples, ``spike_clusters.npy``, ``params.py``,
``cluster_group.tsv``) from the real spikes of the pynapple A2929 wake epoch, and checks that
reading it gives those spikes back.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from hf_neuroformer.io import from_arrays, load_recording, read_phy
from hf_neuroformer.recording import RecordingValidationError, SpikeRecording

from tiny_configs import quiet

FS = 20000.0
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


@pytest.fixture(scope="module")
def a2929(shared_data):
    return quiet(load_recording, shared_data(A2929), epoch="wake")


def _write_phy(folder, rec, groups=("good", "mua", "noise"), listed=None, params="sample_rate = 20000.\n"):
    """A Phy folder of ``rec``'s spikes: cluster id ``3 * unit + 5`` (gaps, first id above 0),
    samples as Kilosort stores them (``(n, 1)`` uint64), cluster k labelled ``groups[k % 3]``;
    ``listed``: the cluster ids the group table lists (default all). The raw data file params.py
    names (``temp_wh.dat``, 64 int16 channels) ends one sample after the last spike (sparse: no disk used)."""
    folder.mkdir(parents=True, exist_ok=True)
    samples = np.round(rec.spike_times * FS).astype(np.uint64)
    with open(folder / "temp_wh.dat", "wb") as f:
        f.truncate((int(samples.max()) + 1) * 64 * 2)
    np.save(folder / "spike_times.npy", samples[:, None])
    np.save(folder / "spike_clusters.npy", (3 * rec.unit_ids + 5).astype(np.int32))
    (folder / "params.py").write_text("dat_path = 'temp_wh.dat'\nn_channels_dat = 64\ndtype = 'int16'\n"
                                      "offset = 0\nhp_filtered = True\n" + params)
    ids = 3 * np.arange(rec.n_units) + 5 if listed is None else listed
    rows = [f"{c}\t{groups[k % len(groups)]}" for k, c in enumerate(ids)]
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n" + "\n".join(rows) + "\n")
    return folder


def test_phy_folder_gives_the_sorted_spikes_back_without_noise_clusters(a2929, tmp_path):
    folder = _write_phy(tmp_path / "mouse 12", a2929)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = load_recording(folder)
    noise = [k for k in range(a2929.n_units) if k % 3 == 2]
    n_noise_spikes = int(np.isin(a2929.unit_ids, noise).sum())
    # the 'mua' clusters are kept, and (they were kept without a word while 'noise' ones were counted) counted too
    mua = [k for k in range(a2929.n_units) if k % 3 == 1]
    n_mua_spikes = int(np.isin(a2929.unit_ids, mua).sum())
    assert [str(m.message) for m in w] == [
        f"read_phy: left out {len(noise)} clusters labelled 'noise' ({n_noise_spikes} spikes; exclude_groups=() "
        "keeps them)",
        f"read_phy: kept {len(mua)} clusters labelled 'mua' (multi-unit activity: each may hold the spikes of several "
        f"neurons; {n_mua_spikes} spikes); exclude_groups=('noise', 'mua') leaves them out"]
    kept = [k for k in range(a2929.n_units) if k % 3 != 2]
    assert rec.unit_names == [str(3 * k + 5) for k in kept]
    assert rec.session == "mouse_12"  # the folder's name, whitespace replaced (a unit token holds none)
    assert rec.time_domain[0] == 0.0  # sample 0 is the recording's start, not the first spike
    for new, old in enumerate(kept):
        got = rec.spike_times[rec.unit_ids == new]
        want = a2929.spike_times[a2929.unit_ids == old]
        assert got.size == want.size
        np.testing.assert_allclose(got, want, atol=0.5 / FS + 1e-12)  # rounded to the sample clock


def test_exclude_groups_empty_keeps_every_cluster_and_spike(a2929, tmp_path):
    folder = _write_phy(tmp_path / "ks", a2929)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left out, nothing to warn about
        rec = read_phy(folder, exclude_groups=())
    assert rec.n_units == a2929.n_units and rec.spike_times.size == a2929.spike_times.size
    np.testing.assert_array_equal(np.bincount(rec.unit_ids), np.bincount(a2929.unit_ids))
    # one group name as a string is one group, not its letters
    n_mua = len(range(1, a2929.n_units, 3))
    with pytest.warns(UserWarning, match=f"left out {n_mua} clusters labelled 'mua'"):
        assert read_phy(folder, exclude_groups="mua", session="s").n_units == a2929.n_units - n_mua


def test_a_label_that_differs_from_an_excluded_group_only_in_case_is_named(a2929, tmp_path):
    """Labels are compared exactly, so clusters labelled 'Noise' (typed by hand) stayed in under the
    default exclude_groups=('noise',), and exclude_groups=('MUA',) left no 'mua' cluster out, both
    without a word. They are still kept, and the warning names them and the fix."""
    folder = _write_phy(tmp_path / "ks", a2929, groups=("good", "mua", "Noise"))
    n_noise = len(range(2, a2929.n_units, 3))
    n_spikes = int(np.isin(a2929.unit_ids, np.arange(2, a2929.n_units, 3)).sum())
    with pytest.warns(UserWarning) as caught:
        rec = read_phy(folder)
    assert rec.n_units == a2929.n_units
    assert [str(w.message) for w in caught][:1] == [
        f"read_phy: kept {n_noise} clusters labelled 'Noise' ({n_spikes} spikes), though exclude_groups names 'noise': "
        "labels are compared exactly; add 'Noise' to exclude_groups to leave them out"]
    assert len(caught) == 2 and str(caught[1].message).startswith("read_phy: kept "), [str(w.message) for w in caught]
    assert "labelled 'mua' (multi-unit activity" in str(caught[1].message)
    with pytest.warns(UserWarning, match=r"kept \d+ clusters labelled 'mua' .*names 'MUA'"):
        read_phy(folder, exclude_groups=("MUA", "Noise"))


def test_a_sample_rate_in_khz_is_named_as_the_cause_of_days_long_spike_times(a2929, tmp_path):
    """params.py with sample_rate = 20.0 (kHz written for 20 kHz) makes the 10-min wake epoch span
    about a week of 'seconds'; the warning said 'divide them first', which a user reading a folder
    cannot do. It now names params.py's sample_rate and the fix."""
    folder = _write_phy(tmp_path / "ks", a2929, params="sample_rate = 20.0\n")
    with pytest.warns(UserWarning) as caught:
        read_phy(folder, exclude_groups=())
    msgs = [str(w.message) for w in caught]
    assert any(m.startswith(f"read_phy: {folder / 'params.py'}: sample_rate = 20 Hz, below 1000 Hz")
               and m.endswith("set sample_rate to the sampling rate in Hz (e.g. 30000.0 for 30 kHz, not 30.0)")
               for m in msgs), msgs
    assert not any("divide them first" in m for m in msgs), msgs


def test_the_sample_rate_not_the_span_tells_a_rate_in_khz(a2929, tmp_path):
    """Break test: the kHz check looked at the span of the spike times only (more than a day, or an
    hour at a low rate). A short sort with sample_rate = 20.0 (3 s of spikes read as 3000 s) was
    taken without a word, and a sort of two days' recordings at 20000 Hz (a chronic implant, the
    days sorted together) was told its sample_rate 'is not in Hz'. The sample rate itself is now
    the test: below 1000 Hz no spike sort runs."""
    short = a2929.restrict(a2929.time_domain[0], a2929.time_domain[0] + 3.0)
    short = short.select_units(np.unique(short.unit_ids))  # no cluster without spikes (warned of otherwise)
    folder = _write_phy(tmp_path / "short", short, params="sample_rate = 20.0\n")
    with pytest.warns(UserWarning, match=r"sample_rate = 20 Hz, below 1000 Hz, slower than any spike sort runs .*"
                                         r"kHz written for Hz\? the spike times \(sample index / sample_rate, spanning "
                                         r"[0-9.]+ s\) are then 1000 times too long"):
        rec = read_phy(folder, exclude_groups=())
    assert rec.spike_times[-1] > 1000 * (short.spike_times[-1] - 1.0)  # what the warning is about
    day = 86_400.0
    wake = a2929.restrict(a2929.time_domain[0], a2929.time_domain[0] + 60.0)
    two_days = SpikeRecording.from_unsorted(np.concatenate([wake.spike_times, wake.spike_times + 1.5 * day]),
                                            np.concatenate([wake.unit_ids, wake.unit_ids]),
                                            unit_names=wake.unit_names, time_domain=(0.0, 2 * day))
    folder = _write_phy(tmp_path / "chronic", two_days)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = read_phy(folder, exclude_groups=())
    assert rec.spike_times[-1] - rec.spike_times[0] > day


def test_spikes_of_clusters_no_table_lists_are_counted(a2929, tmp_path):
    # a cluster_group.tsv that misses a cluster: spikeinterface leaves its spikes out
    listed = 3 * np.arange(1, a2929.n_units) + 5
    folder = _write_phy(tmp_path / "ks", a2929, groups=("good",), listed=listed)
    with pytest.warns(UserWarning, match=rf"left out {int((a2929.unit_ids == 0).sum())} of "
                                         rf"{a2929.spike_times.size} spikes whose cluster no cluster table"):
        rec = read_phy(folder)
    assert rec.n_units == a2929.n_units - 1 and rec.unit_names[0] == "8"


@pytest.mark.parametrize("remove, params, error, match", [
    ("params.py", "", FileNotFoundError, r"no params.py \(expected the folder Kilosort wrote"),
    # a sort copied without its spike_times.npy was 'unsupported recording folder ...' and a list of every format
    ("spike_times.npy", "sample_rate = 20000.\n", FileNotFoundError,
     r"no spike_times.npy \(expected the folder Kilosort wrote"),
    (None, "", ValueError, r"params.py: no sample_rate \(expected a line such as 'sample_rate = 30000.0'"),
    (None, "sample_rate = 0\n", ValueError, r"sample_rate: expected a positive number of Hz, got 0"),
    # True was read as 1 Hz: spike times 30000 times too long, named only in the warning of a rate in kHz
    (None, "sample_rate = True\n", ValueError, r"sample_rate: expected a positive number of Hz, got True"),
])
def test_a_broken_folder_names_what_is_missing(a2929, tmp_path, remove, params, error, match):
    folder = _write_phy(tmp_path / "ks", a2929, params=params)
    if remove:
        (folder / remove).unlink()
    with pytest.raises(error, match=match):
        load_recording(folder)  # spike_clusters.npy without params.py is still taken for a Phy folder


def test_exclude_groups_refuses_what_is_not_a_name(a2929, tmp_path):
    folder = _write_phy(tmp_path / "ks", a2929)
    with pytest.raises(ValueError, match=r"exclude_groups: expected cluster group names .* got \[2\]"):
        read_phy(folder, exclude_groups=["noise", 2])


def test_train_reads_a_phy_folder_from_the_command(a2929, tmp_path, capsys):
    from hf_neuroformer.cli import main

    # the first 120 s of the wake epoch (every unit fires there), moved to start at 0 s as a sorter's samples
    # do: a Phy folder's recorded time starts at sample 0, so the 600 s before the epoch were windows of
    # silence that training's validation and test losses scored; the test reads the vocabulary
    part = a2929.restrict(600.0, 720.0)
    folder = _write_phy(tmp_path / "ks", SpikeRecording.from_unsorted(
        part.spike_times - 600.0, part.unit_ids, unit_names=part.unit_names, time_domain=(0.0, 120.0)))
    (tmp_path / "tiny.yaml").write_text("hidden_size: 16\nnum_attention_heads: 2\nintermediate_size: 32\n"
                                        "max_past_length: 64\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in ("train", "--config", tmp_path / "tiny.yaml", "--data", folder,
                                      "--output-dir", tmp_path / "run", "--max-steps", 2,
                                      "--no-test-generation", "--no-figures")])
    assert code == 0, capsys.readouterr().err[-2000:]
    vocab = (tmp_path / "run" / "vocab.json").read_text()
    assert '"ks/5"' in vocab and '"ks/11"' not in vocab  # cluster 11 is labelled noise


def test_a_cluster_phy_merged_is_kept_though_cluster_KSLabel_misses_it(a2929, tmp_path):
    # After a merge in Phy the new cluster (here 100, of clusters 5 and 8) is in cluster_group.tsv but not in
    # Kilosort's cluster_KSLabel.tsv, which still lists 5 and 8 (now without spikes). spikeinterface's inner join
    # of the tables dropped cluster 100 and its spikes as "listed by no table".
    folder = _write_phy(tmp_path / "ks", a2929, groups=("good",))
    clusters = np.load(folder / "spike_clusters.npy")
    merged = np.isin(clusters, [5, 8])
    np.save(folder / "spike_clusters.npy", np.where(merged, 100, clusters).astype(np.int32))
    ids = [3 * k + 5 for k in range(2, a2929.n_units)] + [100]
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n" + "".join(f"{c}\tgood\n" for c in ids))
    (folder / "cluster_KSLabel.tsv").write_text(
        "cluster_id\tKSLabel\n" + "".join(f"{3 * k + 5}\tmua\n" for k in range(a2929.n_units)))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = read_phy(folder)
    assert [str(m.message) for m in w] == [
        "read_phy: left out 2 clusters that a cluster table (cluster_group.tsv, cluster_KSLabel.tsv) lists but that "
        "have no spike in spike_clusters.npy (merged or split away in Phy): 5, 8"]
    assert rec.unit_names[-1] == "100" and "5" not in rec.unit_names
    assert rec.n_spikes == a2929.n_spikes
    assert int((rec.unit_ids == rec.n_units - 1).sum()) == int(merged.sum())


@pytest.mark.parametrize("table", ["phy1 csv", "excel"])
def test_phy1_tab_separated_cluster_groups_csv_excludes_noise(a2929, tmp_path, table):
    # Phy 1 (template-gui) wrote the labels to cluster_groups.csv, tab-separated despite the suffix; read as
    # comma-separated it has no cluster_id column, and its noise clusters were kept without a word.
    # A table relabelled in Excel and saved back opens with a byte-order mark and ends lines with CRLF.
    folder = _write_phy(tmp_path / "ks", a2929)
    if table == "phy1 csv":
        (folder / "cluster_group.tsv").rename(folder / "cluster_groups.csv")
    else:
        text = (folder / "cluster_group.tsv").read_text().replace("\n", "\r\n")
        (folder / "cluster_group.tsv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    n_noise = len(range(2, a2929.n_units, 3))
    with pytest.warns(UserWarning, match=f"left out {n_noise} clusters labelled 'noise'"):
        rec = read_phy(folder)
    assert rec.n_units == a2929.n_units - n_noise


@pytest.mark.parametrize("change, error, match", [
    # Kilosort users edit dat_path to the Windows path of their .bin; '\U' in a plain string is a SyntaxError
    ("params", ValueError, r"params.py: line 1 is not valid Python: .*needs a raw string: dat_path = r'C:"),
    ("mismatch", ValueError, r"spike_times.npy holds \d+ spikes but spike_clusters.npy \d+ \(one cluster per spike"),
    ("empty", RecordingValidationError, r"spike_times.npy holds no spike"),
    # a custom export wrote seconds where Phy keeps sample indices
    ("seconds", ValueError, r"spike_times.npy: expected non-negative integers, got values such as .* \(seconds\? Phy "
                            r"stores sample indices: write np.round\(times \* sample_rate\) with sample_rate 20000 Hz"),
])
def test_a_malformed_sort_is_named_not_a_numpy_error(a2929, tmp_path, change, error, match):
    folder = _write_phy(tmp_path / "ks", a2929)
    if change == "params":
        text = (folder / "params.py").read_text()
        (folder / "params.py").write_text("dat_path = 'C:\\Users\\lab\\rec.bin'\n" + text.split("\n", 1)[1])
    elif change == "mismatch":
        np.save(folder / "spike_clusters.npy", np.load(folder / "spike_clusters.npy")[:-3])
    elif change == "seconds":
        np.save(folder / "spike_times.npy", a2929.spike_times[:, None])
    else:
        np.save(folder / "spike_times.npy", np.zeros((0, 1), np.uint64))
        np.save(folder / "spike_clusters.npy", np.zeros(0, np.int32))
    with pytest.raises(error, match=match):
        quiet(read_phy, folder)


def test_a_spike_the_sorter_counted_twice_is_named(a2929, tmp_path):
    # Kilosort 2 can detect one spike twice: the same sample, the same cluster; other readers (NWB) say so
    folder = _write_phy(tmp_path / "ks", a2929, groups=("good",))
    samples, clusters = np.load(folder / "spike_times.npy"), np.load(folder / "spike_clusters.npy")
    twice = np.flatnonzero(clusters == 8)[:7]
    # each repeat beside its spike, in ascending order as Kilosort writes them (out of order is another warning)
    order = np.argsort(np.concatenate([samples[:, 0], samples[twice, 0]]), kind="stable")
    np.save(folder / "spike_times.npy", np.concatenate([samples, samples[twice]])[order])
    np.save(folder / "spike_clusters.npy", np.concatenate([clusters, clusters[twice]])[order])
    with pytest.warns(UserWarning, match=r"7 spikes in 1 cluster repeat a sample of the same cluster exactly "
                                         r"\('8': 7\); kept") as caught:
        rec = read_phy(folder)
    assert rec.n_spikes == a2929.n_spikes + 7
    # the rule and words of the arrays and NWB readers (io.arrays.warn_repeated_spikes), in Phy's terms: Phy had
    # its own copy of the rule, which said less (no 'a unit cannot fire twice at once')
    w = next(w for w in caught if "repeat a sample" in str(w.message))
    msg = str(w.message)
    assert msg.startswith(f"read_phy: spikes of {folder}: ") and "a unit cannot fire twice at once" in msg, msg
    assert w.filename == __file__  # pointed at read_phy's caller


def test_spike_times_out_of_ascending_order_are_sorted_and_counted_in_a_warning(a2929, tmp_path):
    """Break test: a spike_times.npy whose samples step back (two sorts' files concatenated: Kilosort
    writes them ascending) was sorted without a word, while read_nwb warns of a unit's spike times out
    of order. The spikes are still sorted, none left out; the steps back are counted and the first
    named (spike index, both samples)."""
    folder = _write_phy(tmp_path / "ks", a2929, groups=("good",))
    samples, clusters = np.load(folder / "spike_times.npy"), np.load(folder / "spike_clusters.npy")
    half = samples.shape[0] // 2
    np.save(folder / "spike_times.npy", np.concatenate([samples[half:], samples[:half]]))  # (n, 1) uint64 kept
    np.save(folder / "spike_clusters.npy", np.concatenate([clusters[half:], clusters[:half]]))
    first, last = int(samples[0, 0]), int(samples[-1, 0])
    with pytest.warns(UserWarning, match=rf"^read_phy: .*spike_times\.npy: sample indices out of ascending order "
                                         rf"\(1 step back in time among {samples.shape[0]} spikes; first: spike "
                                         rf"{samples.shape[0] - half} at sample {first} \({first / FS:g} s\) after "
                                         rf"sample {last} \({last / FS:g} s\)\); sorted by time, no spike left "
                                         r"out") as caught:
        rec = read_phy(folder)
    assert next(w for w in caught if "ascending order" in str(w.message)).filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file in order reads the same spikes without a word
        np.save(folder / "spike_times.npy", samples)
        np.save(folder / "spike_clusters.npy", clusters)
        ordered = read_phy(folder)
    np.testing.assert_array_equal(rec.spike_times, ordered.spike_times)
    np.testing.assert_array_equal(rec.unit_ids, ordered.unit_ids)
    assert rec.n_spikes == a2929.n_spikes


def test_the_folder_above_a_phy_folder_names_it(a2929, tmp_path):
    # Kilosort 4 writes its Phy folder into <data folder>/kilosort4: the folder a user passes as --data is often
    # the one above it, which said only 'unsupported recording folder' with the list of formats
    _write_phy(tmp_path / "session" / "kilosort4", a2929)
    (tmp_path / "session" / "video").mkdir()
    with pytest.raises(ValueError, match=r"unsupported recording folder .*session: .*A recording one folder down: "
                                         r".*kilosort4 \(Kilosort / Phy folder\); pass it as the recording"):
        load_recording(tmp_path / "session")
    with pytest.raises(ValueError, match=r"unsupported recording folder") as err:
        load_recording(tmp_path / "session" / "video")  # nothing below it: no hint
    assert "one folder down" not in str(err.value)


def test_an_epoch_of_a_phy_folder_says_it_has_none(a2929, tmp_path):
    # the error listed 'epochs []'; a sorter's folder has no epochs, so say that and what to do
    folder = _write_phy(tmp_path / "ks", a2929)
    with pytest.raises(KeyError, match=r"epoch 'wake' not found; this recording has no epochs .*leave the epoch out"):
        quiet(load_recording, folder, epoch="wake")
    with pytest.raises(KeyError, match=r"epoch 'run' not found; this recording has epochs \['position_time_support', "):
        a2929.select_epoch("run")


@pytest.mark.parametrize("name", ["kilosort4", "sorter_output", "Kilosort4"])
def test_a_sorter_named_output_folder_takes_its_parent_into_the_session(a2929, tmp_path, name):
    # Kilosort 4 writes every sort into <data folder>/kilosort4 (spikeinterface into .../sorter_output): named by
    # the folder alone, every session was 'kilosort4' and their clusters the same tokens ('kilosort4/5')
    rec = quiet(load_recording, _write_phy(tmp_path / "mouse 3 day2" / name, a2929))
    assert rec.session == f"mouse_3_day2_{name}"
    assert quiet(read_phy, tmp_path / "mouse 3 day2" / name, session="m3").session == "m3"
    other = quiet(load_recording, _write_phy(tmp_path / "mouse 4" / name, a2929))
    assert other.session != rec.session


def test_the_recording_ends_where_the_raw_data_file_ends(a2929, tmp_path):
    # params.py names the binary the sort was made from (64 int16 channels, no header); its size
    # gives the recording's length, which the spikes alone cannot (silence after the last spike)
    folder = _write_phy(tmp_path / "ks", a2929)
    n_samples = int(np.round(a2929.spike_times[-1] * FS)) + 1 + int(5 * FS)  # 5 s after the last spike
    with open(folder / "temp_wh.dat", "wb") as f:
        f.truncate(n_samples * 64 * 2)  # sparse: no disk used
    rec = quiet(read_phy, folder)
    assert rec.time_domain == (0.0, n_samples / FS)
    # a binary shorter than the last spike is not this sort's: said, and the spikes decide
    with open(folder / "temp_wh.dat", "wb") as f:
        f.truncate(1000 * 64 * 2)
    with pytest.warns(UserWarning, match=r"holds 1000 samples per channel, but a spike lies at sample"):
        rec = read_phy(folder, exclude_groups=())
    assert rec.time_domain[1] == pytest.approx((np.round(a2929.spike_times[-1] * FS) + 1) / FS)


@pytest.mark.parametrize("params, size, match", [
    # settings that do not describe the file beside the sort: said, naming the field, and the spikes end the recording
    ("dtype = 'int17'\n", 64 * 2, r"dtype: expected the name of a numeric NumPy type.*got 'int17'"),
    ("dtype = 'str'\n", 64 * 2, r"dtype: expected.*got 'str'"),  # itemsize 0: was a ZeroDivisionError
    ("dtype = None\n", 64 * 2, r"dtype: expected.*got None"),  # np.dtype(None) is float64: was read as 8 bytes
    ("n_channels_dat = 0\n", 64 * 2, r"n_channels_dat: expected the number of channels.*got 0"),
    ("del n_channels_dat\n", 64 * 2, r"n_channels_dat: expected.*got None"),
    ("n_channels_dat = 64.5\n", 64 * 2, r"n_channels_dat: expected.*whole number >= 1, got 64.5"),
    # an integer past float range: numpy's TypeError ('isfinite' not supported) naming no field
    ("n_channels_dat = 10**400\n", 64 * 2, r"n_channels_dat: expected.*whole number >= 1, got 1000000"),
    ("offset = -1280\n", 64 * 2, r"offset: expected the bytes of header.*got -1280"),
    ("offset = 10**9\n", 64 * 2 * 1000, r"offset: expected at most the size of .*temp_wh.dat \(128000 bytes\), "
                                        r"got 1000000000"),  # was 'holds -7812 samples per channel'
    ("dat_path = 5\n", 0, r"dat_path: expected a file name or a list of file names, got 5"),  # was a TypeError
])
def test_raw_data_settings_that_do_not_describe_the_file_are_named(a2929, tmp_path, params, size, match):
    folder = _write_phy(tmp_path / "ks", a2929, params="sample_rate = 20000.\n" + params)
    with open(folder / "temp_wh.dat", "wb") as f:
        f.truncate(size)
    with pytest.warns(UserWarning, match=match):
        rec = read_phy(folder, exclude_groups=())
    assert rec.time_domain[1] == pytest.approx((np.round(a2929.spike_times[-1] * FS) + 1) / FS)


def test_raw_data_as_a_list_a_numpy_type_and_a_size_not_whole_samples(a2929, tmp_path):
    last = int(np.round(a2929.spike_times[-1] * FS)) + 1
    # two files (Phy concatenates them), float32 as np.float32 in a params.py that imports numpy, a 256-byte header each
    folder = _write_phy(tmp_path / "ks", a2929, params="sample_rate = 20000.\nimport numpy as np\ndtype = np.float32\n"
                        "offset = 256\ndat_path = ['a.bin', 'b.bin']\n")
    for name, n in (("a.bin", last), ("b.bin", 1000)):
        with open(folder / name, "wb") as f:
            f.truncate(256 + n * 64 * 4)
    assert quiet(read_phy, folder).time_domain == (0.0, (last + 1000) / FS)
    # 3 bytes more than whole samples: other settings than the file's, said; its whole samples counted
    with open(folder / "b.bin", "wb") as f:
        f.truncate(256 + 1000 * 64 * 4 + 3)
    with pytest.warns(UserWarning, match=r"b.bin: 256003 bytes of samples \(after offset 256\) are not a whole number "
                                         r"of samples of n_channels_dat 64 x dtype float32 \(256 bytes\)"):
        rec = read_phy(folder, exclude_groups=())
    assert rec.time_domain == (0.0, (last + 1000) / FS)


def test_left_out_counts_of_one_are_worded_for_one(tmp_path):
    """'left out 1 clusters labelled 'noise' (1 spikes; ...)': the counts of one read as plurals."""
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "params.py").write_text("sample_rate = 30000.0\n")
    np.save(folder / "spike_times.npy", np.array([10, 20, 30, 40], dtype=np.uint64))
    np.save(folder / "spike_clusters.npy", np.array([0, 0, 1, 0], dtype=np.int32))
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n0\tgood\n1\tnoise\n")
    with pytest.warns(UserWarning, match=r"left out 1 cluster labelled 'noise' \(1 spike; exclude_groups"):
        rec = read_phy(folder)
    assert rec.unit_names == ["0"] and rec.n_spikes == 3


def test_float32_sample_indices_past_two_to_the_24_are_named_as_rounded(tmp_path):
    """float32 holds every whole number only below 2**24 (9.3 min at 30 kHz): past it, sample
    indices stored as float32 were rounded when written (2**24 + 1 reads 2**24) and passed the
    whole-number check without a word."""
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "params.py").write_text("sample_rate = 30000.0\n")
    np.save(folder / "spike_times.npy", np.arange(2**24, 2**24 + 5).astype(np.float32))
    np.save(folder / "spike_clusters.npy", np.arange(5, dtype=np.int32))  # one spike per cluster: no repeats
    with pytest.warns(UserWarning, match=r"read_phy: .*spike_times\.npy: sample indices stored as float32, which holds "
                                         r"every whole number only below 16777216 \(559\.241 s at sample_rate 30000 "
                                         r"Hz\); 5 spikes lie at or past it \(up to sample 16777220\), .* off by up "
                                         r"to 1 \(33\.3 µs\)"):
        rec = read_phy(folder)
    assert rec.n_spikes == 5
    np.save(folder / "spike_times.npy", np.arange(2**24 - 5, 2**24).astype(np.float32))  # all exact: no word
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_phy(folder).n_spikes == 5


def test_a_time_domain_shorter_than_the_sort_says_how_to_cut(tmp_path):
    """read_phy(time_domain=(0, 5)) on a 10-s sort failed with from_arrays' 'time_domain: expected
    it to contain every spike', which did not say that time_domain is no cut, nor how to cut."""
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "params.py").write_text("sample_rate = 30000.0\n")
    samples = np.array([300_000 - 1, 3_000, 200_000, 60_000], dtype=np.uint64)  # unsorted, up to 10 s
    np.save(folder / "spike_times.npy", samples)
    np.save(folder / "spike_clusters.npy", np.zeros(4, dtype=np.int32))
    unsorted = r"sample indices out of ascending order \(2 steps back in time among 4 spikes"
    with pytest.raises(RecordingValidationError, match=r"time_domain: \(0, 5\) s leaves out 2 of 4 spikes .* "
                                                       r"cut it with \.restrict\(start, stop\)"), \
            pytest.warns(UserWarning, match=unsorted):
        read_phy(folder, time_domain=(0.0, 5.0))
    with pytest.warns(UserWarning, match=unsorted):
        rec = read_phy(folder, time_domain=(0.0, 12.0))
    assert rec.n_spikes == 4 and rec.restrict(0.0, 5.0).n_spikes == 2


def test_a_file_of_a_phy_folder_is_sent_to_its_folder(tmp_path):
    """load_recording('.../spike_times.npy') (or params.py) said "unsupported recording format '.npy'" and
    listed every format; the file belongs to a sort whose folder is the recording."""
    folder = tmp_path / "ks"
    folder.mkdir()
    (folder / "params.py").write_text("sample_rate = 30000.0\n")
    np.save(folder / "spike_times.npy", np.array([10, 20, 30], dtype=np.uint64))
    np.save(folder / "spike_clusters.npy", np.zeros(3, dtype=np.int32))
    for name in ("spike_times.npy", "params.py"):
        with pytest.raises(ValueError, match=r"is a file of the Phy / Kilosort folder .*: pass the folder itself"):
            load_recording(folder / name)
    assert load_recording(folder).n_spikes == 3


def test_a_cluster_listed_twice_with_two_labels_is_refused(a2929, tmp_path):
    # rows '5 good' and '5 noise': which label the curator meant is unknown; the first row won without a word
    folder = _write_phy(tmp_path / "ks", a2929)
    table = folder / "cluster_group.tsv"
    table.write_text(table.read_text() + "5\tnoise\n")
    with pytest.raises(ValueError, match=r"cluster_group\.tsv: cluster 5 is listed twice with different labels: "
                                         r"'good' \(row 2\) and 'noise' \(row \d+\)"):
        read_phy(folder)


def test_a_label_cluster_info_gives_otherwise_than_cluster_group_is_named(a2929, tmp_path):
    # cluster_info.tsv edited by hand: cluster 5 'good' in cluster_group.tsv, 'noise' in cluster_info.tsv
    folder = _write_phy(tmp_path / "ks", a2929)
    ids = 3 * np.arange(a2929.n_units) + 5
    (folder / "cluster_info.tsv").write_text(
        "cluster_id\tgroup\tn_spikes\n" + "".join(
            f"{c}\t{'noise' if c == 5 else ('good', 'mua', 'noise')[k % 3]}\t1\n" for k, c in enumerate(ids)))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = read_phy(folder)
    conflict = [str(m.message) for m in w if "differently" in str(m.message)]
    assert len(conflict) == 1 and "label 1 cluster differently (cluster 5: 'good' in cluster_group.tsv, 'noise' " \
        "in cluster_info.tsv)" in conflict[0]
    assert "5" in rec.unit_names  # cluster_group.tsv's label is used


def _small_sort(folder, table="cluster_id\tgroup\n0\tgood\n1\tnoise\n"):
    """A four-spike sort of two clusters at 30 kHz (cluster 1 labelled 'noise' by ``table``)."""
    folder.mkdir()
    (folder / "params.py").write_text("sample_rate = 30000.0\n")
    np.save(folder / "spike_times.npy", np.array([10, 20, 30, 40], dtype=np.uint64))
    np.save(folder / "spike_clusters.npy", np.array([0, 0, 1, 0], dtype=np.int32))
    if table is not None:
        (folder / "cluster_group.tsv").write_text(table)
    return folder


@pytest.mark.parametrize("name", ["spike_times.npy", "spike_clusters.npy"])
@pytest.mark.parametrize("damage, match", [
    ("empty", r"the file is empty \(0 bytes\); was the sort written out completely\?"),
    ("cut", r"it could not be read \(ValueError: .*\)"),
    ("text", r"the file does not start as a \.npy file does"),
    ("objects", r"it could not be read \(ValueError: Object arrays cannot be loaded"),
])
def test_a_damaged_npy_file_of_the_sort_is_named(tmp_path, name, damage, match):
    """A sort that stopped while writing left an empty spike_clusters.npy: numpy's EOFError ('No data left in
    file', no ValueError) came out of `neuroformer inspect` as a traceback; a file cut short, a text file and an
    array of objects gave numpy's messages ("contains pickled (object) data" for the text), naming no file."""
    folder = _small_sort(tmp_path / "ks")
    path = folder / name
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "cut":
        path.write_bytes(path.read_bytes()[:-8])
    elif damage == "text":
        path.write_text("10\n20\n30\n40\n")
    else:
        np.save(path, np.array([10, "20", 30, 40], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: expected a NumPy \.npy array of one integer per "
                                         rf"spike, {match}"):
        read_phy(folder)


@pytest.mark.parametrize("table, listed", [("cluster_id\tgroup\n", "0 clusters"),
                                           ("cluster_id\tgroup\n7\tgood\n8\tmua\n", r"2 clusters \(7, 8\)")])
def test_cluster_tables_that_list_none_of_the_sorts_clusters_are_named(tmp_path, table, listed):
    """A cluster_group.tsv holding its header only (Phy stopped while saving) or another sort's clusters left
    every spike out with a warning, then was refused as "every cluster ... is labelled one of ('noise',)",
    though no cluster was labelled at all."""
    folder = _small_sort(tmp_path / "ks", table=table)
    with pytest.raises(RecordingValidationError, match=r"read_phy: the cluster tables of .*ks \(cluster_group\.tsv\) "
                                                       rf"list none of the 2 clusters of spike_clusters\.npy \(0, 1\) "
                                                       rf"but {listed}: every spike would be left out"):
        read_phy(folder)


def test_a_trailing_separator_on_each_row_of_a_cluster_table_is_read(tmp_path):
    """Rows with one field more than the header ('0<TAB>good<TAB>', as some scripts write) made pandas take
    the first column as the row index: the labels were read as the cluster ids and the table refused as
    "expected integer cluster ids, got ['good', 'noise']"."""
    folder = _small_sort(tmp_path / "ks", table="cluster_id\tgroup\n0\tgood\t\n1\tnoise\t\n")
    with pytest.warns(UserWarning, match=r"left out 1 cluster labelled 'noise' \(1 spike"):
        rec = read_phy(folder)
    assert rec.unit_names == ["0"] and rec.n_spikes == 3
    # a value past the header's columns is no trailing separator: which column it belongs to is unknown
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n0\tgood\n1\tnoise\t2\n")
    with pytest.raises(ValueError, match=r"cluster_group\.tsv: row 3 has 3 fields but the header names 2 \(cluster_id, "
                                         r"group\): \['1', 'noise', '2'\]; one value per column expected"):
        read_phy(folder)


def test_a_cluster_table_that_is_not_utf8_is_named(tmp_path):
    """A table saved as Windows 'ANSI' text (a note with a µ) failed with pandas' UnicodeDecodeError
    ("'utf-8' codec can't decode byte 0xb5 in position 41"), naming no file."""
    folder = _small_sort(tmp_path / "ks", table=None)
    (folder / "cluster_group.tsv").write_bytes("cluster_id\tgroup\tnote\n0\tgood\t\n1\tnoise\t50 µV\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"ks/cluster_group\.tsv: expected UTF-8 text, byte 0xb5 on line 3 is not "
                                         r"UTF-8 .*; save it as UTF-8"):
        read_phy(folder)


@pytest.mark.parametrize("name", ["spike_times.npy", "spike_clusters.npy"])
def test_a_minus_one_written_as_uint64_is_named(tmp_path, name):
    """-1 cast to uint64 reads 2**64 - 1: in spike_times.npy it was taken for a spike 19.5 million years in and
    refused as "time_domain: (0, 6.1e+14) s leaves out 1 of 4 spikes" though no time_domain was given; in
    spike_clusters.npy it became cluster -1 (int64) without a word."""
    folder = _small_sort(tmp_path / "ks", table=None)
    values = np.load(folder / name).astype(np.int64)
    values[2] = -1
    np.save(folder / name, values.astype(np.uint64))
    expected = "sample indices up to 2\\*\\*53" if name == "spike_times.npy" else "cluster ids up to 2\\*\\*63 - 1"
    with pytest.raises(ValueError, match=rf"ks/{name}: expected {expected} .*, got 1 larger, such as "
                                         r"18446744073709551615 = 2\*\*64 - 1 \(a negative number written as uint64\?\)"):
        read_phy(folder)


@pytest.mark.parametrize("text", ["", "0\tgood\n1\tnoise\n"])
def test_a_cluster_table_without_its_header_is_named(tmp_path, text):
    """An empty cluster_group.tsv (Phy stopped while saving) or one that lost its header line was passed over
    without a word: the clusters the curator labelled 'noise' were read as units."""
    folder = _small_sort(tmp_path / "ks", table=text)
    with pytest.warns(UserWarning, match=r"read_phy: .*ks/cluster_group\.tsv has no 'cluster_id' column \(first line "
                                         + (r"'', the file is empty\)" if not text else r"'0\\tgood'\)")
                                         + r"; it is not read as a cluster table, so none of its labels"):
        rec = read_phy(folder)
    assert rec.unit_names == ["0", "1"]  # read as they are, said


def test_a_sample_rate_written_as_text_is_refused(tmp_path):
    """params.py with sample_rate = '30000' (quoted) was read as 30000 Hz; Phy keeps a number there. It is
    now refused naming params.py, the value and the expected form."""
    folder = _small_sort(tmp_path / "ks", table=None)
    (folder / "params.py").write_text("sample_rate = '30000'\n")
    with pytest.raises(ValueError, match=r"ks/params\.py: sample_rate: expected a number of Hz \(e\.g\. sample_rate = "
                                         r"30000\.0\), got the text '30000'; write it without quotes"):
        read_phy(folder)


def test_negative_int32_sample_indices_are_named_as_an_overflow(tmp_path):
    """A sort saving spike_times.npy as int32 wraps every sample past 2**31 - 1 (19.9 h at 30 kHz) to a
    negative index; the refusal named only 'expected non-negative integers'. It now says int32 overflow,
    the hours at params.py's rate and how to save the file."""
    folder = _small_sort(tmp_path / "ks", table=None)
    samples = np.array([10, 20, 2**31 + 5, 2**31 + 10], dtype=np.int64)
    np.save(folder / "spike_times.npy", samples.astype(np.int32))  # wraps the last two, as the sort's int32 did
    with pytest.raises(ValueError, match=r"ks/spike_times\.npy: expected non-negative integers, got values such as "
                                         r"\[-2147483643, -2147483638\] \(2 negative: int32 sample indices overflow "
                                         r"past 2\*\*31 - 1 samples, 19\.9 h at sample_rate 30000 Hz; .*int64"):
        read_phy(folder)
    np.save(folder / "spike_times.npy", np.array([10, -1, 30, 40], dtype=np.int64))  # not int32: no such hint
    with pytest.raises(ValueError, match=r"expected non-negative integers, got values such as \[-1\]$"):
        read_phy(folder)


def test_a_missing_raw_data_file_is_named_with_the_end_taken_from_the_last_spike(a2929, tmp_path):
    """params.py names the binary (Kilosort's temp_wh.dat) that often stays on the acquisition
    machine; without it the recording ended one sample after the last spike without a word."""
    folder = _write_phy(tmp_path / "ks", a2929)
    (folder / "temp_wh.dat").unlink()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = read_phy(folder, exclude_groups=())
    said = [str(m.message) for m in w if "not found" in str(m.message)]
    end = (np.round(a2929.spike_times[-1] * FS) + 1) / FS
    assert rec.time_domain == (0.0, pytest.approx(end))
    assert said == [f"read_phy: the raw data file params.py names (dat_path) was not found: {folder / 'temp_wh.dat'}; "
                    f"the recording's end was taken from the last spike, {end:.6f} s (sample "
                    f"{int(np.round(a2929.spike_times[-1] * FS))} + 1; pass time_domain=(0, n_samples / sample_rate) "
                    "for the whole recording)"], [str(m.message) for m in w]
    # no file named (an empty name), or the extent given: nothing to say
    (folder / "params.py").write_text((folder / "params.py").read_text().replace("'temp_wh.dat'", "''"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_phy(folder, exclude_groups=())
        _write_phy(folder, a2929)
        (folder / "temp_wh.dat").unlink()
        read_phy(folder, exclude_groups=(), time_domain=(0.0, 2 * end))


def test_mua_clusters_are_kept_and_counted_in_one_warning(tmp_path):
    """Break test: 'noise' clusters were left out and counted, 'mua' ones kept without a word. They are
    kept (the usual default), counted in the same way, one cluster said in the singular; leaving
    them out, or exclude_groups=() (every cluster asked for), says nothing of them."""
    rec = from_arrays(np.array([0.01, 0.02, 0.03, 0.05, 0.07]), np.array([0, 1, 1, 2, 2]), session="s")
    folder = _write_phy(tmp_path / "ks", rec)  # clusters 5 good, 8 mua (2 spikes), 11 noise (2 spikes)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = read_phy(folder)
    assert got.unit_names == ["5", "8"]
    assert [str(w.message) for w in seen] == [
        "read_phy: left out 1 cluster labelled 'noise' (2 spikes; exclude_groups=() keeps them)",
        "read_phy: kept 1 cluster labelled 'mua' (multi-unit activity: each may hold the spikes of several neurons; "
        "2 spikes); exclude_groups=('noise', 'mua') leaves them out"]
    for groups, units in ((("noise", "mua"), ["5"]), ((), ["5", "8", "11"])):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert read_phy(folder, exclude_groups=groups).unit_names == units
        assert not any("kept 1 cluster labelled 'mua'" in str(w.message) for w in seen), [str(w.message) for w in seen]
