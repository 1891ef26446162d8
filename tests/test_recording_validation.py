"""SpikeRecording validation, exact NWB write -> read round trips, and odd files.

Break-the-API report findings 5 (NWB round trip), 11 (validation gaps) and 15 (odd files give
library tracebacks). Files come from ../shared/data (or are damaged copies of what the readers
make of them); pure validation uses small synthetic recordings.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from hf_neuroformer.io import from_arrays, from_binned_counts, from_dataframe, load_recording, read_npz, read_nwb, write_npz, write_nwb
from hf_neuroformer.io.binned import MAX_TOTAL_SPIKES
from hf_neuroformer.recording import BehaviourSeries, EventSeries, RecordingValidationError, SpikeRecording, Stimulus

from tiny_configs import float32_notes, quiet, set_npz_session, set_nwb_session_id, store_as_float32

ALLEN = "allen_vcn_gratings"
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
ZHENG = "zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"
STEINMETZ = "steinmetz2019_spcount/NS_sp_count.mat"




def _small(**kw):
    base = dict(spike_times=[0.1, 0.2, 0.3, 0.35], unit_ids=[0, 1, 0, 2], time_domain=(0.0, 1.0))
    base.update(kw)
    return SpikeRecording(**base)


# ------------------------------------------------------------------ finding 11: validation
@pytest.mark.parametrize("kwargs, field", [
    (dict(epochs={"late": (5.0, 10.0)}), "epochs['late']"),
    (dict(epochs={"open": (0.0, np.inf)}), "epochs['open']"),
    (dict(epochs={"early": (-1.0, 0.5)}), "epochs['early']"),
    (dict(trials=[[0.0, 0.4], [5.0, 6.0]]), "trials[1]"),
    (dict(trials=[[0.0, 0.4], [0.5, np.inf]]), "trials[1]"),
    (dict(trials=[[0.5, 0.9], [0.0, 0.4]]), "trials[1]"),
    (dict(trial_info={"side": np.array([1, 2, 3])}), "trial_info"),
    (dict(unit_ids=["a", "b", "a", "c"]), "unit_ids"),
    (dict(unit_ids=np.array(["0", 1, 0, 2], dtype=object)), "unit_ids"),
    (dict(unit_ids=[True, False, True, False]), "unit_ids"),
    (dict(unit_names="abc"), "unit_names"),
    (dict(unit_names=["a", "b", "c"], unit_areas="ca1"), "unit_areas"),
])
def test_recording_refuses_with_the_field_named(kwargs, field):
    with pytest.raises(RecordingValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        _small(**kwargs)


def test_repeated_unit_names_are_named_with_their_indices():
    # the message said only "found duplicates": which of 300 names, it did not say
    with pytest.raises(RecordingValidationError, match=r"unit_names: .*repeated: 'b' at indices \[1, 2\]"):
        _small(unit_names=["a", "b", "b"])


def test_unit_names_empty_or_of_whitespace_only_are_refused_naming_the_units():
    """A unit name '' or '  ' was kept and gave the unit token '<session>/', refused only when the
    recording was tokenized; the recording refuses it, naming the field and the units."""
    with pytest.raises(RecordingValidationError, match=r"^unit_names: expected a name for every unit, unit 1 has '' "
                                                       r"\(1 of 3 units have none\); .*name every unit"):
        _small(unit_names=["a", "", "c"])
    with pytest.raises(RecordingValidationError, match=r"^unit_names: expected a name for every unit, unit 0 has ' ' "
                                                       r"\(2 of 3 units have none: units 0, 2\)"):
        _small(unit_names=[" ", "b", "\t"])


def test_unit_names_holding_whitespace_are_refused_not_merged_nor_renamed(shared_data):
    """SpikeRecording(unit_names=["a", "a "]) or ["a b"] was kept as given, while read_nwb and read_npz
    replace whitespace in a file's names (with a warning), and the tokenizer refused the recording only
    when its units were added. The caller's names are now refused, naming unit_names, the first such
    unit and every one, so that no name changes behind the caller's back and "a", "a " are never one
    unit; the fix the message gives (the readers' rule) keeps the names apart and tokenizes."""
    import warnings

    from hf_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.io import read_nwb
    from hf_neuroformer.recording import names_without_whitespace

    with pytest.raises(RecordingValidationError, match=r"^unit_names: expected names without whitespace \(a unit token "
                                                       r"'<session>/<unit name>' cannot hold it\), unit 1 is 'a ' "
                                                       r"\(1 of 3 units hold whitespace\); rename them"):
        _small(unit_names=["a", "a ", "c"])
    with pytest.raises(RecordingValidationError, match=r"unit 0 is 'a b' \(2 of 3 units hold whitespace: units 0, 2\)"):
        _small(unit_names=["a b", "b", "c\u00a0d"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data(A2929))
    names = list(rec.unit_names)
    names[1] = names[0] + " "  # a padded copy of unit 0's name
    with pytest.raises(RecordingValidationError, match=rf"unit 1 is {names[1]!r}"):
        dataclasses.replace(rec, unit_names=names)
    fixed = dataclasses.replace(rec, unit_names=names_without_whitespace(names)[0])  # the fix the message gives
    assert fixed.n_units == rec.n_units and len(set(fixed.unit_names)) == rec.n_units
    assert len(NeuroformerTokenizer().add_units(fixed)) == rec.n_units


def test_a_session_holding_whitespace_is_refused_like_a_unit_name(shared_data):
    """SpikeRecording(session="a b") was kept, while the readers replace whitespace in a session read
    from a file and the constructor refuses unit names holding it: the tokenizer refused the recording
    only when its units were added. The session is now refused, naming session and the fix (the
    readers' rule), which tokenizes; sessions the readers make from a file still construct."""
    from hf_neuroformer import NeuroformerTokenizer

    with pytest.raises(RecordingValidationError, match=r"^session: expected a name without whitespace \(a unit token "
                                                       r"'<session>/<unit name>' cannot hold it\), got 'a b'; "
                                                       r"rename it, e.g. session='a_b'"):
        _small(session="a b")
    with pytest.raises(RecordingValidationError, match=r"got ' Mouse 12\\tday 3 '; rename it, e.g. "
                                                       r"session='Mouse_12_day_3'"):
        _small(session=" Mouse 12\tday 3 ")
    with pytest.raises(RecordingValidationError, match=r"got '   '; rename it, e.g. session='session0'"):
        _small(session="   ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data(A2929))
    assert not any(c.isspace() for c in rec.session)
    with pytest.raises(RecordingValidationError, match=rf"got '{rec.session} copy'; rename it, e.g. "
                                                       rf"session='{rec.session}_copy'"):
        dataclasses.replace(rec, session=f"{rec.session} copy")
    with warnings.catch_warnings(), pytest.raises(RecordingValidationError, match=r"^session: .* got 'A2929 200711'"):
        warnings.simplefilter("ignore")
        read_nwb(shared_data(A2929), session="A2929 200711")  # a session= given is kept as given, so refused
    fixed = dataclasses.replace(rec, session=f"{rec.session}_copy")  # the fix the message gives
    assert len(NeuroformerTokenizer().add_units(fixed)) == rec.n_units


def test_a_session_holding_a_slash_is_refused_and_unit_names_may_hold_one(shared_data, tmp_path):
    """SpikeRecording(session="a/b") was kept and refused only when the tokenizer added its units:
    '/' ends the session in a unit token '<session>/<unit name>', so session 'm/1' with unit '2' and
    session 'm' with unit '1/2' gave one token 'm/1/2'. The session is now refused, naming session,
    the value and the fix (the readers' rule). A unit name may hold '/' (the session is read back up
    to a token's first '/'): the constructor and the readers keep 'shank1/c1' as it is, and it
    tokenizes."""
    from hf_neuroformer import NeuroformerTokenizer

    with pytest.raises(RecordingValidationError, match=r"^session: expected a name without '/' \(it separates the "
                                                       r"session from the unit name in a unit token '<session>/<unit "
                                                       r"name>'\), got 'a/b'; rename it, e.g. session='a_b'"):
        _small(session="a/b")
    # whitespace and '/': the fix the message gives replaces both, so it is not refused in turn
    with pytest.raises(RecordingValidationError, match=r"got 'm 1/2'; rename it, e.g. session='m_1_2'"):
        _small(session="m 1/2")
    with warnings.catch_warnings(), pytest.raises(RecordingValidationError, match=r"^session: .* got 'A2929/200711'"):
        warnings.simplefilter("ignore")
        read_nwb(shared_data(A2929), session="A2929/200711")  # a session= given is kept as given, so refused
    rec = from_arrays([0.1, 0.2, 0.3], [0, 1, 2], unit_names=["shank1/c1", "1/2", "c3"], session="m",
                      time_domain=(0.0, 1.0))
    assert rec.unit_names == ["shank1/c1", "1/2", "c3"]
    back = read_npz(write_npz(rec, tmp_path / "r.npz"))
    assert (back.session, back.unit_names) == ("m", rec.unit_names)
    tok = NeuroformerTokenizer()
    tok.add_units(back)
    tokens = tok.recording_unit_tokens(back)
    assert tokens == ["m/shank1/c1", "m/1/2", "m/c3"]
    assert {NeuroformerTokenizer.session_of(t) for t in tokens} == {"m"}


def test_an_empty_session_is_refused_and_an_older_files_empty_session_reads_as_its_stem(tmp_path):
    """SpikeRecording(session="") was kept, and its unit tokens were '/unit0', ... (no session), refused
    only when the tokenizer added its units; a session of whitespace was already refused here. It is now
    refused the same way, naming session, the token it would give and a fix. write_nwb / write_npz kept an
    empty session before: such a file reads back with the file's stem, as one with an empty identifier."""
    from hf_neuroformer import NeuroformerTokenizer

    match = (r"^session: expected a session name, got '', which gives unit tokens without a session \('/unit0'; a "
             r"unit token is '<session>/<unit name>'\); name it, e.g. session='session0'")
    with pytest.raises(RecordingValidationError, match=match):
        _small(session="")
    rec = _small(session="m")
    with pytest.raises(RecordingValidationError, match=match):
        dataclasses.replace(rec, session="")
    older = dataclasses.replace(rec)
    older.session = ""  # set in place, as a file written before holds it
    with pytest.raises(RecordingValidationError, match=match):  # validate() checks it too: write_nwb wrote it
        older.validate()
    nwb_path = quiet(write_nwb, rec, tmp_path / "older.nwb")
    set_nwb_session_id(nwb_path, "")  # as write_nwb wrote an empty session before validate() refused it
    npz_path = set_npz_session(write_npz(rec, tmp_path / "older.npz"), "")  # as write_npz wrote it, likewise
    for path in (npz_path, nwb_path):
        back = quiet(read_npz if path.suffix == ".npz" else read_nwb, path)
        assert back.session == "older", path
        assert NeuroformerTokenizer().add_units(back) == [3, 4, 5]


def test_validate_refuses_a_session_set_after_construction_as_the_constructor_does(tmp_path):
    """SpikeRecording(session="") (or "a b", "a/b") is refused, but the same session set afterwards
    passed validate(), and write_nwb (which validates) wrote it; validate() now refuses it with the
    constructor's message. A file whose session is empty and whose stem is whitespace only read back
    with the session "unit" (a unit's name, from the unit-name rule): it is "session0" now, the
    constructor's default and the name its message suggests."""
    rec = _small(session="m")
    for bad, said in (("", r"^session: expected a session name, got ''"),
                      ("a b", r"^session: expected a name without whitespace .* session='a_b'"),
                      ("a/b", r"^session: expected a name without '/' .* session='a_b'")):
        changed = dataclasses.replace(rec)
        changed.session = bad
        with pytest.raises(RecordingValidationError, match=said):
            changed.validate()
        with pytest.raises(RecordingValidationError, match=said):
            write_nwb(changed, tmp_path / "never.nwb")
        assert not (tmp_path / "never.nwb").exists()
    # as an older file holds it (write_npz stored the session as given before it validated the recording)
    back = read_npz(set_npz_session(write_npz(rec, tmp_path / "  .npz"), ""))
    assert back.session == "session0"


def test_validate_refuses_unit_names_set_after_construction_as_the_constructor_does(tmp_path):
    """SpikeRecording(unit_names=["a b", ""]) is refused, but the same names set afterwards passed
    validate(), and write_nwb / write_npz (which validate) wrote them; validate() now refuses them with
    the constructor's message, and neither writer leaves a file."""
    rec = _small(unit_names=["a", "b", "c"], session="m")
    for bad, said in ((["a b", "", "c"], r"^unit_names: expected a name for every unit, unit 1 has ''"),
                      (["a", "b c", "c"], r"^unit_names: expected names without whitespace .* unit 1 is 'b c'"),
                      (["a", " ", "\t"], r"^unit_names: expected a name for every unit, unit 1 has ' ' "
                                          r"\(2 of 3 units have none: units 1, 2\)")):
        with pytest.raises(RecordingValidationError, match=said):
            _small(unit_names=bad, session="m")  # the constructor's message, which validate() must match
        changed = dataclasses.replace(rec)
        changed.unit_names = list(bad)
        with pytest.raises(RecordingValidationError, match=said):
            changed.validate()
        for write, path in ((write_nwb, tmp_path / "never.nwb"), (write_npz, tmp_path / "never.npz")):
            with pytest.raises(RecordingValidationError, match=said):
                write(changed, path)
            assert not path.exists(), path


def test_a_bool_among_numbers_is_refused_not_read_as_one():
    """np.asarray([0, True]) is array([0, 1]), so unit_ids=[0, True] made the second spike unit 1 and
    trials=[[0, True]] the trial (0, 1) s, while an array of bools was refused: a bool among the numbers
    of a list is refused too, naming the field, the spike (row) and the value."""
    t = np.array([0.1, 0.2])
    with pytest.raises(RecordingValidationError, match=r"^unit_ids: expected integer unit indices in \[0, n_units\), "
                                                       r"spike 1 has the bool True \(numpy would read it as the unit "
                                                       r"index 1\)"):
        SpikeRecording(spike_times=t, unit_ids=[0, True])
    with pytest.raises(RecordingValidationError, match=r"^unit_ids: .* spike 0 has the bool False"):
        SpikeRecording(spike_times=t, unit_ids=(np.False_, 1))
    with pytest.raises(RecordingValidationError, match=r"^trials: expected \(n, 2\) \[start, stop\) seconds, got the "
                                                       r"bool True in row 1 \(numpy would read it as 1.0 s\)"):
        SpikeRecording(spike_times=t, unit_ids=[0, 1], time_domain=(0.0, 2.0), trials=[[0.0, 0.5], [0.5, True]])
    with pytest.raises(RecordingValidationError, match=r"^epoch_intervals\['a'\]: .* got the bool True in row 0"):
        SpikeRecording(spike_times=t, unit_ids=[0, 1], time_domain=(0.0, 2.0), epochs={"a": (0.0, 2.0)},
                       epoch_intervals={"a": [0, True]})
    ok = SpikeRecording(spike_times=t, unit_ids=[0, 1], time_domain=(0.0, 2.0), trials=[[0, 1]])
    assert ok.unit_ids.tolist() == [0, 1] and ok.trials.tolist() == [[0.0, 1.0]]


def test_unsorted_trials_error_says_how_to_sort():
    with pytest.raises(RecordingValidationError, match="ordered by start") as e:
        _small(trials=[[0.5, 0.9], [0.0, 0.4]], trial_info={"k": np.array([1, 2])})
    assert "argsort" in str(e.value)


@pytest.mark.parametrize("times, units, msg", [
    # 'expected finite values' where SpikeRecording (binning.not_finite_message) says 'expected finite times'
    ([0.3, np.nan, 0.1], [0, 0, 0], r"^spike_times: expected finite times, spike 1 \(in the order given\) is nan "
                                    r"\(1 non-finite in all\)$"),
    ([0.3, 0.2, -0.1], [0, 0, 0], r"^spike_times: expected times >= 0 s, spike 2 \(in the order given\) is at -0.1 s "
                                  r"\(1 negative in all\); spike times are seconds on one session clock .*trial's event"),
    ([0.1, 0.3, 0.2], [0, 1.5, 0], r"unit_ids: expected integer unit indices, got non-integer values \(spike 1 has 1.5"),
    # ids mixing numbers and a label: spike 0 was named, its id read as the text '0'
    ([0.1, 0.3, 0.2], [0, 1, "tt2_u1"], r"unit_ids: expected integer unit indices in \[0, n_units\), got dtype <U21 "
                                        r"\(spike 2 has 'tt2_u1'\)"),
    ([0.1, 0.3, 0.2], np.array([0, "tt2_u1", 1], dtype=object), r"got dtype object \(spike 1 has 'tt2_u1'\)"),
])
def test_from_arrays_names_the_bad_spike_in_the_order_given(times, units, msg):
    # the spikes used to be sorted first: a NaN sorted last and 1.5 became "spike 0"
    with pytest.raises(RecordingValidationError, match=msg):
        SpikeRecording.from_unsorted(times, units)


def test_none_for_a_mapping_field_is_none_and_a_non_mapping_is_named():
    """epochs=None (or behaviour / events / trial_info / epoch_intervals) failed with "'NoneType'
    object has no attribute 'items'"; a list of pairs where a dict belongs failed the same way."""
    rec = SpikeRecording(np.array([0.1, 0.2]), np.array([0, 0]), epochs=None, trial_info=None, behaviour=None,
                         events=None, epoch_intervals=None)
    assert rec.epochs == {} and rec.behaviour == {} and rec.events == {} and rec.trial_info == {}
    assert rec.select_units([0]).n_spikes == 2
    with pytest.raises(RecordingValidationError, match=r"epochs: expected a dict \(name -> \(start, stop\) seconds\) "
                                                       r"or None, got list"):
        SpikeRecording(np.array([0.1]), np.array([0]), epochs=[("wake", (0.0, 1.0))])
    from types import MappingProxyType

    ro = SpikeRecording(np.array([0.1]), np.array([0]), time_domain=(0.0, 1.0),
                        epochs=MappingProxyType({"wake": (0.0, 1.0)}))
    assert ro.epochs == {"wake": (0.0, 1.0)} and isinstance(ro.epochs, dict)


def test_negative_times_in_a_recording_say_which_clock_is_expected():
    """Trial-aligned times (-0.5 s before each onset) were refused with 'expected times >= 0 s' alone."""
    with pytest.raises(RecordingValidationError, match=r"spike 0 is at -0.5 s \(1 negative in all\); spike times are "
                                                       r"seconds on one session clock .*added back .*shifting by its "
                                                       r"first time"):
        SpikeRecording(np.array([-0.5, 0.2]), np.array([0, 0]))


@pytest.mark.parametrize("times", [[0.3, -0.2, -0.1, 0.4], [0.3, np.nan, np.inf, 0.4]])
def test_from_unsorted_and_the_constructor_word_a_bad_spike_time_alike(times):
    """from_unsorted checks the times before it sorts them (to name the spike by its position in the
    arrays given) and had its own wording: its negative-time message counted the negative spikes,
    the constructor's (validate's) did not. Both now come from one helper: the same message, the
    count in both, from_unsorted's spike index marked as in the order given."""
    t = np.array(times)
    with pytest.raises(RecordingValidationError) as given:
        SpikeRecording.from_unsorted(t, np.zeros(4, dtype=int))
    order = np.argsort(t, kind="stable")  # sorted as a caller would: the bad spikes move
    with pytest.raises(RecordingValidationError) as built:
        SpikeRecording(t[order], np.zeros(4, dtype=int))
    if np.isnan(times[1]):
        assert str(given.value) == ("spike_times: expected finite times, spike 1 (in the order given) is nan "
                                    "(2 non-finite in all)")
        assert str(built.value) == "spike_times: expected finite times, spike 2 is inf (2 non-finite in all)"
    else:
        hint = str(given.value).split("; ", 1)[1]
        assert str(given.value) == ("spike_times: expected times >= 0 s, spike 1 (in the order given) is at -0.2 s "
                                    f"(2 negative in all); {hint}")
        assert str(built.value) == f"spike_times: expected times >= 0 s, spike 0 is at -0.2 s (2 negative in all); {hint}"
        assert hint.startswith("spike times are seconds on one session clock")


def test_multi_dimensional_spike_arrays_are_refused_not_flattened():
    # (2, 3) times and (3, 2) unit ids have the same size: flattened, each time got another spike's unit
    times = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    with pytest.raises(RecordingValidationError, match=r"spike_times: expected a 1-D array \(n_spikes,\), got shape "
                                                       r"\(2, 3\)"):
        SpikeRecording.from_unsorted(times, np.zeros((3, 2), dtype=int))
    with pytest.raises(RecordingValidationError, match=r"unit_ids: expected a 1-D array .*got shape \(3, 2\)"):
        SpikeRecording.from_unsorted(times.reshape(-1), np.zeros((3, 2), dtype=int))
    # MATLAB-style column and row vectors are n spikes
    rec = SpikeRecording.from_unsorted(times.reshape(-1, 1), np.arange(6).reshape(1, -1) % 2)
    assert rec.n_spikes == 6 and rec.unit_ids.tolist() == [0, 1, 0, 1, 0, 1]


def test_ragged_spike_trains_and_ids_from_one_get_a_pointed_message(tmp_path):
    from hf_neuroformer.io import from_arrays

    trains = [np.array([0.1, 0.5]), np.array([0.2, 0.3, 0.9])]  # one array per unit: numpy's raw error before
    with pytest.raises(RecordingValidationError, match=r"spike_times: expected one flat array .*ragged.*"
                                                       r"np.concatenate\(trains\)"):
        SpikeRecording.from_unsorted(trains, [0, 1])
    with pytest.warns(UserWarning, match=r"unit_ids: the smallest is 1, so unit 0 is kept as a unit without "
                                         r"spikes.*subtract 1"):
        rec = from_arrays([0.1, 0.2, 0.3], [1, 2, 1])
    assert rec.n_units == 3 and rec.unit_ids.tolist() == [1, 2, 1]  # kept as given
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named units: the ids are the user's choice
        from_arrays([0.1, 0.2, 0.3], [1, 2, 1], unit_names=["silent", "a", "b"])


def test_spike_times_spanning_days_are_flagged_as_probably_not_seconds():
    from hf_neuroformer.io import from_arrays

    rng = np.random.default_rng(0)
    seconds = np.sort(rng.uniform(0, 1800.0, 500))  # a 30-min session
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_arrays(seconds, rng.integers(0, 3, 500))
    with pytest.warns(UserWarning, match=r"spike_times: they span .* s \(20\.\d days\) and are read as seconds; "
                                         r"if they are in milliseconds"):
        rec = from_arrays(seconds * 1000.0, rng.integers(0, 3, 500))
    assert rec.spike_times.max() == pytest.approx(seconds.max() * 1000.0)  # kept as given
    # a 1-min session in ms spans 60000 "s", under a day: it trained silently on ~400k empty windows
    minute = np.sort(rng.uniform(0, 60.0, 3000))
    with pytest.warns(UserWarning, match=r"spike_times: they span .* h\) at a mean of .* spikes/s per unit.*"
                                         r"if they are in milliseconds"):
        from_arrays(minute * 1000.0, rng.integers(0, 10, 3000))
    with warnings.catch_warnings():  # a sparse but real 2-h session (0.5 Hz per unit) is not flagged
        warnings.simplefilter("error")
        from_arrays(np.sort(rng.uniform(0, 7200.0, 36000)), rng.integers(0, 10, 36000))


def test_trials_before_the_first_spike_say_how_to_keep_them(shared_data):
    """Spikes and trials given to from_arrays: a trial starting before the first spike was refused as
    outside the time domain, without saying that the default domain spans the spikes only."""
    from hf_neuroformer.io import from_arrays

    rec = quiet(read_nwb, shared_data(A2929)).restrict(600.0, 660.0)
    first = float(rec.spike_times[0])
    trials = np.array([[first - 0.5, first + 1.0], [10.0 + first, 12.0 + first]])
    with pytest.raises(RecordingValidationError, match=r"trials\[0\]: expected a trial inside the time domain .*; pass "
                                                       r"time_domain=\(start, stop\) of the whole recording \(without it "
                                                       r"the time domain spans the spikes only"):
        from_arrays(rec.spike_times, rec.unit_ids, trials=trials)
    out = from_arrays(rec.spike_times, rec.unit_ids, trials=trials, time_domain=(599.0, 660.0))  # the way it names
    assert len(out.trials) == 2


def test_trials_and_epochs_touching_the_domain_edges_are_fine():
    rec = _small(epochs={"all": (0.0, 1.0), "1": (0.0, 0.5), "": (0.5, 1.0)},
                 trials=[[0.0, 0.5], [0.5, 1.0], [0.5, 0.7]], trial_info={"k": np.array([1, 2, 3])})
    assert rec.select_epoch("1").n_spikes == 4 and rec.select_epoch("").n_spikes == 0


def test_restrict_counts_partly_covered_trials(shared_data):
    zheng = quiet(read_nwb, shared_data(ZHENG))
    tr = zheng.trials
    a, b = 0.5 * (tr[10, 0] + tr[10, 1]), 0.5 * (tr[20, 0] + tr[20, 1])  # cut through trials 10 and 20
    partly = int(np.sum((tr[:, 0] < b) & (tr[:, 1] > a) & ~((tr[:, 0] >= a) & (tr[:, 1] <= b))))
    assert partly >= 2
    with pytest.warns(UserWarning, match=f"dropped {partly} of {len(tr)} trials"):
        part = zheng.restrict(a, b)
    inside = (tr[:, 0] >= a) & (tr[:, 1] <= b)
    np.testing.assert_array_equal(part.trials, tr[inside])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an epoch that holds whole trials drops nothing and says nothing
        zheng.select_epoch("encoding_table")


def test_restrict_past_the_recorded_time_does_not_extend_the_time_domain(shared_data):
    """restrict(39, 45) of the Allen recording (time domain [0, 40) s) returned time domain
    (39, 45): 5 s that were never recorded counted as recorded, so the processor accepted
    windows there and read them as silence."""
    import hf_neuroformer as nf
    from hf_neuroformer.io.arrays import read_allen_gratings

    from tiny_configs import small_config

    rec = quiet(read_allen_gratings, shared_data(ALLEN)).select_units(range(5))
    assert rec.time_domain == (0.0, 40.0)
    part = quiet(rec.restrict, 39.0, 45.0)
    assert part.time_domain == (39.0, 40.0)
    assert quiet(rec.restrict, -1.0, 2.0).time_domain == (0.0, 2.0)
    assert quiet(rec.restrict, 1.0, 2.0).time_domain == (1.0, 2.0)
    tok = nf.NeuroformerTokenizer.from_config(small_config())
    tok.add_units(part)
    cfg = small_config(vocab_size=len(tok))
    with pytest.raises(ValueError, match="not inside the recorded time"):
        nf.NeuroformerProcessor.from_config(tok, cfg)(part, [42.0])


def test_select_units_refuses_bool_and_float_indices(shared_data):
    """select_units([0.5]) took unit 0 and select_units([True]) unit 1, silently."""
    rec = quiet(load_recording, shared_data(STEINMETZ))
    for bad in (0.5, 1.0, True, np.True_, np.float64(2.0)):
        with pytest.raises(ValueError, match="units: expected unit indices"):
            rec.select_units([bad])
    assert rec.select_units([np.int64(3), 4]).unit_names == [rec.unit_names[3], rec.unit_names[4]]


def test_binned_counts_refuses_inf_bins_and_reversed_ranges():
    rec = _small()
    with pytest.raises(ValueError, match="bin_size"):
        rec.binned_counts(np.inf)
    with pytest.raises(ValueError, match="stop >= start"):
        rec.binned_counts(0.1, start=1.0, stop=0.0)
    with pytest.raises(ValueError, match="finite"):
        rec.binned_counts(0.1, start=0.0, stop=np.inf)
    assert rec.binned_counts(0.1).sum() == 4


def test_binned_counts_of_one_continuous_session_say_how_to_pass_them(shared_data):
    """(bins, units) counts of one session were refused as 'expected a 3-D array' without the way in."""
    rec = quiet(read_nwb, shared_data(A2929)).restrict(600.0, 630.0)
    counts = rec.binned_counts(0.01)  # (3000 bins, 15 units)
    with pytest.raises(RecordingValidationError, match=r"counts: expected a 3-D array \(trials, bins, units\), got shape "
                                                       r"\(3000, 15\); one continuous recording of 3000 bins x 15 units "
                                                       r"is one trial: pass counts\[None\]"):
        from_binned_counts(counts, 0.01)
    assert from_binned_counts(counts[None], 0.01).n_spikes == int(counts.sum())


def test_binned_counts_without_trials_or_bins_are_refused_naming_the_counts():
    """(0, 7, 3) counts failed deep inside as "time_domain: expected ... stop > start, got (0.0, 0.0)"
    and (2, 0, 3) as a time_support error, naming neither the counts nor what is missing; (3, 5, 0)
    counts gave a recording of no unit, which from_arrays and read_nwb refuse."""
    for shape, what in (((0, 7, 3), "no trials"), ((2, 0, 3), "no bins"), ((3, 5, 0), "no units")):
        with pytest.raises(RecordingValidationError, match=rf"^counts: expected at least one trial, one bin and one "
                                                           rf"unit \(trials, bins, units\), got shape {re.escape(str(shape))} "
                                                           rf"\({what}\)"):
            from_binned_counts(np.zeros(shape), 0.01)


def test_binned_counts_put_a_spike_on_an_edge_in_the_bin_it_starts():
    # (0.3 - 0.0) / 0.1 is 2.999...: the spike at 0.3 s was counted in bin 2, [0.2, 0.3)
    rec = SpikeRecording(np.array([1.0 - 1e-10, 1.3, 1.7]), np.array([0, 0, 0]), time_domain=(0.0, 3.0))
    counts = rec.binned_counts(0.1, start=1.0, stop=2.0)[:, 0]
    assert counts.tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]  # the spike before start is in no bin


def test_every_reader_still_loads_the_shared_recordings(shared_data):
    """The stricter validation refuses none of the real recordings (and their epochs)."""
    a = quiet(load_recording, shared_data(A2929))
    assert a.n_spikes == 98794 and {"sleep", "wake"} <= set(a.epochs)
    for name in a.epochs:
        quiet(a.select_epoch, name)
    nel = quiet(load_recording, shared_data("nelpy_hippocampus/linear-track"))
    assert nel.n_units == 31 and set(nel.epochs) == {"run", "rest"}
    assert quiet(load_recording, shared_data(STEINMETZ)).trials.shape == (247, 2)
    assert load_recording(shared_data(ALLEN)).trials.shape == (200, 2)
    z = quiet(load_recording, shared_data(ZHENG))
    assert z.trials.shape == (450, 2) and np.all(np.diff(z.trials[:, 0]) >= 0)


# ------------------------------------------------------------------ finding 5: NWB round trip
def _assert_same(a: SpikeRecording, b: SpikeRecording):
    np.testing.assert_array_equal(a.spike_times, b.spike_times)
    np.testing.assert_array_equal(a.unit_ids, b.unit_ids)
    assert a.unit_names == b.unit_names and a.unit_areas == b.unit_areas
    assert list(a.epochs.items()) == list(b.epochs.items())
    assert a.session == b.session and a.time_domain == b.time_domain
    np.testing.assert_array_equal(a.trials, b.trials)
    assert sorted(a.trial_info) == sorted(b.trial_info)
    for k in a.trial_info:
        assert list(a.trial_info[k]) == list(b.trial_info[k]), k
    sa, sb = a.stimulus, b.stimulus
    assert sa.names == sb.names and sa.description == sb.description
    np.testing.assert_array_equal(sa.ids, sb.ids)
    np.testing.assert_array_equal(sa.intervals, sb.intervals)
    assert sorted(a.events) == sorted(b.events)
    for k in a.events:
        np.testing.assert_array_equal(a.events[k].times, b.events[k].times)


def test_nwb_round_trip_is_exact_for_digit_and_empty_names_and_a_digit_session(shared_data, tmp_path):
    allen = load_recording(shared_data(ALLEN)).select_units(range(20)).restrict(0.0, 4.0)  # trials 0..19
    stim = allen.stimulus
    keep = stim.ids != 1  # id 1 ("45deg") keeps its name but no interval
    rec = dataclasses.replace(
        allen,
        epochs={"1": (0.0, 2.0), "2": (2.0, 4.0), "": (1.0, 3.0), "007": (0.5, 0.7)},
        session="0",
        stimulus=Stimulus(ids=stim.ids[keep], intervals=stim.intervals[keep], names=stim.names,
                          description="drifting gratings, 4 orientations"),
        events={"onsets": EventSeries(allen.trials[:, 0], allen.trial_info["orientation_deg"]),
                "none": EventSeries(np.zeros(0), np.zeros(0, dtype=object))},
    )
    assert rec.stimulus.names == ["0deg", "45deg", "90deg", "135deg"] and 1 not in rec.stimulus.ids
    back = quiet(read_nwb, write_nwb(rec, tmp_path / "allen.nwb"))
    _assert_same(rec, back)
    assert back.select_epoch("1").trials.shape == (10, 2) and back.select_epoch("").n_spikes > 0
    assert back.session == "0"  # an all-digit session stays text (an empty one is refused: see below)


def test_nwb_round_trip_keeps_trial_order_of_the_zheng_tasks(shared_data, tmp_path):
    """Trials of three interval tables, concatenated by start: trial i is the same trial after the trip."""
    z = quiet(read_nwb, shared_data(ZHENG))
    back = quiet(read_nwb, write_nwb(z, tmp_path / "z.nwb"))
    np.testing.assert_array_equal(back.trials, z.trials)
    for k in ("task", "stimCategory", "boundary_type"):
        assert [str(v) for v in back.trial_info[k]] == [str(v) for v in z.trial_info[k]], k
    assert back.session == z.session and list(back.epochs) == list(z.epochs)


def _foreign_file(path, epoch_tags, trial_starts):
    """An NWB file written by plain pynwb (not by write_nwb)."""
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="foreign", identifier="foreign-1",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.1, 0.5, 1.5])
    for i, tag in enumerate(epoch_tags):
        nwb.add_epoch(start_time=float(i), stop_time=float(i) + 1.0, tags=[tag])
    nwb.add_trial_column("k", "trial number in the file")
    for i, s in enumerate(trial_starts):
        nwb.add_trial(start_time=float(s), stop_time=float(s) + 0.2, k=i)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_foreign_files_keep_pynapple_row_numbers_and_sort_trials_with_a_count(tmp_path):
    path = _foreign_file(tmp_path / "f.nwb", ["0", "1"], [1.0, 0.2, 0.6])
    with pytest.warns(UserWarning, match=r"not ordered by start time; sorted them \(3 of 3 rows moved\)"):
        rec = read_nwb(path)
    assert {"epoch0", "epoch1"} <= set(rec.epochs) and not {"0", "1"} & set(rec.epochs)  # row numbers, not names
    np.testing.assert_array_equal(rec.trials[:, 0], [0.2, 0.6, 1.0])
    np.testing.assert_array_equal(rec.trial_info["k"], [1, 2, 0])  # info follows its trial
    assert rec.session == "foreign-1"


def test_nwb_spike_times_in_milliseconds_are_flagged_as_the_arrays_are(shared_data, tmp_path):
    """An NWB file whose conversion wrote milliseconds (a 10-min session) read as a week of seconds
    without a word (from_arrays warned about the same times); read_nwb names the file now."""
    from pynwb import NWBHDF5IO, NWBFile

    rec = quiet(read_nwb, shared_data(A2929)).select_units(range(4)).restrict(600.0, 1200.0)
    path = tmp_path / "ms.nwb"
    nwb = NWBFile(session_description="ms", identifier="ms", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    for u in range(rec.n_units):
        nwb.add_unit(spike_times=rec.spike_times[rec.unit_ids == u] * 1000.0)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    with pytest.warns(UserWarning, match=r"units: the spike times of .*ms.nwb: they span .* \(\d\.\d days\) and are "
                                         r"read as seconds; .*NWB spike_times are seconds"):
        out = read_nwb(path)
    assert out.n_spikes == rec.n_spikes  # kept as given
    with warnings.catch_warnings():  # the same file in seconds is not flagged
        warnings.simplefilter("error")
        nwb = NWBFile(session_description="s", identifier="s", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
        for u in range(rec.n_units):
            nwb.add_unit(spike_times=rec.spike_times[rec.unit_ids == u])
        with NWBHDF5IO(str(tmp_path / "s.nwb"), "w") as io:
            io.write(nwb)
        read_nwb(tmp_path / "s.nwb")


# ------------------------------------------------------------------ finding 15: odd files
def test_odd_nwb_files_name_the_file(shared_data, tmp_path):
    not_hdf5 = tmp_path / "labels.nwb"
    shutil.copyfile(shared_data(ALLEN) / "stim_label.npy", not_hdf5)
    with pytest.raises(RecordingValidationError, match="labels.nwb: expected an NWB file.*not HDF5"):
        load_recording(not_hdf5)
    with pytest.raises(RecordingValidationError, match="NS_sp_count.mat: expected an NWB file"):
        read_nwb(shared_data(STEINMETZ))  # HDF5, but MATLAB, not NWB


def test_odd_npz_files_name_the_file_and_key(shared_data, tmp_path):
    allen = load_recording(shared_data(ALLEN)).select_units(range(10))
    good = write_npz(allen, tmp_path / "good.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RecordingValidationError, match="cut.npz: expected a .npz archive"):
        read_npz(cut)
    text = tmp_path / "text.npz"
    shutil.copyfile(shared_data("README.md"), text)
    with pytest.raises(RecordingValidationError, match="text.npz: expected a .npz archive") as e:
        read_npz(text)
    assert "pickled" not in str(e.value)
    np.savez(tmp_path / "obj.npz", spike_times=np.array([0.1, "x"], dtype=object), unit_ids=[0, 1])
    with pytest.raises(RecordingValidationError, match="spike_times: .*pickled"):
        read_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "strs.npz", spike_times=np.array(["0.1", "0.2"]), unit_ids=[0, 1])
    with pytest.raises(RecordingValidationError, match="spike_times: expected numeric"):
        read_npz(tmp_path / "strs.npz")
    assert read_npz(good).n_spikes == allen.n_spikes


def test_dataframe_with_text_in_the_time_column(shared_data):
    rec = quiet(read_nwb, shared_data(A2929)).select_units(range(2)).restrict(0.0, 5.0)
    df = pd.DataFrame({"time": rec.spike_times.astype(object), "unit": rec.unit_ids})
    df.loc[3, "time"] = "n/a"
    with pytest.raises(RecordingValidationError, match=r"time: expected spike times in seconds \(numbers\), "
                                                       r"row 3 holds 'n/a' \(1 non-numeric rows in all\)"):
        from_dataframe(df)
    df.loc[3, "time"] = rec.spike_times[3]
    assert from_dataframe(df).n_spikes == rec.n_spikes


def test_dataframe_timedelta_times_are_seconds_and_datetimes_are_refused(shared_data):
    """A timedelta64 time column was read as nanoseconds taken for seconds (1.5 s became 1.5e9 s,
    with a hint to divide by 1000); a datetime64 column as epoch micro/nanoseconds."""
    rec = quiet(read_nwb, shared_data(A2929)).restrict(600.0, 660.0)
    df = pd.DataFrame({"time": pd.to_timedelta(rec.spike_times, unit="s"), "unit": rec.unit_ids})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'span days' warning
        out = from_dataframe(df)
    np.testing.assert_allclose(out.spike_times, rec.spike_times, atol=1e-9)
    df["time"] = pd.Timestamp("2024-05-01 10:00") + df["time"]
    with pytest.raises(RecordingValidationError, match=r"time: expected spike times in seconds from the recording's "
                                                       r"start, got clock times \(dtype datetime64.*subtract"):
        from_dataframe(df)


@pytest.mark.parametrize("counts", [np.full((1, 1, 1), 1e20), np.full((2, 1, 1), 2**62, dtype=np.int64),
                                    np.full((1, 1, 1), 2**63 + 5, dtype=np.uint64)])
def test_absurd_binned_counts_are_refused(counts):
    with pytest.raises(RecordingValidationError, match="counts: expected spike counts, got .* spikes in all"):
        from_binned_counts(counts, 0.01)
    assert MAX_TOTAL_SPIKES < 1e10


@pytest.mark.parametrize("kwargs", [dict(bin_size="0.01"), dict(bin_size=True), dict(bin_size=float("inf")),
                                    dict(bin_size=0.01, trial_gap=None), dict(bin_size=0.01, trial_gap=-0.1)])
def test_binned_counts_bin_size_and_trial_gap_that_are_not_seconds_are_refused_by_name(shared_data, kwargs):
    """The text '0.01' or None failed inside np.isfinite with numpy's TypeError ('ufunc isfinite not
    supported'), naming no argument, and bin_size=True made 1-s bins of the Steinmetz counts."""
    import h5py

    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][:3]
    name = "trial_gap" if "trial_gap" in kwargs else "bin_size"
    with pytest.raises(RecordingValidationError, match=rf"^{name}: expected a finite number of "
                                                       r"seconds >=? 0, got "):
        from_binned_counts(counts, **kwargs)


def test_a_bin_size_in_milliseconds_is_named_in_a_warning(shared_data):
    """bin_size=10 meant for the Steinmetz 10-ms bins laid the counts over 2.9 days of "seconds" without
    a word, where every reader of spike times warns of times that look like milliseconds. A bin_size of
    BIN_SIZE_WARNING_SECONDS (1 s) or more is now named in one warning with the fix, however few the
    trials: 3 trials of 10-"s" bins span 50 min and passed without a word under the spike-time rule
    (more than a day, or an hour at a slow rate). 0.01 s and 0.5 s give no warning; the spikes are kept."""
    import h5py

    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][:100]  # 100 trials of 101 bins: 1.2 days at 10 s a bin
    counts = counts[:, :, counts[:3].sum(axis=(0, 1)) > 0]  # units that fire in the first 3 trials: no warning of units that never fire
    for n_trials in (3, 100):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = from_binned_counts(counts[:n_trials], 10)
        said = [str(w.message) for w in caught]
        assert len(said) == 1 and re.match(r"^bin_size = 10 s: bins of 1 s or longer are probably a width in "
                                           r"milliseconds read as seconds \(kept as given\); if so, pass bin_size "
                                           r"\(and trial_gap\) in seconds", said[0]), said
        assert caught[0].filename == __file__  # at the caller's line
        assert rec.n_spikes == int(counts[:n_trials].sum())
    from hf_neuroformer.io.binned import BIN_SIZE_WARNING_SECONDS

    with pytest.warns(UserWarning, match=r"^bin_size = 1 s: bins of 1 s or longer"):
        from_binned_counts(counts[:3], BIN_SIZE_WARNING_SECONDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_binned_counts(counts, 0.01)
        from_binned_counts(counts[:3], 0.5)


# ------------------------------------------------------------------ behaviour series given by hand
def test_behaviour_series_that_are_not_one_or_two_dimensional_numbers_are_refused_by_name(shared_data):
    """A tuple in place of a BehaviourSeries failed in validate() with "'tuple' object has no
    attribute 'timestamps'"; text values with numpy's "could not convert string to float"; and
    (n, 2, 2) values were accepted, then failed deep in decoding ("too many indices for array")."""
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.recording import BehaviourSeries

    rec = quiet(load_recording, shared_data(A2929), epoch="wake")
    ry = rec.behaviour["ry"]
    ts, v = ry.timestamps[:400], ry.values[:400]
    base = dict(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                time_domain=rec.time_domain)
    with pytest.raises(RecordingValidationError, match=r"behaviour\['hd'\]: expected a BehaviourSeries"):
        SpikeRecording(**base, behaviour={"hd": (ts, v)})
    with pytest.raises(RecordingValidationError, match=r"behaviour\['hd'\]\.values: expected \(n_samples,\)"):
        SpikeRecording(**base, behaviour={"hd": BehaviourSeries(ts, np.stack([v] * 4, 1).reshape(-1, 2, 2))})
    with pytest.raises(RecordingValidationError, match=r"BehaviourSeries\.values: expected numeric samples"):
        BehaviourSeries(ts, np.where(v > 0, "left", "right"))
    with pytest.raises(RecordingValidationError, match=r"BehaviourSeries\.values: expected numeric samples"):
        BehaviourSeries(ts, v + 1j)
    with pytest.raises(RecordingValidationError, match=r"BehaviourSeries\.timestamps: expected times in seconds"):
        BehaviourSeries(ts.astype(str), v)
    # what stays accepted: (n,), (n, k), integer and object-of-number values
    for values in (v, np.stack([v, v], 1), (v > 0).astype(int), v.astype(object)):
        SpikeRecording(**base, behaviour={"hd": BehaviourSeries(ts, values)})
    # a NaN timestamp: 'expected finite values' named no sample (and a NaN passed the order check)
    bad = ts.copy()
    bad[[5, 9]] = np.nan
    with pytest.raises(RecordingValidationError, match=r"behaviour\['hd'\]\.timestamps: expected finite times, sample 5 "
                                                        r"is nan \(2 non-finite in all\)"):
        SpikeRecording(**base, behaviour={"hd": BehaviourSeries(bad, v)})


def test_interval_arrays_of_another_shape_are_refused_not_reshaped(shared_data):
    """trials / time_support / epoch_intervals went through reshape(-1, 2): a 1-D list of the 200
    Allen trial onsets became 100 trials [onset k, onset k+1] without a word, and a (200, 3) trial
    table (start, stop, orientation) 300 rows mixing degrees and seconds; a time_domain or epoch
    of three values kept the first two; a scalar trial_info column failed with "object of type
    'int' has no len()"."""
    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN))
    base = dict(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                time_domain=rec.time_domain)
    onsets, ori = rec.trials[:, 0], rec.trial_info["orientation_deg"]
    cases = [
        (dict(trials=onsets), r"trials: expected an \(n, 2\) array .* got shape \(200,\); a 1-D array of onsets"),
        (dict(trials=np.column_stack([rec.trials, ori])), r"trials: expected an \(n, 2\) array .* shape \(200, 3\)"),
        (dict(trials=rec.trials.T), r"trials: .* shape \(2, 200\); .* transpose"),
        # two trials of (start, stop, orientation): the message said only 'transpose it (.T)', giving 3 trials
        (dict(trials=np.column_stack([rec.trials, ori])[:2]),
         r"trials: .* shape \(2, 3\); .* transpose .* keep the start and stop columns only \(other columns of a trial"),
        (dict(time_support=[[0.0, 20.0, 40.0]]), r"time_support: expected an \(n, 2\) array"),
        (dict(epochs={"first": (0.0, 20.0, 40.0)}), r"epochs\['first'\]: expected two values"),
        (dict(time_domain=(0.0, 40.0, 80.0)), r"time_domain: expected two values"),
        (dict(trials=rec.trials, trial_info={"orientation_deg": 90}), r"trial_info\['orientation_deg'\]: expected 200"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(RecordingValidationError, match=msg):
            SpikeRecording(**{**base, **kwargs})
    # what stays accepted: (n, 2) rows, one (2,) pair, an empty table
    assert len(SpikeRecording(**base, trials=rec.trials, trial_info={"o": ori}).trials) == 200
    assert SpikeRecording(**base, trials=rec.trials[3]).trials.shape == (1, 2)
    assert SpikeRecording(**base, trials=np.zeros(0)).trials.shape == (0, 2)


def test_from_arrays_warns_about_gaps_between_unit_ids(shared_data):
    """Curated cluster numbers (0, 3, 17, 40, 41) given as unit ids made 42 units, 37 of them
    without spikes, without a word (only ids starting above 0 were flagged)."""
    from hf_neuroformer.io import from_arrays, read_allen_gratings

    allen = read_allen_gratings(shared_data(ALLEN))
    rec = allen.select_units(np.unique(allen.unit_ids)[:5].tolist())  # five units that fire
    clusters = np.array([0, 3, 17, 40, 41])
    ids = clusters[rec.unit_ids]
    with pytest.warns(UserWarning, match=rf"unit_ids: {clusters[-1] + 1 - len(clusters)} of the {clusters[-1] + 1} "
                                         rf"unit indices 0..{clusters[-1]} have no spikes \(e.g. 1, 2, 4, 5, 6\).*"
                                         r"np.unique\(unit_ids, return_inverse=True\)"):
        out = from_arrays(rec.spike_times, ids)
    assert out.n_units == clusters[-1] + 1 and out.n_spikes == rec.n_spikes  # kept as given
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, dense = np.unique(ids, return_inverse=True)
        assert from_arrays(rec.spike_times, dense).n_units == len(clusters)
        from_arrays(rec.spike_times, ids, unit_names=[f"c{k}" for k in range(clusters[-1] + 1)])
    # cluster numbers that start above 0 (3, 17, 40, 41, 42): the 'smallest is 3' warning counted only units
    # 0..2 and said "subtract 1", which leaves the other 35 empty units; the gap warning counts all 38
    with pytest.warns(UserWarning, match=r"unit_ids: 38 of the 43 unit indices 0\.\.42 have no spikes") as got:
        from_arrays(rec.spike_times, np.array([3, 17, 40, 41, 42])[rec.unit_ids])
    assert not any("subtract 1" in str(w.message) for w in got)
    with pytest.warns(UserWarning, match=r"unit_ids: the smallest is 1, so unit 0 is kept .* subtract 1"):
        from_arrays(rec.spike_times, dense + 1)  # counted from 1 without other gaps: that warning stays


def test_database_unit_ids_are_refused_before_a_name_per_index_is_built(shared_data):
    """Allen-style unit ids (about 9.5e8) given as unit_ids made one unit name per index below the
    largest and the process was killed for memory; uint64 ids past int64 wrapped round to a negative
    index in the message. Both are refused naming unit_ids and the mapping to indices."""
    from hf_neuroformer.io import from_arrays, read_allen_gratings

    MAX_IMPLIED_SILENT_UNITS = 100_000  # hf_neuroformer.recording.MAX_IMPLIED_SILENT_UNITS
    allen = read_allen_gratings(shared_data(ALLEN))
    rec = allen.select_units(np.unique(allen.unit_ids)[:5].tolist())
    big = np.array([0, 1, 2, 3, MAX_IMPLIED_SILENT_UNITS + 10])  # small enough that the old code built it
    with pytest.raises(RecordingValidationError, match=rf"unit_ids: the largest is {MAX_IMPLIED_SILENT_UNITS + 10}, "
                                                      r".*without spikes .*np.unique\(unit_ids, return_inverse=True\)"):
        from_arrays(rec.spike_times, big[rec.unit_ids])
    with pytest.raises(RecordingValidationError, match=r"unit_ids: .*has 9223372036854775808 \(beyond int64\)"):
        from_arrays(rec.spike_times[:2], np.array([0, 2 ** 63], dtype=np.uint64))
    # named units keep every index (the names say how many units there are)
    names = [f"u{k}" for k in range(MAX_IMPLIED_SILENT_UNITS + 11)]
    assert quiet(from_arrays, rec.spike_times, big[rec.unit_ids], unit_names=names).n_units == len(names)


def test_stimulus_intervals_and_ids_are_checked_when_the_recording_is_built(shared_data):
    """A 1-D Stimulus.intervals (the onsets only) was accepted and failed later in restrict() with
    numpy's "too many indices for array"; ids of another length than the intervals were accepted."""
    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN))
    stim = rec.stimulus
    base = dict(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                time_domain=rec.time_domain)
    cases = [
        (dataclasses.replace(stim, intervals=stim.intervals[:, 0]), r"stimulus\.intervals: expected an \(n, 2\) array"),
        (dataclasses.replace(stim, ids=stim.ids[:-1]), r"stimulus\.ids: expected one id per interval \(200\), got shape"),
        (dataclasses.replace(stim, intervals=stim.intervals[:, ::-1]), r"stimulus\.intervals\[0\]: expected finite"),
        (dataclasses.replace(stim, intervals=None), r"stimulus\.ids: given without stimulus\.intervals"),
    ]
    for bad, msg in cases:
        with pytest.raises(RecordingValidationError, match=msg):
            SpikeRecording(**base, stimulus=bad)
    # not a Stimulus: "'dict' object has no attribute 'intervals'" (as a behaviour entry that is not a
    # BehaviourSeries, refused by name)
    for bad in ({"ids": stim.ids, "intervals": stim.intervals}, (stim.ids, stim.intervals)):
        with pytest.raises(RecordingValidationError, match=rf"stimulus: expected a Stimulus\(ids=, intervals=, "
                                                           rf"names=\) .*, got {type(bad).__name__}"):
            SpikeRecording(**base, stimulus=bad)
    ok = SpikeRecording(**base, stimulus=stim)
    assert ok.restrict(0.0, 10.0).stimulus.intervals.shape == (50, 2)


def test_stimulus_ids_must_be_category_indices(shared_data, tmp_path):
    """stimulus.ids index stimulus.names; only their count was checked: write_nwb then cut 0.5 to
    id 0 and gave id -1 the last name without a word, and failed on a text id with int()'s
    'invalid literal'. Whole floats (a pandas column) are still ids."""
    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN))
    stim = rec.stimulus
    base = dict(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                time_domain=rec.time_domain)
    ids = stim.ids
    cases = [
        (np.where(np.arange(ids.size) == 3, 0.5, ids), r"stimulus\.ids\[3\]: expected an integer category index >= 0"),
        (np.where(np.arange(ids.size) == 4, -1, ids), r"stimulus\.ids\[4\]: expected an integer category index >= 0"),
        (np.array([stim.names[i] for i in ids]), r"stimulus\.ids\[0\]: expected an integer .*np\.unique\(labels"),
        (np.where(np.arange(ids.size) == 5, len(stim.names), ids), r"stimulus\.ids\[5\]: id 4 has no name"),
    ]
    for bad, msg in cases:
        with pytest.raises(RecordingValidationError, match=msg):
            SpikeRecording(**base, stimulus=dataclasses.replace(stim, ids=bad))
    ok = SpikeRecording(**base, stimulus=dataclasses.replace(stim, ids=ids.astype(np.float64)))
    back = read_nwb(write_nwb(ok, tmp_path / "whole_float_ids.nwb"))
    np.testing.assert_array_equal(back.stimulus.ids, ids)


def test_stimulus_frames_given_as_lists_restrict_like_arrays():
    """Stimulus.frame_times (and frames) given as Python lists passed validation, then restrict()
    failed with "'>=' not supported between instances of 'list' and 'float'" (and frames[m] with
    "only integer scalar arrays can be converted"); they are arrays in the recording now."""
    frames = [[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 5.0]]]  # 3 frames of 1 x 2 pixels
    stim = Stimulus(frames=frames, frame_times=[0.0, 1.0, 2.0])
    rec = SpikeRecording([0.5, 2.5], [0, 0], time_domain=(0.0, 3.0), stimulus=stim)
    assert isinstance(rec.stimulus.frame_times, np.ndarray) and rec.stimulus.frame_times.dtype == np.float64
    assert isinstance(rec.stimulus.frames, np.ndarray) and rec.stimulus.frames.shape == (3, 1, 2)
    part = rec.restrict(1.0, 3.0)  # frame 0 leaves the screen at 1.0 s
    np.testing.assert_array_equal(part.stimulus.frame_times, [1.0, 2.0])
    np.testing.assert_array_equal(part.stimulus.frames, [[[2.0, 3.0]], [[4.0, 5.0]]])
    assert stim.frame_times == [0.0, 1.0, 2.0]  # the caller's Stimulus is left as given


def test_stimulus_frames_without_pixels_and_frame_times_without_frames_are_refused():
    """Frames with a zero-size axis ((4, 0, 3): nothing for a video modality to read) and
    frame_times given with frames=None (kept, unused, without a word) were accepted; both are now
    refused by name, as stimulus.ids without stimulus.intervals is. No frames at all (what
    restrict() leaves of a video outside the interval) and no stimulus frames stay fine."""
    times = np.arange(4) * 0.25
    cases = [(Stimulus(frames=np.zeros((4, 0, 3)), frame_times=times), r"\(4, 0, 3\)"),
             (Stimulus(frames=np.zeros((4, 2, 0)), frame_times=times), r"\(4, 2, 0\)")]
    for stim, shape in cases:
        with pytest.raises(RecordingValidationError, match=r"^stimulus\.frames: expected \(n_frames, height, width\) "
                                                           r"grey levels with height and width >= 1, got shape " + shape):
            _small(stimulus=stim)
    with pytest.raises(RecordingValidationError, match=r"^stimulus\.frame_times: given without stimulus\.frames; "
                                                       r"expected \(n_frames, height, width\) frames"):
        _small(stimulus=Stimulus(frame_times=times))
    assert _small(stimulus=Stimulus(frames=np.zeros((0, 2, 3)), frame_times=np.zeros(0))).stimulus.frames.shape == (0, 2, 3)
    assert _small(stimulus=Stimulus(frames=np.zeros((4, 1, 1)), frame_times=times)).stimulus.frames.shape == (4, 1, 1)


def test_behaviour_series_without_columns_is_refused_and_skipped_by_read_nwb(tmp_path):
    """Values of shape (n, 0) (a series with no channel) were accepted, and 'neuroformer inspect'
    then failed inside numpy ("zero-size array to reduction operation fmin"); SpikeRecording refuses
    them naming the series, and read_nwb skips such a TimeSeries with a warning (the file is read)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    from hf_neuroformer.recording import BehaviourSeries

    with pytest.raises(RecordingValidationError, match=r"behaviour\['b'\]\.values: expected .* at least one column"):
        SpikeRecording([0.5], [0], time_domain=(0.0, 10.0),
                       behaviour={"b": BehaviourSeries([0.0, 1.0], np.zeros((2, 0)))})
    nwb = NWBFile(session_description="t", identifier="x", session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.5, 1.5])
    nwb.add_acquisition(TimeSeries(name="empty_channels", data=np.zeros((3, 0)), unit="V", timestamps=[0.0, 1.0, 2.0]))
    nwb.add_acquisition(TimeSeries(name="speed", data=np.ones(3), unit="cm/s", timestamps=[0.0, 1.0, 2.0]))
    with NWBHDF5IO(str(tmp_path / "f.nwb"), "w") as io:
        io.write(nwb)
    with pytest.warns(UserWarning, match=r"behaviour: skipped 'empty_channels': data of shape \(3, 0\)"):
        rec = read_nwb(tmp_path / "f.nwb")
    assert sorted(rec.behaviour) == ["speed"]
    assert "speed" in rec.summary()


def test_a_restriction_to_a_gap_of_the_time_support_is_refused():
    # restrict() into a gap of the support gave a recording with an empty support, on which the processor
    # tokenized any window as silence (it refuses a window there on the whole recording)
    import hf_neuroformer as nf

    sup = np.array([[0.0, 3.0], [4.0, 5.0], [6.0, 8.0]])
    rec = SpikeRecording.from_unsorted(
        [0.5, 1.0, 2.5, 4.5, 6.0, 7.5], [0, 1, 0, 1, 1, 0], unit_names=["a", "b"], time_domain=(0.0, 10.0),
        time_support=sup, epochs={"gap": (3.2, 3.8), "ripples": (3.2, 5.8)},
        epoch_intervals={"ripples": np.array([[3.2, 3.5], [5.2, 5.8]])})
    tok = nf.NeuroformerTokenizer(unit_tokens=nf.NeuroformerTokenizer(unit_tokens=[]).recording_unit_tokens(rec),
                                  current_window=0.1, past_window=0.2, dt_resolution=0.01)
    with pytest.raises(ValueError, match="not inside the recorded time"):
        nf.NeuroformerProcessor(tok)(rec, [3.4])
    for call in (lambda: rec.restrict(3.2, 3.8), lambda: rec.restrict(8.5, 9.5), lambda: rec.select_epoch("gap"),
                 lambda: rec.select_epoch("ripples")):  # the last: its span holds recorded time, its rows none
        with pytest.raises(ValueError, match=r"holds no recorded time: it (overlaps none of the \d intervals|does not "
                                                 r"overlap the one interval) of the recording"):
            call()
    part = rec.restrict(2.0, 7.0)  # one that overlaps the support keeps what it overlaps
    assert part.support.tolist() == [[2.0, 3.0], [4.0, 5.0], [6.0, 7.0]] and part.n_spikes == 3


def test_a_time_support_without_rows_is_refused_by_name_for_a_recording_with_spikes():
    """A (0, 2) time_support (no recorded interval) beside spikes failed inside the validation with
    numpy's 'index 0 is out of bounds for axis 0 with size 0', naming no field; it is refused as a
    support that does not hold the spikes. Without spikes it stays valid (nothing to hold)."""
    with pytest.raises(RecordingValidationError, match=r"^time_support: expected it to contain every spike, spike 0 at "
                                                       r"1\.0 s lies outside"):
        SpikeRecording(spike_times=np.array([1.0]), unit_ids=np.array([0]), time_domain=(0.0, 2.0),
                       time_support=np.zeros((0, 2)))
    empty = SpikeRecording(spike_times=np.zeros(0), unit_ids=np.zeros(0, int), unit_names=["a"], time_domain=(0.0, 2.0),
                           time_support=np.zeros((0, 2)))
    assert empty.n_spikes == 0


def test_trial_edges_within_1_ns_count_as_inside_as_the_windows_take_them():
    """restrict(0.1 + 0.2, ...) starts at 0.30000000000000004 s: it dropped the trial at [0.3, 0.5)
    as 'covered only in part' (no tolerance on trial starts, while the windows compare edges within
    1 ns). select_epoch dropped a trial across a 0.5 ns hole between the epoch's rows, a hole the
    windows take as touching (recorded_stretches)."""
    trials = [[0.3, 0.5], [0.5, 0.9]]
    rec = _small(trials=trials, trial_info={"k": np.array([1, 2])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        part = rec.restrict(0.1 + 0.2, 0.9)
    assert len(part.trials) == 2 and part.trials[0, 0] >= part.time_domain[0]
    np.testing.assert_allclose(part.trials, trials, atol=1e-9)
    np.testing.assert_array_equal(part.trial_info["k"], [1, 2])
    with pytest.warns(UserWarning, match="dropped 1 of 2 trials"):  # a real cut still drops and counts
        assert len(rec.restrict(0.31, 0.9).trials) == 1
    rec = _small(trials=trials, epochs={"e": (0.2, 0.95)},
                 epoch_intervals={"e": np.array([[0.2, 0.4], [0.4 + 5e-10, 0.95]])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = rec.select_epoch("e")
    np.testing.assert_array_equal(sel.trials, trials)


def test_a_trial_that_ends_on_the_interval_start_within_1_ns_is_not_called_partly_covered():
    """Break test: the 1 ns tolerance of restrict covered only the trials kept: a trial that ends at
    0.1 + 0.2 = 0.30000000000000004 s, before restrict(0.3, ...), was warned about as 'covered only in
    part' (dropped 1 of 2 trials), as was one starting 1e-16 s before the interval's stop; both lie
    outside the interval within 1 ns, as the windows take edges."""
    rec = _small(trials=[[0.1, 0.1 + 0.2], [0.3, 0.5], [np.nextafter(0.7, 0.0), 0.9]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        part = rec.restrict(0.3, 0.7)
    np.testing.assert_array_equal(part.trials, [[0.3, 0.5]])
    with pytest.warns(UserWarning, match="dropped 2 of 3 trials"):  # a real overlap still counts
        rec.restrict(0.25, 0.8)


def test_a_trial_info_list_mixing_booleans_and_numbers_keeps_them_apart(shared_data):
    """A trial column given as a list of True, 1, False and 0 became one int64 column [1, 1, 0, 0]
    wherever numpy read it (np.asarray), so decoding took it as two classes without a word, though
    the same values as an object array are refused (34ab2a7: True equals 1, one class). The list is
    kept as an object array, so it meets the same refusal; lists of one type are arrays as before."""
    from hf_neuroformer.decoding import DecodingTarget, DecodingTargetError, kind_problem

    allen = load_recording(shared_data(ALLEN)).restrict(0.0, 1.0)  # 10 trials
    n = len(allen.trials)
    mixed = [[True, 1, False, 0][k % 4] for k in range(n)]
    rec = dataclasses.replace(allen, trial_info={"m": mixed, "i": [k % 2 for k in range(n)],
                                                 "b": [bool(k % 2) for k in range(n)]})
    assert [type(v) for v in rec.trial_info["m"]] == [type(v) for v in mixed]
    with pytest.raises(DecodingTargetError, match=r"got booleans mixed with numbers \(True equals 1"):
        kind_problem(rec, DecodingTarget("trial:m", "classification"))
    part = rec.restrict(0.0, 0.5)
    assert [type(v) for v in part.trial_info["m"]] == [type(v) for v in mixed[:len(part.trials)]]
    assert np.asarray(rec.trial_info["i"]).dtype.kind == "i" and np.asarray(rec.trial_info["b"]).dtype == bool
    # NaN among booleans is a trial without a label, not a number: [True, False, nan] was read as
    # [1.0, 0.0, nan] (two classes, the NaN trials left out) and then refused as 'booleans mixed with numbers'
    gaps = [[True, False, float("nan")][k % 3] for k in range(n)]
    rec = dataclasses.replace(allen, trial_info={"g": gaps})
    assert np.asarray(rec.trial_info["g"]).dtype == np.float64
    assert kind_problem(rec, DecodingTarget("trial:g", "classification")) is None


def test_an_object_column_of_booleans_with_gaps_is_named_with_what_to_do(shared_data):
    """Break test: the same [True, False, nan] as an object array (a pandas column of booleans with
    gaps) was refused as 'booleans mixed with numbers (True equals 1 ...)' with the advice to
    factorize it (NaN then a class of its own), and [True, None] or [1, 2] in an object array as
    'text'. Now the message names the target, says booleans / numbers with missing labels in an
    object column, and gives the conversion that works (checked: after it the target is taken)."""
    from hf_neuroformer.decoding import DecodingTarget, DecodingTargetError, kind_problem

    allen = load_recording(shared_data(ALLEN)).restrict(0.0, 1.0)
    n = len(allen.trials)
    gaps = np.array([[True, False, np.nan][k % 3] for k in range(n)], dtype=object)
    nones = np.array([[True, None, False][k % 3] for k in range(n)], dtype=object)
    ints = np.array([k % 2 for k in range(n)], dtype=object)
    rec = dataclasses.replace(allen, trial_info={"g": gaps, "nn": nones, "i": ints})
    m = len(range(2, n, 3)) if n > 2 else 0  # the gaps: every third trial
    assert m >= 1
    for col, said in (("g", rf"booleans with {m} missing \(NaN or None: trials without a label\) in an object column"),
                      ("nn", rf"booleans with {len(range(1, n, 3))} missing \(NaN or None: trials without a label\) in "
                             r"an object column"),
                      ("i", r"numbers in an object column")):
        for kind in ("classification", "regression"):
            with pytest.raises(DecodingTargetError, match=rf"target 'trial:{col}': expected numeric trial labels, got "
                                                          rf"{said}, which is not read as numbers .*; convert the column "
                                                          rf"to numbers.*: trial_info\['{col}'\] = np.asarray\("
                                                          rf"trial_info\['{col}'\], dtype=float\)"):
                kind_problem(rec, DecodingTarget(f"trial:{col}", kind))
    fixed = dataclasses.replace(rec, trial_info={c: np.asarray(v, dtype=float) for c, v in rec.trial_info.items()})
    for col in ("g", "nn", "i"):
        assert kind_problem(fixed, DecodingTarget(f"trial:{col}", "classification")) is None
    # text and a real mix keep their messages
    rec = dataclasses.replace(allen, trial_info={"m": [[True, 1, False, 0][k % 4] for k in range(n)]})
    with pytest.raises(DecodingTargetError, match=r"got booleans mixed with numbers \(True equals 1.*pandas.factorize"):
        kind_problem(rec, DecodingTarget("trial:m", "classification"))


def test_trial_info_behaviour_and_event_names_are_text(shared_data, tmp_path):
    """A column named by a number (0: a column index of a table) was kept as the int key, which
    write_nwb failed on ("argument of type 'int' is not iterable") and 'trial:0' did not find; names
    are text now, as epoch names are, and 0 with '0' is refused, not one overwriting the other."""
    allen = load_recording(shared_data(ALLEN)).select_units(range(5)).restrict(0.0, 1.0)
    ori = allen.trial_info["orientation_deg"]
    rec = dataclasses.replace(allen, trial_info={0: ori})
    assert list(rec.trial_info) == ["0"]
    back = read_nwb(write_nwb(rec, tmp_path / "r.nwb"))
    assert back.trial_info["0"].tolist() == ori.tolist()
    with pytest.raises(RecordingValidationError, match=r"trial_info: expected one entry per name, got 0 and '0'"):
        dataclasses.replace(allen, trial_info={"0": ori, 0: ori})
    # behaviour series and event streams numbered the same way failed in write_nwb too
    onsets = allen.trials[:, 0]
    rec = dataclasses.replace(allen, behaviour={1: BehaviourSeries(onsets, ori.astype(float), "deg")},
                              events={2: EventSeries(onsets)})
    back = read_nwb(write_nwb(rec, tmp_path / "b.nwb"))
    assert list(back.behaviour) == ["1"] and list(back.events) == ["2"]
    np.testing.assert_array_equal(back.events["2"].times, onsets)


def test_a_behaviour_series_without_a_unit_decodes_and_a_unit_that_is_not_text_is_refused():
    """BehaviourSeries(ts, values, None) was kept with unit None, and decoding it as a regression
    target failed with "'NoneType' object has no attribute 'strip'" (the wrapping-angle check); None
    is stored as '' (no unit) now, and a unit that is not text is refused naming the field."""
    from hf_neuroformer import NeuroformerConfig, NeuroformerTokenizer
    from hf_neuroformer.decoding import DecodingTarget, build_decoding_datasets
    from hf_neuroformer.recording import BehaviourSeries
    from hf_neuroformer.windows import plan_splits

    ts = np.arange(0.0, 60.0, 0.05)
    assert BehaviourSeries(ts, np.sin(ts), None).unit == "" and BehaviourSeries(ts, ts, b"cm").unit == "cm"
    with pytest.raises(RecordingValidationError, match=r"BehaviourSeries\.unit: expected text .* got int 3"):
        BehaviourSeries(ts, ts, 3)
    rng = np.random.default_rng(0)
    rec = SpikeRecording(np.sort(rng.uniform(0, 60, 600)), rng.integers(0, 3, 600), time_domain=(0.0, 60.0),
                         behaviour={"x": BehaviourSeries(ts, np.sin(ts), None)})
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, split_block_length=5.0)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    _, report = build_decoding_datasets(rec, tok, cfg, plan_splits(rec, cfg), [DecodingTarget("x", "regression")])
    assert report["train"]["n_windows"] > 0


def test_float32_times_are_refused_not_widened_naming_the_field_and_the_shift():
    """SpikeRecording(np.float32([700.05, 700.06]), ...) stored 700.0499877929688 s, 12 µs early, so
    the spike fell in the window before 700.05 s; the same widening moved float32 trial and epoch
    bounds, behaviour timestamps, event times and frame onsets. Each is refused naming the field,
    the first value it moved, how far float32 rounds times of that size, and why .astype(np.float64)
    is no fix; float64 times of the same values are kept exactly."""
    f32 = np.float32
    spikes = dict(spike_times=np.array([700.05, 700.06]), unit_ids=np.array([0, 1]), time_domain=(0.0, 800.0))
    with pytest.raises(RecordingValidationError, match=r"^spike_times: expected float64 times \(s\), got float32, "
                       r"which rounds times of up to 700\.06 s by as much as 30\.5 µs.*value 0: 700\.05 as float32 is "
                       r"700\.0499877929688 s, 12\.2 µs off.*astype\(np\.float64\) on these values keeps the float32 "
                       r"rounding"):
        SpikeRecording(**{**spikes, "spike_times": spikes["spike_times"].astype(f32)})
    for bad, field in [
        ({"spike_times": spikes["spike_times"].astype(np.float16)}, "spike_times"),
        ({"time_domain": np.array([0.0, 800.05], f32)}, "time_domain"),
        ({"epochs": {"sleep": np.array([0.0, 700.05], f32)}}, r"epochs\['sleep'\]"),
        ({"trials": np.array([[700.05, 700.1]], f32)}, "trials"),
        ({"behaviour": lambda: {"x": BehaviourSeries(np.array([700.05, 700.1], f32), np.zeros(2))}},
         "BehaviourSeries.timestamps"),
        ({"events": lambda: {"r": EventSeries(np.array([700.05], f32))}}, "EventSeries.times"),
        ({"events": {"r": np.array([700.05], f32)}}, r"events\['r'\]\.times"),  # the readers' path
        ({"stimulus": Stimulus(frames=np.zeros((1, 2, 2)), frame_times=np.array([700.05], f32))},
         r"stimulus\.frame_times"),
    ]:
        with pytest.raises(RecordingValidationError, match=rf"^{field}: expected float64 times \(s\), got float"):
            fields = {k: v() if callable(v) else v for k, v in bad.items()}
            if "events" in bad and not callable(bad["events"]):
                from_arrays(spikes["spike_times"], spikes["unit_ids"], time_domain=(0.0, 800.0), **fields)
            else:
                SpikeRecording(**{**spikes, **fields})
    with pytest.raises(RecordingValidationError, match=r"^spike_times: expected float64 times"):
        SpikeRecording.from_unsorted(np.array([700.06, 700.05], f32), np.array([1, 0]), time_domain=(0.0, 800.0))
    with pytest.raises(RecordingValidationError, match=r"^t: expected float64 times"):
        from_dataframe(pd.DataFrame({"t": np.array([700.05], f32), "unit": [0]}), time_col="t", unit_col="unit")
    rec = SpikeRecording(**spikes, trials=np.array([[700.05, 700.1]]))
    assert rec.spike_times[0] == 700.05 and rec.trials[0, 0] == 700.05


def test_non_finite_or_descending_times_get_one_wording_from_the_recording_and_the_tokenizer():
    """SpikeRecording's spike_times, its events' and behaviour's times and the tokenizer's
    spike_times each wrote their own finite / order check ('expected finite values' beside
    'expected finite times', 'ascending order' beside 'ascending times', counts in some only); the
    same times now get the same words from binning.not_finite_message / not_ascending_message,
    each check adding its own fix."""
    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer

    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b"], dt_resolution=0.01, current_window=0.1, past_window=0.2)
    for times, words in (([10.0, np.nan, 10.2, np.nan], "expected finite times, spike 1 is nan (2 non-finite in all)"),
                         ([10.0, 10.3, 10.2, 10.1], "expected ascending times, spike 2 (10.2 s) comes after spike 1 "
                                                    "(10.3 s) (2 descending steps in all)")):
        times = np.array(times)
        with pytest.raises(RecordingValidationError, match=rf"^spike_times: {re.escape(words)}($|; )"):
            SpikeRecording(spike_times=times, unit_ids=np.zeros(4, int), time_domain=(0.0, 20.0))
        with pytest.raises(ValueError, match=rf"^spike_times: {re.escape(words)}; "):
            tok.encode_window(times, np.array([3, 3, 4, 4]), 10.0)
        ev = words.replace("spike", "event")
        with pytest.raises(RecordingValidationError, match=rf"^events\['r'\]\.times: {re.escape(ev)}; "):
            SpikeRecording(spike_times=np.array([1.0]), unit_ids=np.array([0]), time_domain=(0.0, 20.0),
                           events={"r": EventSeries(times)})
    with pytest.raises(RecordingValidationError, match=r"^behaviour\['x'\]\.timestamps: expected strictly increasing "
                                                       r"times, sample 2 \(10\.1 s\) does not come after sample 1 "
                                                       r"\(10\.1 s\) \(1 such step in all\)$"):
        SpikeRecording(spike_times=np.array([1.0]), unit_ids=np.array([0]), time_domain=(0.0, 20.0),
                       behaviour={"x": BehaviourSeries(np.array([10.0, 10.1, 10.1]), np.zeros(3))})


def test_float32_times_get_one_refusal_from_the_recording_the_window_starts_and_the_tokenizer():
    """SpikeRecording, window_starts_array and the tokenizer's encode_window each wrote their own
    float32 refusal (the tokenizer's named neither the size of the rounding nor the value it moved,
    window starts' none of why .astype(np.float64) is no fix): the same float32 times now get the
    same message from all three (binning.narrow_float_times_message), only the name differs."""
    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.windows import window_starts_array

    times = np.array([700.05, 700.06], np.float32)
    texts = []
    with pytest.raises(RecordingValidationError) as err:
        SpikeRecording(spike_times=times, unit_ids=np.array([0, 1]), time_domain=(0.0, 800.0))
    texts.append(str(err.value).replace("spike_times: ", "", 1).replace("value 0", "#0"))
    with pytest.raises(ValueError) as err:
        window_starts_array(times, "window_starts")
    texts.append(str(err.value).replace("window_starts: ", "", 1).replace("window 0", "#0"))
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b"], dt_resolution=0.01, current_window=0.1, past_window=0.2)
    with pytest.raises(ValueError) as err:
        tok.encode_window(times, np.array([3, 4]), 700.0)
    texts.append(str(err.value).replace("spike_times: ", "", 1).replace("spike 0", "#0"))
    assert texts[0] == texts[1] == texts[2], texts
    assert texts[0].startswith("expected float64 times (s), got float32, which rounds times of up to 700.06 s by as "
                               "much as 30.5 µs, across window and bin edges; e.g. #0: 700.05 as float32 is "
                               "700.0499877929688 s, 12.2 µs off; pass float64 times from the source"), texts[0]


def test_a_file_storing_float32_spike_times_is_read_with_a_warning_not_refused(tmp_path):
    """A file holds no more precision than it stores: read_npz of float32 spike times widens them
    with one warning that names the field and the rounding (SpikeRecording refuses float32 from a
    caller; the reader must still read the file). Before, they were passed on as float32."""
    path = tmp_path / "f32.npz"
    np.savez(path, spike_times=np.array([700.05, 700.06], np.float32), unit_ids=np.array([0, 1]),
             time_domain=np.array([0.0, 800.0]))
    with pytest.warns(UserWarning, match=r"read_npz\(.*\): spike_times are stored as float32, which rounds times of "
                      r"up to 700\.06 s by as much as 30\.5 µs.*read as float64 with that rounding") as rec_w:
        rec = read_npz(path)
    assert sum("stored as float32" in str(w.message) for w in rec_w) == 1
    assert rec.spike_times.dtype == np.float64
    assert rec.spike_times.tolist() == np.array([700.05, 700.06], np.float32).astype(np.float64).tolist()


def test_an_npz_time_domain_stored_as_float32_is_read_with_the_float32_warning(tmp_path):
    """read_npz widened a float32 time_domain without a word (SpikeRecording refuses one from a
    caller, and the file's float32 spike_times get the reader's warning): it now gets that warning
    too, naming the field; a float64 time_domain stays silent."""
    for dtype, warned in ((np.float32, 1), (np.float64, 0)):
        path = tmp_path / f"td-{np.dtype(dtype).name}.npz"
        np.savez(path, spike_times=np.array([1.5, 2.5]), unit_ids=np.array([0, 1]),
                 time_domain=np.array([0.0, 700.05], dtype))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = read_npz(path)
        notes = [str(w.message) for w in caught if "stored as float32" in str(w.message)]
        assert len(notes) == warned and all(re.search(r"read_npz\(.*\): time_domain are stored as float32", n)
                                            for n in notes)
        assert rec.time_domain[1] == float(dtype(700.05))


def test_an_nwb_file_storing_float32_times_is_read_with_one_warning_per_field(tmp_path):
    """pynwb writes spike times as float64, but other writers (h5py) may store float32: read_nwb
    widened units.spike_times and interval bounds without a word. Each field is now read with one
    warning naming it and the rounding; the file still reads."""
    path = tmp_path / "f32.nwb"
    rec = SpikeRecording(np.array([700.05, 700.06, 700.5]), np.array([0, 1, 0]), time_domain=(0.0, 800.0),
                         trials=np.array([[700.0, 700.1]]))
    write_nwb(rec, path)
    store_as_float32(path, ("units/spike_times", "intervals/trials/start_time"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_nwb(path)
    notes = [str(w.message) for w in caught if "stored as float32" in str(w.message)]
    assert len(notes) == 2, notes
    assert re.search(r"units\.spike_times are stored as float32, which rounds times of up to 700\.5 s by as much "
                     r"as 30\.5 µs.*value 0: 700\.05 as float32 is 700\.0499877929688 s", notes[0])
    assert notes[1].startswith("read_nwb: trials.start_time are stored as float32")
    assert back.spike_times.tolist() == rec.spike_times.astype(np.float32).astype(np.float64).tolist()
    assert back.trials.tolist() == [[700.0, 700.1]]  # 700.0 is exact in float32; the stops stayed float64

    # a file of another writer reads its trials table as the trials and as the epoch 'trials': its float32
    # start_time was named twice, once per use; now once, naming both
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="x", identifier="other", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[700.05, 700.5])
    nwb.add_trial(start_time=700.05, stop_time=700.4)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    store_as_float32(path, ("intervals/trials/start_time",))
    back, notes = float32_notes(read_nwb, path)
    assert len(notes) == 1, notes
    assert notes[0].startswith("read_nwb: trials.start_time (read as the trials and as the epoch 'trials') are "
                               "stored as float32"), notes
    assert back.trials[0, 0] == back.epochs["trials"][0] == float(np.float32(700.05))


def test_a_float32_starting_time_of_a_behaviour_series_is_read_with_a_warning(tmp_path):
    """A TimeSeries sampled at a rate whose starting_time another writer stored as float32 was widened
    without a word (4485.4 s read as 4485.39990234375, every sample 98 µs early), while float32
    timestamps and spike times were named. It is now read with the same warning, naming the series;
    so is a float32 rate."""
    import h5py
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    path = tmp_path / "rate.nwb"
    nwb = NWBFile(session_description="x", identifier="rate", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[4485.0, 4485.5])
    nwb.add_acquisition(TimeSeries(name="speed", data=np.arange(4.0), unit="m/s", rate=10.0, starting_time=4485.4))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    store_as_float32(path, ("acquisition/speed/starting_time",))
    back, notes = float32_notes(read_nwb, path)
    assert len(notes) == 1 and notes[0].startswith("read_nwb: speed.starting_time are stored as float32"), notes
    assert "4485.4 as float32 is 4485.39990234375 s" in notes[0]
    assert back.behaviour["speed"].timestamps[0] == float(np.float32(4485.4))

    # a float32 rate (the starting_time dataset's attribute) was not named: 59.94 Hz is 59.939998626708984 Hz
    # as float32, its samples 82 µs late after an hour; named by the same warning, with that drift
    nwb = NWBFile(session_description="x", identifier="rate", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.5, 3599.0])
    nwb.add_acquisition(TimeSeries(name="led", data=np.zeros(215785), unit="px", rate=59.94, starting_time=0.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    with h5py.File(path, "a") as f:
        f["acquisition/led/starting_time"].attrs["rate"] = np.float32(59.94)
    back, notes = float32_notes(read_nwb, path)
    assert len(notes) == 1 and notes[0].startswith("read_nwb: led.rate is stored as float32"), notes
    assert "59.94 as float32 is 59.939998626708984 Hz, its last sample 82.5 µs off" in notes[0], notes
    assert "read as float64 with that rounding" in notes[0]  # the one warning of widen_stored_times
    assert back.behaviour["led"].timestamps[-1] == 215784 / float(np.float32(59.94))


def test_first_few_names_the_first_items_then_how_many_more():
    """The 'first few, then the rest' of a message was written nine times (missing weights, foreign
    checkpoint files, units a model does not know, units absent); recording.first_few is the one."""
    from hf_neuroformer.recording import first_few

    assert first_few(["a", "b", "c", "d", "e"]) == "'a', 'b', 'c' and 2 more"
    assert first_few(["a", "b", "c"]) == "'a', 'b', 'c'"
    assert first_few(["x.w", "y.w", "z.w"], 2, quote=False) == "x.w, y.w and 1 more"
    assert first_few(iter(["a", "b", "c", "d"]), 2, count_rest=False) == "'a', 'b', ..."  # a list the user copies
    assert first_few([]) == ""


def test_trials_in_milliseconds_are_not_told_to_widen_the_time_domain():
    """Break test: trial intervals in ms with spikes in s (a 60-s session, trials every 5 s written as
    0-2000, 5000-7000 ...) were refused as outside the time domain with the advice to pass a wider
    time_domain, which would accept them on the wrong clock; the message now names the time base
    first. Trials only a little past the spikes keep the advice alone."""
    spikes = np.sort(np.random.default_rng(0).uniform(0.0, 60.0, 200))
    trials_ms = np.stack([np.arange(0.0, 60.0, 5.0), np.arange(0.0, 60.0, 5.0) + 2.0], 1) * 1000.0
    with pytest.raises(RecordingValidationError, match=r"trials\[0\]: expected a trial inside the time domain .*"
                                                       r"\(12 trials outside in all\); the trials reach far past the "
                                                       r"spikes: trial times must be seconds on the spikes' clock "
                                                       r"\(milliseconds\? divide them by 1000\); else pass time_domain"):
        SpikeRecording(spikes, np.zeros(200, dtype=np.int64), time_domain=(0.0, 60.0), trials=trials_ms)
    late = np.array([[1.0, 2.0], [58.0, 61.0]])
    with pytest.raises(RecordingValidationError, match=r"trials\[1\]: .*\(1 trials outside in all\); pass time_domain") as err:
        SpikeRecording(spikes, np.zeros(200, dtype=np.int64), time_domain=(0.0, 60.0), trials=late)
    assert "milliseconds" not in str(err.value)


def test_event_times_that_are_not_real_numbers_are_refused_naming_the_field(shared_data):
    """EventSeries took times through np.asarray(dtype=float64): onsets kept as text (a CSV column read
    as strings, "0.0 s") failed with numpy's "could not convert string to float: np.str_('0.0 s')",
    naming no field, and complex times lost their imaginary part with only numpy's ComplexWarning.
    Both are refused naming EventSeries.times, as BehaviourSeries.timestamps are; numbers of any real
    dtype (int onsets, object arrays of floats) are still taken as float64 seconds."""
    allen = load_recording(shared_data(ALLEN)).select_units(range(5)).restrict(0.0, 2.0)
    onsets = allen.trials[:, 0]
    for times, shown in [(np.array([f"{t} s" for t in onsets]), r"dtype <U\d+ \(e\.g\. \['0\.0 s'"),
                         (onsets + 0j, r"dtype complex128")]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ComplexWarning instead of the error
            with pytest.raises(RecordingValidationError, match=r"EventSeries\.times: expected times in seconds \(real "
                                                               r"numbers\), got " + shown):
                EventSeries(times)
    ev = EventSeries(onsets.astype(object))
    assert ev.times.dtype == np.float64 and np.array_equal(ev.times, onsets)
    assert EventSeries(np.array([0, 1])).times.dtype == np.float64


def test_copies_with_spikes_are_what_from_unsorted_builds_each_apart():
    """SpikeRecording.copies_with_spikes (generate_spikes' samples) checks the spikes of all copies
    at once: each copy equals from_unsorted with the same fields, changing one copy's lists or
    arrays leaves the others whole, and spikes or a session from_unsorted refuses are refused with
    its message."""
    fields = {"unit_names": ["a", "b", "c"], "unit_areas": ["V1", "", "CA1"], "time_domain": (0.0, 10.0),
              "time_support": np.array([[0.0, 2.0], [5.0, 10.0]])}
    base = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), session="s", **fields)
    spikes = [(np.array([1.5, 0.5, 0.5, 6.0]), np.array([2, 1, 0, 0])), (np.zeros(0), np.zeros(0, dtype=np.int64)),
              (np.array([9.0]), np.array([1], dtype=np.int32))]
    sessions = ["s-0", "s-1", "s-2"]
    copies = base.copies_with_spikes(spikes, sessions)
    assert len(copies) == 3
    for (t, u), session, got in zip(spikes, sessions, copies):
        want = SpikeRecording.from_unsorted(t, u, session=session, **fields)
        for f in dataclasses.fields(SpikeRecording):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if isinstance(b, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), f.name
            else:
                assert a == b, f.name
    copies[0].unit_names.append("d")
    copies[0].time_support[0, 0] = 1.0
    assert copies[1].unit_names == base.unit_names == ["a", "b", "c"]
    assert copies[1].time_support[0, 0] == base.time_support[0, 0] == 0.0
    for bad, match in (((np.array([3.0]), np.array([0])), r"^time_support: expected it to contain every spike"),
                       ((np.array([1.0]), np.array([3])), r"^unit_ids: expected indices in \[0, 3\)"),
                       ((np.array([1.0, np.nan]), np.array([0, 0])), r"^spike_times: .*spike 1"),
                       ((np.array([1.0], dtype=np.float32), np.array([0])), r"^spike_times: .*float32")):
        with pytest.raises(RecordingValidationError, match=match):
            base.copies_with_spikes([spikes[0], bad], sessions[:2])
    with pytest.raises(RecordingValidationError, match=r"^session: expected a name without whitespace"):
        base.copies_with_spikes(spikes[:1], ["s 0"])
    with pytest.raises(ValueError, match=r"^sessions: expected one session per copy \(1 copies\), got 2"):
        base.copies_with_spikes(spikes[:1], sessions[:2])


_COPY_FIELDS = {"unit_names": ["a", "b", "c"], "time_domain": (0.0, 10.0),
                "time_support": np.array([[0.0, 2.0], [5.0, 10.0]])}


@pytest.mark.parametrize("times, units, field", [
    (np.array([1.0, np.nan]), np.array([0, 0]), "spike_times"),          # NaN time
    (np.array([-0.5, 1.0]), np.array([0, 0]), "spike_times"),            # negative time
    (np.array([1.0, 10.5]), np.array([0, 0]), "time_domain"),            # after the time domain
    (np.array([1.0, 3.0]), np.array([0, 0]), "time_support"),            # in the domain, between support rows
    (np.array([1.0, 1.5]), np.array([0, 3]), "unit_ids"),                # unit index = n_units
    (np.array([1.0, 1.5]), np.array([-1, 0]), "unit_ids"),               # negative unit index
    (np.array([1.0, 1.5]), np.array([0.0, 0.5]), "unit_ids"),            # float unit index
    (np.array([[1.0, 1.2], [1.5, 1.7]]), np.array([0, 1, 0, 1]), "spike_times"),  # 2-D times
])
def test_copies_with_spikes_refuse_what_the_constructors_refuse(times, units, field):
    """copies_with_spikes checks the spikes of all copies at once (_spike_problem, validate's rules):
    it refuses each bad input that SpikeRecording and from_unsorted refuse, with the same error type
    and a message naming the same field (before, it restated the rules, and the two could drift)."""
    base = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), session="s", **_COPY_FIELDS)
    good = (np.array([1.5, 0.5, 6.0]), np.array([2, 1, 0]))
    assert len(base.copies_with_spikes([good, good], ["s-0", "s-1"])) == 2
    errors = []
    for build in (lambda: SpikeRecording(times, units, session="s-1", **_COPY_FIELDS),
                  lambda: SpikeRecording.from_unsorted(times, units, session="s-1", **_COPY_FIELDS),
                  lambda: base.copies_with_spikes([good, (times, units)], ["s-0", "s-1"])):
        with pytest.raises(RecordingValidationError) as e:
            build()
        errors.append(e.value)
    assert [type(e) for e in errors] == [RecordingValidationError] * 3
    assert [str(e).split(":")[0] for e in errors] == [field] * 3, [str(e) for e in errors]


def test_validate_names_a_bad_time_domain_or_support_before_the_spikes_outside_it():
    """validate holds the spikes to the time domain and support only where those are intervals: a
    domain set to (5, 3) s, or support rows set out of order, are named by their own checks, not as
    'expected it to contain every spike' (the spikes are inside the recording's real interval)."""
    rec = SpikeRecording(np.array([1.0, 4.0]), np.array([0, 0]), time_domain=(0.0, 10.0))
    rec.time_domain = (5.0, 3.0)
    with pytest.raises(RecordingValidationError, match=r"^time_domain: expected finite \(start, stop\) with stop > "
                                                       r"start, got \(5\.0, 3\.0\)$"):
        rec.validate()
    rec.time_domain = (0.0, 10.0)
    rec.time_support = np.array([[3.0, 6.0], [0.0, 2.0]])
    with pytest.raises(RecordingValidationError, match=r"^time_support: expected finite, sorted, non-overlapping"):
        rec.validate()
    rec.time_support = np.array([[0.0, 2.0], [5.0, 6.0]])
    with pytest.raises(RecordingValidationError, match=r"^time_support: expected it to contain every spike, spike 1 "
                                                       r"at 4\.0 s lies outside$"):
        rec.validate()


def test_spike_recording_refuses_two_dimensional_spike_arrays_as_from_unsorted_does():
    """SpikeRecording flattened a (2, 2) array of times into 4 spikes, pairing them with the unit ids
    by their position in memory; (n,), (n, 1) and (1, n) are still n spikes."""
    with pytest.raises(RecordingValidationError, match=r"^unit_ids: expected a 1-D array \(n_spikes,\), got shape "
                                                       r"\(2, 2\); flattening it"):
        SpikeRecording(np.array([0.1, 0.2, 0.3, 0.4]), np.array([[0, 1], [0, 1]]))
    with pytest.raises(RecordingValidationError, match=r"^spike_times: expected one flat array \(n_spikes,\), got a "
                                                       r"ragged sequence"):
        SpikeRecording([[0.1, 0.2], [0.3]], [0, 1, 1])
    rec = SpikeRecording(np.array([[0.1], [0.2]]), np.array([[0, 1]]))
    assert rec.spike_times.tolist() == [0.1, 0.2] and rec.unit_ids.tolist() == [0, 1]
