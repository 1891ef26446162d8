"""Video as a modality (issue 3): the frame window never reaches past the current window, the
Conv3d patch tokens carry a 3D positional encoding, wrong frames are refused naming the field,
frames survive NWB, and a tiny model trains on the Allen gratings with rendered grating video,
reloads, reads its frames and generates."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest
import torch

from hf_neuroformer.modalities import modality_columns
from hf_neuroformer.modeling_neuroformer import NeuroformerVideoEmbedding
from hf_neuroformer.recording import SpikeRecording, Stimulus
from hf_neuroformer.stimuli import GratingParams, render_drifting_gratings
from hf_neuroformer.training import TrainingConfig, load_yaml_config, train
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets
from tiny_configs import float32_notes, quiet, small_config, store_as_float32

ALLEN = "allen_vcn_gratings"
VIDEO = {"name": "video", "source": "stimulus:frames", "kind": "video", "frame_shape": [16, 16], "num_frames": 2,
         "patch_size": [1, 8, 8], "window": [-0.02, 0.01]}


def _ramp_recording(frame_times, shape=(4, 4)):
    frames = np.stack([np.full(shape, float(i), dtype=np.float32) for i in range(len(frame_times))])
    return SpikeRecording(spike_times=np.array([0.05, 0.5]), unit_ids=np.array([0, 1]), time_domain=(0.0, 1.0),
                          stimulus=Stimulus(frames=frames, frame_times=np.asarray(frame_times, dtype=float)))


# ---------------------------------------------------------------- config and frame window

def test_video_entries_are_checked_and_name_the_field():
    with pytest.raises(ValueError, match=r"\('video'\)\.frame_shape: a video modality needs"):
        small_config(modalities=[{k: v for k, v in VIDEO.items() if k != "frame_shape"}])
    with pytest.raises(ValueError, match=r"\('video'\)\.patch_size: \[1, 8, 8\] must divide .* = \[2, 16, 12\]"):
        small_config(modalities=[{**VIDEO, "frame_shape": [16, 12]}])
    with pytest.raises(ValueError, match=r"\('video'\)\.window: ends at 0.02 s, after the current window's end"):
        small_config(modalities=[{**VIDEO, "window": [0.0, 0.02]}])
    with pytest.raises(ValueError, match=r"kind 'video' goes with source 'stimulus:frames'"):
        small_config(modalities=[{**VIDEO, "source": "stimulus:ids"}])
    with pytest.raises(ValueError, match=r"unknown key \['frame_size'\]"):
        small_config(modalities=[{**VIDEO, "frame_size": [16, 16]}])


def test_video_integer_fields_and_max_tokens_take_numpy_integers_and_save_as_json_integers():
    """``frame_shape``, ``num_frames``, ``patch_size``, ``num_layers`` and ``max_tokens`` were checked
    with ``isinstance(v, int)``: a frame size taken from an array (``np.int64(16)``) was refused as
    "expected [height, width] in pixels (integers >= 1)", though ``block`` / ``num_features`` take
    numpy integers. They are taken now and stored as Python ints, so config.json serializes."""
    i = np.int64
    cfg = small_config(modalities=[{**VIDEO, "frame_shape": [i(16), i(16)], "num_frames": i(2),
                                    "patch_size": [i(1), i(8), i(8)], "num_layers": i(1)},
                                   {"name": "x", "source": "behaviour:x", "kind": "continuous", "max_tokens": i(4)}])
    saved = json.loads(cfg.to_json_string())["modalities"]
    assert (saved[0]["frame_shape"], saved[0]["num_frames"], saved[0]["patch_size"], saved[0]["num_layers"],
            saved[1]["max_tokens"]) == ([16, 16], 2, [1, 8, 8], 1, 4)
    v, x = cfg.modalities
    assert {type(n) for n in [*v["frame_shape"], *v["patch_size"], v["num_frames"], v["num_layers"], x["max_tokens"]]} == {int}
    # a fraction, a bool or text is refused; a whole float (2.0, as YAML may write it) is taken, as by checked_int
    for key, bad in (("num_frames", 2.5), ("num_frames", True), ("frame_shape", [16.5, 16]), ("num_layers", "1")):
        with pytest.raises(ValueError, match=rf"\('video'\)\.{key}: expected"):
            small_config(modalities=[{**VIDEO, key: bad}])
    v = small_config(modalities=[{**VIDEO, "num_frames": 2.0, "frame_shape": [16.0, 16]}]).modalities[0]
    assert (v["num_frames"], v["frame_shape"]) == (2, [16, 16]) and type(v["num_frames"]) is int


def test_colour_frames_in_memory_are_refused_saying_how_to_make_them_grey():
    """(n, H, W, 3) frames were refused as "expected (n_frames, height, width) grey levels", with no
    word that colour is the problem nor of the grey conversion read_nwb applies to a colour series."""
    from hf_neuroformer.recording import RecordingValidationError

    rgb = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(RecordingValidationError, match=r"stimulus\.frames: .*\(3, 4, 4, 3\).*colour.*"
                                                       r"frames\[\.\.\., :3\]\.mean\(-1\)"):
        SpikeRecording(spike_times=np.array([0.05]), unit_ids=np.array([0]), time_domain=(0.0, 1.0),
                       stimulus=Stimulus(frames=rgb, frame_times=np.array([0.0, 0.1, 0.2])))
    # grey frames with a channel axis of one (which read_nwb takes) named no cause either
    with pytest.raises(RecordingValidationError, match=r"^stimulus\.frames: .*got shape \(3, 4, 4, 1\); grey frames with "
                                                       r"a channel axis of one \(channels last\) are frames\[\.\.\., 0\]"):
        SpikeRecording(spike_times=np.array([0.05]), unit_ids=np.array([0]), time_domain=(0.0, 1.0),
                       stimulus=Stimulus(frames=rgb[..., :1], frame_times=np.array([0.0, 0.1, 0.2])))


def test_frames_of_the_wrong_shape_or_missing_are_refused(allen_video):
    cfg = small_config(modalities=[{**VIDEO, "frame_shape": [8, 8]}])
    with pytest.raises(ValueError, match=r"\('video'\)\.frame_shape: expected frames of shape \(n_frames, 8, 8\).*"
                                         r"\(2400, 16, 16\)"):
        modality_columns(allen_video, cfg, [0.0])
    no_frames = replace(allen_video, stimulus=replace(allen_video.stimulus, frames=None, frame_times=None))
    with pytest.raises(ValueError, match=r"\('video'\)\.source: 'stimulus:frames' is not in the recording"):
        modality_columns(no_frames, small_config(modalities=[VIDEO]), [0.0])


def test_frames_on_another_pixel_scale_than_the_training_frames_are_warned_of():
    """A model trained on frames in [0, 1] given the same frames as 0-255 integers (or the reverse)
    normalised them with the training mean / std and read every pixel hundreds of standard
    deviations off, without a word; the commands that run a trained model check the recording with
    check_recording_modalities, which now warns, naming both scales."""
    from hf_neuroformer.modalities import check_recording_modalities

    rec = _ramp_recording(np.arange(10) * 0.1, shape=(16, 16))  # frames 0..9: mean 4.5, std 2.87
    px = rec.stimulus.frames.astype(np.float64)
    same = small_config(modalities=[{**VIDEO, "mean": [px.mean()], "std": [px.std()]}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recording_modalities(same, rec)
    for scale in (255.0, 1 / 255.0):
        other = small_config(modalities=[{**VIDEO, "mean": [px.mean() / scale], "std": [px.std() / scale]}])
        with pytest.warns(UserWarning, match=r"--data: the model's modality 'video' normalises pixels with the "
                                             r"training frames' mean .* but this recording's frames \(float32\) have "
                                             r"mean 4\.5 and std 2\.872: another pixel scale"):
            check_recording_modalities(other, rec)


def test_a_normalization_none_model_given_frames_on_another_pixel_scale_is_warned_of(allen_video):
    """Break test: the pixel-scale check ran only for a ``"zscore"`` video modality, so a
    ``normalization: none`` model trained on the rendered gratings (floats within [-1, 1]) and given the
    same frames as uint8 0-255 read every pixel as it is, far outside its training frames, without a
    word. fit_modalities now records the training frames' pixel mean / std for ``"none"`` too (not
    applied), the check compares them, and a config saved before they were recorded still loads."""
    from hf_neuroformer.modalities import check_recording_modalities, fit_modalities
    from hf_neuroformer.windows import plan_splits

    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg",
                       modalities=[{**VIDEO, "normalization": "none"}])
    fit_modalities(allen_video, cfg, plan_splits(allen_video, cfg))
    saved = nf_config_round_trip(cfg)
    mod = saved.modalities[0]
    assert mod["normalization"] == "none" and mod["mean"] is not None and mod["std"][0] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recording_modalities(saved, allen_video)  # the training frames' own scale: no warning
    stim = allen_video.stimulus
    as_uint8 = np.round((stim.frames + 1) * 127.5).astype(np.uint8)  # the same gratings as 0-255 integers
    uint8 = replace(allen_video, stimulus=replace(stim, frames=as_uint8))
    with pytest.warns(UserWarning, match=r"--data: the model's modality 'video' reads pixels as they are "
                                         r"\(normalization 'none'\), trained on the training frames' mean .* but this "
                                         r"recording's frames \(uint8\) have mean .*: another pixel scale"):
        check_recording_modalities(saved, uint8)
    older = small_config(modalities=[{**VIDEO, "normalization": "none"}])  # saved before: no mean / std
    assert older.modalities[0]["mean"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recording_modalities(older, uint8)


def test_frame_window_holds_the_frames_on_screen_and_never_a_later_one():
    # frames at 0.0, 0.1, ..., 0.9 s; window start 0.25 s, modality window [-0.1, 0.05) -> [0.15, 0.30)
    rec = _ramp_recording(np.arange(10) * 0.1)
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.01, modalities=[
        {**VIDEO, "frame_shape": [4, 4], "patch_size": [1, 2, 2], "num_frames": 3, "window": [-0.1, 0.05]}])
    cols = modality_columns(rec, cfg, [0.25])
    # frame 1 (0.1-0.2 s) is still on screen at 0.15 s; frame 3 starts at 0.30 s, the window's end: not read
    np.testing.assert_allclose(cols["mod_video_times"][0], [-0.15, -0.05])
    assert [f[0, 0] for f in cols["mod_video_frames"][0]] == [1.0, 2.0]
    assert cols["mod_video_n_truncated"][0] == 0
    one = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.01, modalities=[
        {**VIDEO, "frame_shape": [4, 4], "patch_size": [1, 2, 2], "num_frames": 1, "window": [-0.1, 0.05]}])
    cols = modality_columns(rec, one, [0.25])
    assert [f[0, 0] for f in cols["mod_video_frames"][0]] == [2.0] and cols["mod_video_n_truncated"][0] == 1
    # the collator puts the real frames last and masks the missing one
    batch = NeuroformerCollator(modalities=cfg.modalities)._video_inputs(
        cfg.modalities[0], [{"t": [-0.05], "f": [np.full((4, 4), 2.0, np.float32)]}], "t", "f")
    assert batch["mask"].tolist() == [[False, False, True]] and float(batch["frames"][0, 2, 0, 0]) == 2.0


def test_frame_window_reads_no_frame_that_left_the_screen_before_its_start(allen_video):
    """60 Hz Allen frames, modality window [-0.02, 0.01) s: the window starting at 0.12 s spans
    [0.10, 0.13) s and sees frames 6 (0.100 s) and 7 (0.117 s). In floats 0.12 - 0.02 is
    0.09999999999999999, one ulp before frame 6's onset, so frame 5 (0.083-0.100 s, off screen
    for the whole span) was read too: 37 of 2786 windows of a time split's training set."""
    cfg = small_config(modalities=[{**VIDEO, "num_frames": 3}])
    starts = np.round(np.arange(0.0, 20.0, 0.01), 9)
    cols = modality_columns(allen_video, cfg, starts)
    ft = allen_video.stimulus.frame_times
    k12 = int(np.flatnonzero(starts == 0.12)[0])
    np.testing.assert_allclose(starts[k12] + np.asarray(cols["mod_video_times"][k12]), ft[[6, 7]])
    # every frame read was on screen during [s - 0.02, s + 0.01): its successor's onset lies after s - 0.02
    stale = 0
    for s, times in zip(starts, cols["mod_video_times"]):
        idx = np.searchsorted(ft, s + np.asarray(times) - 1e-9)  # index of each frame read
        stale += int(np.sum(ft[idx + 1] <= s - 0.02 + 1e-9))
    assert stale == 0


def test_restrict_and_an_epoch_union_keep_the_frame_on_screen_at_their_start():
    """Frames at 0.0, 0.1, ..., 2.9 s (frame i is all i). The window at 1.25 s, modality window
    [0, 0.05) s, sees frame 12 (1.2-1.3 s). ``restrict(1.25, 3)`` kept only onsets from 1.25 s on,
    so that window read no frame; an epoch of two intervals [0, 1) and [1.25, 3) also dropped the
    frames of the gap, so frame 9 (0.9-1.0 s) seemed on screen until 1.3 s and that window read
    it: a stale frame, 0.35 s old."""
    rec = _ramp_recording(np.arange(30) * 0.1)
    rec = replace(rec, time_domain=(0.0, 3.0), epochs={"e": (0.0, 3.0)},
                  epoch_intervals={"e": np.array([[0.0, 1.0], [1.25, 3.0]])})
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.01, modalities=[
        {**VIDEO, "frame_shape": [4, 4], "patch_size": [1, 2, 2], "num_frames": 2, "window": [0.0, 0.05]}])
    for part in (rec, rec.restrict(1.25, 3.0), rec.select_epoch("e")):
        cols = modality_columns(part, cfg, [1.25])
        assert [float(f[0, 0]) for f in cols["mod_video_frames"][0]] == [12.0]
        np.testing.assert_allclose(cols["mod_video_times"][0], [-0.05])
    # frames wholly outside the kept time are still dropped: [0, 1) keeps frames 0-9, [1.25, 3) frames 12-29
    np.testing.assert_allclose(rec.select_epoch("e").stimulus.frame_times, np.r_[0:10, 12:30] * 0.1)
    # and the first frame from the end on, which ends the last one shown (1.5 s: frame 14 is on screen until it)
    np.testing.assert_allclose(rec.restrict(1.25, 1.5).stimulus.frame_times, [1.2, 1.3, 1.4, 1.5])


def test_restrict_keeps_a_held_frame_on_screen_until_the_next_onset():
    """Frames at 0, 0.1, 0.2 s, then 1.0 and 1.1 s: frame 2 stays on screen from 0.2 to 1.0 s.
    ``restrict(0, 0.8)`` kept frames 0-2 only, so frame 2's end became its onset plus the median
    frame interval (0.3 s), and a window at 0.5 s read no frame though frame 2 was on screen."""
    rec = _ramp_recording([0.0, 0.1, 0.2, 1.0, 1.1])
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.01, modalities=[
        {**VIDEO, "frame_shape": [4, 4], "patch_size": [1, 2, 2], "num_frames": 2, "window": [0.0, 0.05]}])
    for part in (rec, rec.restrict(0.0, 0.8)):
        cols = modality_columns(part, cfg, [0.5])
        assert [float(f[0, 0]) for f in cols["mod_video_frames"][0]] == [2.0]
    np.testing.assert_allclose(rec.restrict(0.0, 0.8).stimulus.frame_times, [0.0, 0.1, 0.2, 1.0])


def test_pixel_statistics_come_from_the_frames_shown_in_the_training_trials(allen_video):
    """Split by trials: the z-score statistics are those of the 6 grating frames of each training
    trial (60 Hz frames, 100 ms trials every 200 ms: trial j shows frames 12 j .. 12 j + 5). A
    trial stored as [0.6000000000000001, 0.7000000000000001) s lost its first frame (0.6 s) and
    one stored as [0.2, 0.30000000000000004) gained the grey frame at 0.3 s: 863 frames instead of
    840, std 0.543 instead of 0.566 at 32 x 32 px."""
    from hf_neuroformer.modalities import fit_modalities
    from hf_neuroformer.windows import plan_splits

    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[VIDEO])
    plan = plan_splits(allen_video, cfg)
    fit_modalities(allen_video, cfg, plan)
    train = np.asarray(plan.trial_index["train"])
    idx = (12 * train[:, None] + np.arange(6)).ravel()
    px = allen_video.stimulus.frames[idx].astype(np.float64)
    assert np.abs(px).max((1, 2)).min() > 0.5  # all grating frames, none of the grey gap
    mod = cfg.modalities[0]
    np.testing.assert_allclose([mod["mean"][0], mod["std"][0]], [px.mean(), px.std()], rtol=1e-12)


def test_pixel_statistics_count_a_frame_shown_from_before_the_training_split_into_it():
    """A frame is read by the training windows whenever it is on screen inside the training split,
    so it counts in the pixel statistics though its onset lies before the split (before, only
    onsets inside counted: mean 2 / std 0, a constant warned about). Also a single frame
    (on screen until the end) counts; before, the fit was refused."""
    from hf_neuroformer.modalities import fit_modalities
    from hf_neuroformer.windows import plan_splits

    rec = _ramp_recording([0.0, 0.35, 0.5, 0.8], shape=(16, 16))  # frame i is all i; ends 0.35, 0.5, 0.8, 1.15
    cfg = small_config(modalities=[VIDEO])
    with pytest.warns(UserWarning, match="split_block_length"):
        plan = plan_splits(rec, cfg)
    np.testing.assert_allclose(plan.segments["train"], [[0.35 + 0.02 / 6, 2 / 3]])  # frames 1 and 2 on screen
    fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["mean"] == pytest.approx([1.5]) and cfg.modalities[0]["std"] == pytest.approx([0.5])
    one = _ramp_recording([0.1], shape=(16, 16))
    one.stimulus.frames[:] = np.arange(16)[:, None]
    cfg = small_config(modalities=[VIDEO])
    with pytest.warns(UserWarning, match="split_block_length"):
        fit_modalities(one, cfg, plan_splits(one, cfg))
    assert cfg.modalities[0]["mean"] == pytest.approx([7.5]) and cfg.modalities[0]["std"] == pytest.approx([np.arange(16).std()])


def test_frame_times_on_another_clock_than_the_spikes_are_warned_of_when_fitting():
    """Frame onsets in milliseconds (0, 100, ..., 900 for a 1-s recording in seconds) overlap the
    recorded time in part: frame 0 was read as on screen for the first 100 s, every window read it,
    and training went on with only "the training split's frames are constant" to hint at it. Most
    onsets outside the time domain are now warned of, naming the recorded time and the frames' span."""
    from hf_neuroformer.modalities import fit_modalities
    from hf_neuroformer.windows import plan_splits

    cfg = small_config(modalities=[VIDEO])
    ms = _ramp_recording(np.arange(10) * 100.0, shape=(16, 16))
    with pytest.warns(UserWarning, match=r"\('video'\): 9 of 10 frames of 'stimulus:frames' are not on screen in "
                                         r"the recorded time \[0, 1\) s \(the frames span 0 to 900 s\); frame_times "
                                         r"must be seconds on the spikes' clock"):
        fit_modalities(ms, cfg, quiet(plan_splits, ms, cfg))
    seconds = _ramp_recording(np.arange(10) * 0.1, shape=(16, 16))
    # nor frames of 1 s each, restricted to 1.5 s: the one shown at its start and the one after its end are kept
    slow = replace(seconds, stimulus=Stimulus(frames=np.tile(np.arange(16.0), (3, 16, 1)), frame_times=np.arange(3.0)),
                   spike_times=np.array([0.55, 1.5]), time_domain=(0.0, 3.0)).restrict(0.5, 2.0)
    for rec in (seconds, slow):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit_modalities(rec, cfg, quiet(plan_splits, rec, cfg))


def test_a_config_reading_frames_refuses_an_epoch_without_a_frame_naming_the_epoch():
    """A movie shown only before the selected epoch left no frame after --epoch: the check that
    train runs on the recording passed it, and training failed later with "no frame of
    'stimulus:frames' inside the training split (it has no values, ...)", naming neither --data
    nor --epoch, as it does for a behaviour series without a sample in the epoch."""
    from hf_neuroformer.modalities import check_recording_modalities

    rec = replace(_ramp_recording(np.arange(5) * 0.1, shape=(16, 16)),  # frames on screen 0-0.5 s
                  spike_times=np.array([0.05, 0.7]), epochs={"early": (0.0, 0.5), "late": (0.6, 1.0)})
    cfg = small_config(modalities=[VIDEO])
    check_recording_modalities(cfg, rec.select_epoch("early"), config_file="video.yaml", epoch_name="early")
    with pytest.raises(ValueError, match=r"--data: the modality 'video' of --config 'video.yaml' reads "
                                         r"'stimulus:frames', which has no frame in --epoch 'late' \(0 frames\)"):
        check_recording_modalities(cfg, rec.select_epoch("late"), config_file="video.yaml", epoch_name="late")


def test_generation_counts_the_frames_beyond_num_frames_it_left_out():
    """Frames every 0.1 s, modality window [-0.1, 0.05) s, num_frames 1: a window at 0.25 s sees
    frames 1 and 2 and keeps only frame 2. train counts such frames per split and the processor
    warns, but generate_spikes dropped them without a word; generation_stats now counts them."""
    import hf_neuroformer as nf
    from tiny_configs import untrained_model

    rec = _ramp_recording(np.arange(10) * 0.1)
    cfg = small_config(current_window=0.05, past_window=0.1, dt_resolution=0.01, modalities=[
        {**VIDEO, "frame_shape": [4, 4], "patch_size": [1, 2, 2], "num_frames": 1, "window": [-0.1, 0.05],
         "mean": [0.0], "std": [1.0]}])
    starts = [0.2, 0.25, 0.3]  # [0.1, 0.25): frames 1, 2; [0.15, 0.3): frames 1, 2; [0.2, 0.35): frames 2, 3
    cols = modality_columns(rec, cfg, starts)
    assert [len(f) for f in cols["mod_video_frames"]] == [1, 1, 1]
    expected = sum(cols["mod_video_n_truncated"])
    assert expected == 3
    tok, model = untrained_model(rec, cfg)
    stats = nf.generate_spikes(model, tok, rec, starts, seed=0, progress=False, max_spikes=2).generation_stats
    assert stats["n_truncated_modality_tokens"] == {"video": expected}


def test_patch_tokens_get_the_3d_positional_encoding():
    cfg = small_config(modalities=[{**VIDEO, "frame_shape": [8, 8], "patch_size": [1, 4, 4], "num_layers": 0,
                                    "mean": [0.0], "std": [1.0]}])
    emb = NeuroformerVideoEmbedding(cfg, cfg.modalities[0])
    torch.nn.init.normal_(emb.row_embeddings.weight)
    torch.nn.init.normal_(emb.column_embeddings.weight)
    grey = {"frames": torch.zeros(1, 2, 8, 8), "times": torch.tensor([[-0.015, -0.005]]),
            "mask": torch.ones(1, 2, dtype=torch.bool)}
    tokens, mask = emb.embed(grey)
    assert tokens.shape == (1, 2 * 2 * 2, 32) and bool(mask.all())
    # identical pixels everywhere: the tokens differ only by their (time, row, column) place
    t = tokens[0].detach().reshape(2, 2, 2, -1)
    assert (t[0, 0, 0] - t[0, 0, 1]).abs().max() > 1e-3  # column
    assert (t[0, 0, 0] - t[0, 1, 0]).abs().max() > 1e-3  # row
    assert (t[0, 0, 0] - t[1, 0, 0]).abs().max() > 1e-3  # time (seconds)
    later = emb.embed({**grey, "times": grey["times"] + 0.01})[0]
    assert (later - tokens).abs().max() > 1e-4
    # a missing frame masks its patches
    _, m = emb.embed({**grey, "mask": torch.tensor([[False, True]])})
    assert m.tolist() == [[False] * 4 + [True] * 4]
    with pytest.raises(ValueError, match=r"modality_inputs\['video'\]\['frames'\]: expected \(batch, 2, 8, 8\)"):
        emb.embed({**grey, "frames": torch.zeros(1, 2, 8, 6)})



def test_modality_times_masks_and_window_counts_that_do_not_fit_the_tokens_are_refused_naming_them(allen_video):
    """Given to the model by hand: a video's ``mask`` or ``times`` of another length failed in a view
    ("shape '[4, 2, 1]' is invalid for input of size 4"), a modality holding fewer windows than
    ``input_ids`` in another view, None in place of a modality's inputs with "'NoneType' object has
    no attribute 'get'" (none naming the modality), and a categorical modality's ``(batch, 1)``
    ``times`` was broadcast: every token of a window got the first one's time, without an error."""
    from tiny_configs import untrained_model

    orientation = {"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical",
                   "classes": [0, 45, 90, 135]}
    cfg = small_config(split_by="trials", modalities=[{**VIDEO, "mean": [0.0], "std": [1.0]}, orientation])
    rec = allen_video.restrict(0.0, 4.0)  # 20 trials
    tok, model = untrained_model(rec, cfg)
    rows = build_window_datasets(rec, tok, cfg)[0]["train"].select(range(4))
    batch = NeuroformerCollator(modalities=cfg.modalities)([rows[i] for i in range(4)])
    video, ori = batch["modality_inputs"]["video"], batch["modality_inputs"]["orientation"]
    assert ori["ids"].shape == (4, 1)  # one trial label per window: three tokens of it, so (4, 1) times broadcast
    ori = {"ids": ori["ids"].repeat(1, 3), "mask": ori["mask"].repeat(1, 3), "times": ori["times"].repeat(1, 3)}

    def run(**changed):
        with torch.no_grad():
            return model(**{**batch, "modality_inputs": {"video": video, "orientation": ori, **changed}})

    assert torch.isfinite(run().logits).all()
    with pytest.raises(ValueError, match=r"modality_inputs\['orientation'\]\['times'\]: expected shape \(4, 3\), "
                                         r"one per token of 'ids'.*got \(4, 1\)"):
        run(orientation={**ori, "times": ori["times"][:, :1]})
    for key in ("mask", "times"):
        with pytest.raises(ValueError, match=rf"modality_inputs\['video'\]\['{key}'\]: expected shape \(4, 2\), one "
                                             r"per token of 'frames'.*got \(4, 1\)"):
            run(video={**video, key: video[key][:, :1]})
    with pytest.raises(ValueError, match=r"modality_inputs\['video'\]: holds 2 windows, expected 4 \(one per window "
                                         r"of input_ids\)"):
        run(video={k: v[:2] for k, v in video.items()})
    with pytest.raises(ValueError, match=r"modality_inputs\['video'\]: expected a dict of tensors .*got NoneType"):
        run(video=None)


# ---------------------------------------------------------------- NWB

def test_frames_round_trip_through_nwb(tmp_path):
    from hf_neuroformer.io import read_nwb, write_nwb

    rec = _ramp_recording(np.arange(10) * 0.1)
    rec = replace(rec, stimulus=replace(rec.stimulus, description="ramp"))
    write_nwb(rec, tmp_path / "v.nwb")
    back = read_nwb(tmp_path / "v.nwb")
    np.testing.assert_array_equal(back.stimulus.frames, rec.stimulus.frames)
    np.testing.assert_allclose(back.stimulus.frame_times, rec.stimulus.frame_times)
    assert back.stimulus.description == "ramp"
    # no description: written with a placeholder, read back as no description (it said "stimulus frames")
    write_nwb(_ramp_recording(np.arange(10) * 0.1), tmp_path / "nodesc.nwb")
    assert read_nwb(tmp_path / "nodesc.nwb").stimulus.description is None


@pytest.mark.parametrize("channels", [1, 3])
def test_nwb_frames_with_a_channel_axis_are_read_as_grey_levels_on_their_rate(tmp_path, channels):
    """An ImageSeries of (n, H, W, 1) grey frames (a channel axis of one) was skipped with "expected
    frames (n, height, width)", so the recording had no frames; (n, H, W, 3) colour frames are read
    as the channel mean. Frames stored with starting_time and rate get onsets start + k / rate (a
    float32 starting_time is read with a warning naming it)."""
    from datetime import datetime, timezone

    import h5py
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    from hf_neuroformer.io import read_nwb

    nwb = NWBFile(session_description="movie", identifier="movie", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    grey = np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((1, 6, 4), dtype=np.uint8)  # frame k is all k
    data = np.repeat(grey[..., None], channels, axis=-1)
    nwb.add_stimulus(ImageSeries(name="movie", data=data, starting_time=0.2, rate=30.0, unit="n/a"))
    with NWBHDF5IO(str(tmp_path / "m.nwb"), "w") as io:
        io.write(nwb)
    rec = quiet(read_nwb, tmp_path / "m.nwb")
    np.testing.assert_array_equal(rec.stimulus.frames, grey.astype(np.float32))
    np.testing.assert_allclose(rec.stimulus.frame_times, 0.2 + np.arange(5) / 30.0)
    # a float32 starting_time (another writer than pynwb) was widened without a word; now named as timestamps are
    store_as_float32(tmp_path / "m.nwb", ("stimulus/presentation/movie/starting_time",))
    rec, notes = float32_notes(read_nwb, tmp_path / "m.nwb")
    assert len(notes) == 1 and notes[0].startswith("read_nwb: stimulus 'movie' starting_time are stored as float32"), notes
    np.testing.assert_array_equal(rec.stimulus.frame_times, float(np.float32(0.2)) + np.arange(5) / 30.0)
    # so is a float32 rate (an attribute of starting_time), which was not named either
    with h5py.File(tmp_path / "m.nwb", "a") as f:
        f["stimulus/presentation/movie/starting_time"].attrs["rate"] = np.float32(29.97)
    rec, notes = float32_notes(read_nwb, tmp_path / "m.nwb")
    assert len(notes) == 2 and notes[1].startswith("read_nwb: stimulus 'movie' rate is stored as float32"), notes
    assert "29.97 as float32 is 29.969999313354492 Hz" in notes[1], notes
    np.testing.assert_allclose(rec.stimulus.frame_times, float(np.float32(0.2)) + np.arange(5) / float(np.float32(29.97)),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("rate", [0.0, float("nan")])
def test_nwb_frames_on_a_rate_of_zero_or_nan_are_skipped_naming_the_rate(tmp_path, rate):
    """An ImageSeries on a rate of 0 or NaN Hz gave NaN onsets, refused as "stimulus.frame_times:
    expected finite times, frame 0 is nan" with advice to sort the frames, naming neither the series
    nor its rate; it is skipped with a warning naming both (as a behaviour series is), the spikes read."""
    import h5py
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    from hf_neuroformer.io import read_nwb

    nwb = NWBFile(session_description="movie", identifier="movie", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    nwb.add_stimulus(ImageSeries(name="movie", data=np.zeros((5, 3, 2), np.uint8), starting_time=0.0, rate=30.0,
                                 unit="n/a"))
    with NWBHDF5IO(str(tmp_path / "m.nwb"), "w") as io:
        io.write(nwb)
    with h5py.File(tmp_path / "m.nwb", "a") as f:
        f["stimulus/presentation/movie/starting_time"].attrs["rate"] = rate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(tmp_path / "m.nwb")
    assert rec.stimulus is None or rec.stimulus.frames is None
    assert rec.n_spikes == 3
    notes = [str(w.message) for w in caught if "movie" in str(w.message)]
    assert notes == [f"stimulus: skipped 'movie' (5 frames): its rate is {rate!r}, expected a finite frame rate > 0 Hz"], notes

def test_nwb_frames_none_of_which_is_on_screen_in_the_recording_are_named_in_a_warning(tmp_path):
    """Frames whose onsets lie past the spikes (milliseconds, another clock) were read without a
    word, and no window could read one; they are kept and named in a warning. Frames that cover part
    of the recording are read quietly (the windows without a frame are counted at training)."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    from hf_neuroformer.io import read_nwb

    def read(start):
        nwb = NWBFile(session_description="m", identifier="m", session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
        nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
        nwb.add_stimulus(ImageSeries(name="movie", data=np.zeros((5, 3, 2), np.uint8), starting_time=start, rate=10.0,
                                     unit="n/a"))
        path = tmp_path / f"m{start}.nwb"
        with NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = read_nwb(path)
        return rec, [str(w.message) for w in caught if str(w.message).startswith("stimulus")]

    rec, notes = read(50.0)
    assert len(rec.stimulus.frames) == 5
    assert notes == [f"stimulus: none of the 5 frames in {tmp_path / 'm50.0.nwb'} is on screen inside the recording's "
                     "time domain [0.1, 0.9) s (onsets 50 to 50.4 s); kept, but no window reads one: are the onsets in "
                     "milliseconds, or on another clock than the spike times?"], notes
    rec, notes = read(0.5)  # on screen from 0.5 s: part of the recording
    assert len(rec.stimulus.frames) == 5 and notes == []
    # from_arrays says the same of frames given in memory, at the caller's line
    from hf_neuroformer.io import from_arrays

    with pytest.warns(UserWarning, match=r"^stimulus: none of the 2 frames is on screen inside the recording's time "
                                         r"domain \[0, 2\) s \(onsets 500 to 600 s\)") as caught:
        rec = from_arrays([0.5, 1.5], [0, 0], time_domain=(0.0, 2.0),
                          stimulus=Stimulus(frames=np.zeros((2, 3, 2)), frame_times=np.array([500.0, 600.0])))
    assert len(rec.stimulus.frames) == 2 and caught[0].filename == __file__

def test_render_gratings_cli_writes_frames_and_states_the_assumptions(shared_data, tmp_path, capsys):
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import read_nwb

    out = tmp_path / "g.nwb"
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out), "--height", "8",
                 "--width", "8", "--temporal-frequency", "4"]) == 0
    assert "ASSUMED" in capsys.readouterr().out
    rec = read_nwb(out)
    assert rec.stimulus.frames.shape == (2400, 8, 8) and "temporal frequency 4.0 Hz" in rec.stimulus.description
    # a grating inside each trial, mean grey in the gaps between trials
    k = np.searchsorted(rec.stimulus.frame_times, rec.trials[0, 1])
    assert np.abs(rec.stimulus.frames[0]).max() > 0.5 and np.abs(rec.stimulus.frames[k]).max() == 0.0
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out)]) == 2  # no overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_every_allen_trial_gets_the_same_frames_from_its_start(shared_data):
    # trial starts are stored as k * 0.2 s (0.6000000000000001) and frame onsets as k / 60 (0.6):
    # a strict comparison started the grating one frame late, or left it on one frame past the end
    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN))
    params = GratingParams(frame_shape=(8, 8))
    v = render_drifting_gratings(rec, params=params).stimulus
    shown = np.abs(v.frames).reshape(len(v.frames), -1).max(axis=1) > 0
    t = v.frame_times
    in_trial = np.zeros(len(t), dtype=bool)
    counts = []
    for i, (a, b) in enumerate(rec.trials):
        idx = np.flatnonzero(np.isclose(t, a, atol=1e-6) | ((t > a) & (t < b) & ~np.isclose(t, b, atol=1e-6)))
        in_trial[idx] = True
        counts.append(int(shown[idx].sum()))
        assert idx.size == 6 and abs(t[idx[0]] - a) < 1e-6, (i, a, t[idx])  # the onset is the trial start
        # the first frame is the grating at 0 s into the trial (the docstring's formula)
        th = np.deg2rad(rec.trial_info["orientation_deg"][i])
        y = (np.arange(8)[::-1] + 0.5) / 8 * 64 - 32
        yy, xx = np.meshgrid(y, y[::-1], indexing="ij")
        expected = 0.8 * np.sin(2 * np.pi * 0.04 * (xx * np.cos(th) + yy * np.sin(th)))
        np.testing.assert_allclose(v.frames[idx[0]], expected, atol=1e-6)
    assert set(counts) == {6}, np.unique(counts, return_counts=True)  # 100 ms at 60 Hz
    assert not shown[~in_trial].any()  # mean grey between trials, never one frame past the end


def test_render_gratings_refuses_a_frame_rate_that_skips_trials_and_frames_too_big(shared_data, tmp_path, capsys):
    from hf_neuroformer.cli import main

    out = tmp_path / "g.nwb"
    # 1 Hz over 100 ms trials: 160 of the 200 trials would get no grating frame at all
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out),
                 "--frame-rate", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--frame-rate" in err and "160 of 200 trials get no frame" in err and ">= 10 Hz" in err, err
    # 2400 frames of 4000 x 4000 float32 = 143 GiB: refused before anything is allocated
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out),
                 "--height", "4000", "--width", "4000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--height/--width" in err and "143.1 GiB" in err and "Traceback" not in err, err
    assert not out.exists()


def test_rendered_orientations_differ_and_drift():
    rec = SpikeRecording(spike_times=np.array([0.01]), unit_ids=np.array([0]), time_domain=(0.0, 0.4),
                         trials=np.array([[0.0, 0.1], [0.2, 0.3]]), trial_info={"orientation_deg": np.array([0, 90])})
    v = render_drifting_gratings(rec, params=GratingParams(frame_shape=(16, 16))).stimulus
    f0, f90 = v.frames[0], v.frames[12]  # trial onsets (0.0 and 0.2 s at 60 Hz)
    assert np.allclose(f0, f0[:1, :])  # 0 deg drifts along x: constant down each column
    assert np.allclose(f90, f90[:, :1])  # 90 deg drifts along y: constant along each row
    assert not np.allclose(v.frames[0], v.frames[1])  # it drifts


# ---------------------------------------------------------------- a model with video

#: what train printed while building the ``trained`` fixture
TRAIN_PRINTED: list = []


@pytest.fixture(scope="module")
def trained(allen_video, tmp_path_factory):
    import contextlib
    import io

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("allen_video")
    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[VIDEO])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        metrics = train(allen_video, out, cfg, TrainingConfig(max_steps=6, batch_size=16, eval_every=3,
                                                              learning_rate=3e-3, generate_test=False),
                        overwrite=True, progress=False)
    TRAIN_PRINTED[:] = [printed.getvalue()]
    return out, metrics


def test_train_prints_the_frames_beyond_num_frames_it_left_out_with_the_setting(trained):
    """train printed 'frames beyond num_frames dropped ... per split' without the value; the
    processor, finetune and generate name it (num_frames = 2): all four now say it in one wording
    (modalities.truncated_tokens_text)."""
    assert re.search(r"modality 'video': frames beyond num_frames = 2 dropped \(earliest first\) per split "
                     r"\{'train': [1-9]", TRAIN_PRINTED[0]), TRAIN_PRINTED[0]


def test_tiny_video_model_trains_reloads_and_reads_its_frames(trained, allen_video):
    from transformers import AutoModelForPreTraining

    from hf_neuroformer.generation import generate_spikes, load_pretrained

    out, metrics = trained
    log = json.loads((out / "training_log.json").read_text())
    assert log[-1]["validation/loss"] < log[0]["validation/loss"] and np.isfinite(metrics["test/id_nll"])
    saved = json.loads((out / "config.json").read_text())["modalities"][0]
    frames = allen_video.stimulus.frames
    assert saved["mean"][0] == pytest.approx(float(frames.mean()), abs=0.05) and saved["std"][0] > 0.1
    model, tok, plan = load_pretrained(out)
    auto = AutoModelForPreTraining.from_pretrained(out).eval()
    ds, _ = build_window_datasets(allen_video, tok, model.config, plan)
    batch = NeuroformerCollator(modalities=model.config.modalities)([ds["test"][i] for i in range(8)])
    assert batch["modality_inputs"]["video"]["frames"].shape == (8, 2, 16, 16)
    with torch.no_grad():
        a = model.eval()(**batch)
        assert torch.allclose(a.logits, auto(**batch).logits, atol=1e-5)
        other = {**batch, "modality_inputs": {"video": {**batch["modality_inputs"]["video"]}}}
        other["modality_inputs"]["video"]["frames"] = torch.flip(batch["modality_inputs"]["video"]["frames"], [-1])
        assert (model(**other).logits - a.logits).abs().max() > 1e-5  # the frames reach the heads
        att = model(**batch, output_attentions=True).modality_attentions
        assert att[0].shape[-1] == 1 + 2 * 2 * 2  # null token + (2 frames x 2 x 2 patches)
    starts = allen_video.trials[plan.trial_index["test"][:2], 0]
    kw = dict(past_clip_starts=starts, max_spikes=20, seed=3, progress=False)
    g1 = generate_spikes(model, tok, allen_video, starts, use_cache=True, **kw)
    g2 = generate_spikes(model, tok, allen_video, starts, use_cache=False, **kw)
    assert g1.n_spikes > 0 and np.array_equal(g1.spike_times, g2.spike_times)


def test_generate_command_prints_the_frames_beyond_num_frames_it_left_out(trained, allen_video, tmp_path, capsys):
    """num_frames 2 over a 30-ms window of 60 Hz frames: some windows see 3 frames. train prints
    how many were left out per split; neuroformer generate said nothing of them."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    out, _ = trained
    data = write_nwb(allen_video, tmp_path / "video.nwb")
    assert main(["generate", "--model", str(out), "--data", str(data), "--output", str(tmp_path / "g.nwb"),
                 "--max-spikes", "2"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"modality 'video': [1-9]\d* frames beyond num_frames = 2 dropped \(earliest first\) over the "
                     r"\d+ windows", printed), printed


def test_model_card_states_the_video_input_and_the_assumed_grating_values(trained, readme_leaves_out):
    from hf_neuroformer.hub import build_model_card

    out, metrics = trained
    assert "ASSUMED" in metrics["stimulus_description"]
    assert not readme_leaves_out(metrics), readme_leaves_out(metrics)
    text = str(build_model_card(out, "someone/allen-video", metrics))
    assert "Input modality `video`: `stimulus:frames`, video" in text and "2 frames of 16x16 px" in text
    assert "Stimulus frames: Drifting sinusoidal gratings rendered from the stored orientation only" in text


def test_example_video_config_loads():
    from pathlib import Path

    cfg, training = load_yaml_config(Path(__file__).resolve().parents[1] / "configs" / "allen_video.yaml")
    assert cfg.modalities[0]["kind"] == "video" and cfg.modalities[0]["patch_size"] == [1, 8, 8]


def test_non_finite_frames_and_aliasing_gratings_are_refused():
    from hf_neuroformer.recording import RecordingValidationError

    rec = _ramp_recording(np.arange(10) * 0.1)
    frames = rec.stimulus.frames.copy()
    frames[7, 1, 2] = np.nan
    with pytest.raises(RecordingValidationError, match=r"stimulus\.frames: expected finite grey levels, 1 frame "
                                                       r"holds NaN .* frame 7 \(onset 0.7"):
        replace(rec, stimulus=replace(rec.stimulus, frames=frames))
    with pytest.raises(RecordingValidationError, match=r"stimulus\.frame_times: expected strictly increasing times, frame 1 "
                                                       r"\(0\.8 s\) does not come after frame 0 \(0\.9 s\)"):
        replace(rec, stimulus=replace(rec.stimulus, frame_times=np.arange(10)[::-1] * 0.1))
    with pytest.raises(ValueError, match=r"spatial_frequency: 0.3 cycles/deg is above the pixel grid's limit of 0.25"):
        GratingParams(spatial_frequency=0.3).validate()
    with pytest.raises(ValueError, match=r"temporal_frequency: expected a finite number >= 0 Hz, got -1"):
        GratingParams(temporal_frequency=-1.0).validate()


def test_frames_cover_a_time_domain_that_is_not_whole_frame_periods():
    """Break test: the frame count was floor(span * frame_rate), so on a 0.245-s recording at 60 Hz
    (14.7 frame periods) the last onset was 0.2167 s, that frame ended at 0.2333 s, and the last
    12 ms of a trial running to the recording's end had no frame: a window there read no frame at
    all (padding) while the grating was on. Every onset before the end now gets its frame."""
    from hf_neuroformer.modalities import modality_track

    rec = SpikeRecording(spike_times=np.array([0.01, 0.24]), unit_ids=np.array([0, 0]), time_domain=(0.0, 0.245),
                         trials=np.array([[0.0, 0.1], [0.2, 0.245]]),
                         trial_info={"orientation_deg": np.array([0.0, 90.0])})
    out = render_drifting_gratings(rec, params=GratingParams(frame_shape=(8, 8)))
    v = out.stimulus
    assert len(v.frame_times) == 15 and v.frame_times[-1] == pytest.approx(14 / 60)
    assert np.allclose(v.frames[-1], v.frames[-1][:, :1]) and np.abs(v.frames[-1]).max() > 0.1  # the 90 deg grating
    video = {"name": "video", "source": "stimulus:frames", "kind": "video", "frame_shape": [8, 8], "num_frames": 3,
             "patch_size": [1, 4, 4], "window": [-0.02, 0.01]}
    mod = small_config(modalities=[video]).modalities[0]
    assert modality_track(out, mod).frames_shown(0.236, 0.245).tolist() == [14]
    # a whole number of frame periods gives the frames it did (Allen: 40 s at 60 Hz, 2400 frames)
    rec = replace(rec, time_domain=(0.0, 0.25), trials=np.array([[0.0, 0.1], [0.2, 0.25]]))
    assert len(render_drifting_gratings(rec, params=GratingParams(frame_shape=(8, 8))).stimulus.frame_times) == 15


def test_a_fractional_or_nan_frame_size_is_refused_naming_frame_shape():
    """Break test: validate() checked int(v) >= 1, so 16.5 px passed and was drawn as 16 px while
    describe() (the NWB file's stimulus description) said 16.5x16 px, and NaN failed with Python's
    bare "cannot convert float NaN to integer". Whole floats (32.0, e.g. from a division) and numpy
    integers are still taken."""
    for shape in ((16.5, 16), (float("nan"), 16), (True, 16), (0, 16)):
        with pytest.raises(ValueError, match=r"^GratingParams\.frame_shape: expected \(height, width\) whole numbers "
                                             r">= 1 px, got"):
            GratingParams(frame_shape=shape).validate()
    rec = SpikeRecording(spike_times=np.array([0.01]), unit_ids=np.array([0]), time_domain=(0.0, 0.2),
                         trials=np.array([[0.0, 0.1]]), trial_info={"orientation_deg": np.array([45.0])})
    for shape in ((8.0, 8.0), (np.int64(8), np.int64(8))):
        assert render_drifting_gratings(rec, params=GratingParams(frame_shape=shape)).stimulus.frames.shape[1:] == (8, 8)


@pytest.mark.parametrize("field, value, expected", [
    ("frame_rate", "60", "a finite number > 0 Hz"),
    ("contrast", "0.8", r"a number in \[0, 1\]"),
    ("contrast", float("nan"), r"a number in \[0, 1\]"),
    ("spatial_frequency", None, "a finite number > 0 cycles/deg"),
    ("frame_shape", 32, r"\(height, width\) whole numbers >= 1 px"),
    ("field_of_view", "ab", r"\(height, width\) finite > 0 deg"),
])
def test_grating_params_that_are_no_numbers_are_refused_naming_the_field(field, value, expected):
    """Text, None or a bare number where a pair belongs (a dict from JSON or a form) failed with
    Python's "must be real number, not str" or "object of type 'int' has no len()", naming no field."""
    with pytest.raises(ValueError, match=rf"^GratingParams\.{field}: expected {expected}, got {re.escape(repr(value))}$"):
        GratingParams(**{field: value}).validate()

def test_frames_that_float32_cannot_hold_are_refused_naming_the_dtype_or_frame():
    """Windows read frames as float32: complex frames lost their imaginary part (a numpy warning per
    window), object frames failed inside isfinite, float64 beyond float32's range became inf."""
    from hf_neuroformer.recording import RecordingValidationError

    rec = _ramp_recording(np.arange(10) * 0.1)
    for frames, match in (
            (rec.stimulus.frames.astype(np.complex64) + 1j, r"expected real grey levels .* got dtype complex64"),
            (rec.stimulus.frames.astype(object), r"expected real grey levels .* got dtype object"),
            (np.where(np.arange(10)[:, None, None] == 4, 1e300, rec.stimulus.frames.astype(np.float64)),
             r"expected grey levels within float32's range .* frame 4 \(onset 0.4")):
        with pytest.raises(RecordingValidationError, match=r"stimulus\.frames: " + match):
            replace(rec, stimulus=replace(rec.stimulus, frames=frames))
    for dtype in (np.uint8, np.int16, bool, np.float64):  # real grey levels of any of these are read
        replace(rec, stimulus=replace(rec.stimulus, frames=rec.stimulus.frames.astype(dtype)))


def test_render_gratings_refuses_infinite_parameters_and_text_columns_naming_the_flag(shared_data, tmp_path, capsys):
    """--frame-rate inf failed with an OverflowError traceback; --temporal-frequency inf drew NaN
    frames, refused only as 'stimulus.frames: ... NaN' (no flag named); a text trial column (Zheng's
    clip names) failed with numpy's "could not convert string to float: 'NB_24.mp4'" (no column named)."""
    from hf_neuroformer.cli import main

    out = tmp_path / "g.nwb"
    base = ["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out), "--height", "8", "--width", "8"]
    for flag, value in (("--frame-rate", "inf"), ("--temporal-frequency", "inf"), ("--spatial-frequency", "nan"),
                        ("--fov-height", "inf")):
        assert main(base + [flag, value]) == 2, flag
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"neuroformer render-gratings: error: {flag}") and "finite" in err, err
    with pytest.raises(ValueError, match=r"^GratingParams\.phase: expected a finite number of radians, got inf"):
        GratingParams(phase=float("inf")).validate()
    assert not out.exists()
    rec = _ramp_recording(np.arange(10) * 0.1)
    rec = replace(rec, trials=np.array([[0.0, 0.3], [0.4, 0.7]]),
                  trial_info={"clip": np.array(["NB_24.mp4", "NB_25.mp4"]), "ori": np.array([0.0, np.nan])})
    with pytest.raises(ValueError, match=r"^column: trial column 'clip': expected numeric orientations in degrees, "
                                         r"got dtype <U9 \(e\.g\. \['NB_24\.mp4', 'NB_25\.mp4'\]\)"):
        render_drifting_gratings(rec, column="clip", params=GratingParams(frame_shape=(8, 8), frame_rate=10.0))
    with pytest.raises(ValueError, match=r"^column: trial column 'ori' has 1 infinite orientation of 2 "
                                         r"trials \(first: trial 1, -inf\); expected .* or NaN for a blank"):
        render_drifting_gratings(replace(rec, trial_info={"ori": np.array([0.0, -np.inf])}), column="ori",
                                 params=GratingParams(frame_shape=(8, 8), frame_rate=10.0))
    # pynwb reads a text trial column as an object array of str (and a missing value as None): the
    # error message itself crashed there ('str' object has no attribute 'tolist')
    rec = replace(rec, trial_info={"clip": np.array(["NB_24.mp4", "NB_25.mp4"], dtype=object),
                                   "ori": np.array([0.0, None], dtype=object)})
    with pytest.raises(ValueError, match=r"^column: trial column 'clip': expected numeric orientations in degrees, "
                                         r"got dtype object \(e\.g\. \['NB_24\.mp4', 'NB_25\.mp4'\]\)"):
        render_drifting_gratings(rec, column="clip", params=GratingParams(frame_shape=(8, 8), frame_rate=10.0))
    with pytest.warns(UserWarning, match=r"1 of 2 trials have no orientation \(NaN in 'ori'; first: trial 1\)"):
        render_drifting_gratings(replace(rec, stimulus=None), column="ori", params=GratingParams(frame_shape=(8, 8), frame_rate=10.0))


def test_rendering_over_frames_the_recording_holds_says_so(shared_data, tmp_path):
    """Break test: render-gratings on a recording that already holds frames (a movie, or gratings
    rendered before with other values) replaced them without a word."""
    import warnings

    from hf_neuroformer.cli import main

    first, second = tmp_path / "g1.nwb", tmp_path / "g2.nwb"
    base = ["render-gratings", "--height", "8", "--width", "8"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing to replace: no warning
        assert main(base + ["--data", str(shared_data(ALLEN)), "--output", str(first)]) == 0
    with pytest.warns(UserWarning, match=r"render_drifting_gratings: the recording already holds 2400 frames of 8x8 "
                                         r"px \(description: 'Drifting sinusoidal gratings .*contrast 0.8.*\); the "
                                         r"returned recording holds the 2400 rendered frames instead \(the input is "
                                         r"unchanged\)"):
        assert main(base + ["--data", str(first), "--output", str(second), "--contrast", "0.2"]) == 0


def test_render_gratings_refuses_to_write_over_its_own_data_file(allen_video, tmp_path, capsys):
    """Walk: 'render-gratings --data v.nwb --output v.nwb --overwrite' replaced the recording it read
    (a movie's frames, or gratings rendered with other values, lost), while its own warning said
    'the input is unchanged'. --overwrite replaces old outputs, never an input (as generate)."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    data = tmp_path / "v.nwb"
    write_nwb(allen_video.restrict(0.0, 2.0), data)
    before = data.read_bytes()
    for out in (data, tmp_path / "." / "v.nwb"):
        assert main(["render-gratings", "--data", str(data), "--output", str(out), "--overwrite",
                     "--height", "8", "--width", "8"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("neuroformer render-gratings: error: --output: ") and "--data" in err, err
        assert data.read_bytes() == before


def test_render_gratings_on_a_recording_without_trials_names_data(shared_data, tmp_path, capsys):
    """Walk: render-gratings --data A2929 (no trials at all) said "--column: 'orientation_deg' is not a
    trial column of the recording (trial columns: [])", pointing at --column, which no value can fix."""
    from hf_neuroformer.cli import main

    data = shared_data("pynapple_A2929_headdirection/A2929-200711.nwb")
    out = tmp_path / "g.nwb"
    assert main(["render-gratings", "--data", str(data), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"neuroformer render-gratings: error: --data: {str(data)!r} has no trials"), err
    assert "allen_vcn_gratings" in err and not out.exists()


def test_render_gratings_frames_too_big_for_the_frame_rate_name_frame_rate(shared_data, tmp_path, capsys):
    """Walk: --frame-rate 100000 (4,000,000 frames of 32 x 32 px, 15 GiB; here 1e6 Hz, 153 GiB, too much anywhere) was refused as
    'GratingParams.frame_shape (--height/--width): ...', naming only the flags of the pixels, though
    the frame rate made the frames too many."""
    from hf_neuroformer.cli import main

    out = tmp_path / "g.nwb"
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out),
                 "--frame-rate", "1000000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--frame-rate" in err and "40000000 frames" in err and "--height/--width" in err, err
    assert not out.exists()


@pytest.mark.parametrize("tf, rate", [("40", "60"), ("30", "60"), ("8", "10")])
def test_a_drift_the_frame_rate_cannot_show_is_refused(shared_data, tmp_path, capsys, tf, rate):
    """Walk: the pixel grid's Nyquist limit was checked (--spatial-frequency), the frame rate's was not:
    --temporal-frequency 40 at 60 Hz drew a grating that steps 2/3 of a cycle per frame, which is seen
    drifting backwards at 20 Hz (and 30 at 60 Hz flickers in place, no direction). The model then
    learns from a stimulus other than the one the file's description states."""
    from hf_neuroformer.cli import main

    out = tmp_path / "g.nwb"
    assert main(["render-gratings", "--data", str(shared_data(ALLEN)), "--output", str(out),
                 "--temporal-frequency", tf, "--frame-rate", rate, "--height", "8", "--width", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuroformer render-gratings: error: --temporal-frequency: ") and "--frame-rate" in err, err
    assert not out.exists()


def test_gratings_refuse_overlapping_trials_rather_than_blank_the_outer_one():
    """Break test (helper-123): with a trial nested in a longer one ([0, 10) and [2, 3) s) each frame
    was drawn from the latest trial started, so after 3 s the rest of the outer trial was mean grey
    without a word. One grating is shown at a time, so overlapping trials are refused, naming both."""
    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.stimuli import render_drifting_gratings

    kw = dict(time_domain=(0.0, 10.0), trial_info={"orientation_deg": np.array([0.0, 90.0])})
    spikes, units = np.array([0.5, 1.5, 4.5, 6.0, 8.0]), np.array([0, 1, 0, 1, 0])
    params = GratingParams(frame_rate=10.0, temporal_frequency=1.0, frame_shape=(8, 8))
    nested = from_arrays(spikes, units, trials=np.array([[0.0, 10.0], [2.0, 3.0]]), **kw)
    with pytest.raises(ValueError, match=r"trials: 1 trial starts before an earlier one ends \(first: trial 1, "
                                         r"\[2, 3\) s, inside trial 0, \[0, 10\) s\)"):
        render_drifting_gratings(nested, params=params)
    # touching trials (the next starts where the last ends) are not an overlap
    ok = render_drifting_gratings(from_arrays(spikes, units, trials=np.array([[0.0, 5.0], [5.0, 10.0]]), **kw),
                                  params=params)
    assert np.abs(ok.stimulus.frames).max(axis=(1, 2)).min() > 0  # every frame shows a grating



def test_gratings_name_an_empty_trial_table_boolean_orientations_and_params_of_another_type():
    """Break test (helper-380): a trial table without rows was refused as "all 0 trials are NaN,
    blank"; a boolean column was drawn as gratings of 1 and 0 degrees without a word; params given as
    a dict (as the hub simulators take theirs) failed with "'dict' object has no attribute
    'validate'". A dict of GratingParams fields is now taken, another type refused naming params."""
    from hf_neuroformer.io.arrays import from_arrays

    kw = dict(time_domain=(0.0, 2.0))
    spikes, units = np.array([0.5, 1.5]), np.array([0, 1])
    params = GratingParams(frame_rate=10.0, temporal_frequency=1.0, frame_shape=(8, 8))
    none = from_arrays(spikes, units, trials=np.zeros((0, 2)), trial_info={"orientation_deg": np.zeros(0)}, **kw)
    with pytest.raises(ValueError, match=r"^trials: the recording has a trial table without rows; expected at least "
                                         r"one trial"):
        render_drifting_gratings(none, params=params)
    trials = np.array([[0.0, 1.0], [1.0, 2.0]])
    flags = from_arrays(spikes, units, trials=trials, trial_info={"orientation_deg": np.array([True, False])}, **kw)
    with pytest.raises(ValueError, match=r"^column: trial column 'orientation_deg' holds booleans \(True / False\); "
                                         r"expected orientations in degrees"):
        render_drifting_gratings(flags, params=params)
    rec = from_arrays(spikes, units, trials=trials, trial_info={"orientation_deg": np.array([0.0, 90.0])}, **kw)
    as_dict = render_drifting_gratings(rec, params=dict(frame_rate=10.0, temporal_frequency=1.0, frame_shape=(8, 8)))
    np.testing.assert_array_equal(as_dict.stimulus.frames, render_drifting_gratings(rec, params=params).stimulus.frames)
    with pytest.raises(ValueError, match=r"^params: \['frame_rat'\] is not a GratingParams field \(did you mean "
                                         r"'frame_rate'\?\); expected keys among"):
        render_drifting_gratings(rec, params={"frame_rat": 10.0})
    with pytest.raises(TypeError, match=r"^params: expected a GratingParams \(or a dict of its fields, or None\), "
                                        r"got list"):
        render_drifting_gratings(rec, params=[10.0])


def test_render_gratings_warns_when_orientations_look_like_radians():
    """Orientations stored in radians (0, pi/4, pi/2, 3 pi/4) were read as degrees without a word, so
    every trial showed a grating within 2.4 deg of horizontal: the stimulus was lost silently."""
    rec = _ramp_recording(np.arange(10) * 0.1)
    params = GratingParams(frame_shape=(8, 8), frame_rate=10.0)
    trials = np.array([[0.0, 0.2], [0.2, 0.4], [0.4, 0.6], [0.6, 0.8]])
    radians = replace(rec, stimulus=None, trials=trials, trial_info={"ori": np.arange(4) * np.pi / 4})
    with pytest.warns(UserWarning, match=r"'ori' holds orientations between 0 and 2\.35619, .* look like radians"):
        render_drifting_gratings(radians, column="ori", params=params)
    import warnings
    for ori in (np.array([0.0, 45.0, 90.0, 135.0]), np.array([0.0, 1.0, 2.0, 3.0]), np.full(4, 0.5)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            render_drifting_gratings(replace(radians, trial_info={"ori": ori}), column="ori", params=params)


def test_blank_trials_with_a_nan_orientation_are_rendered_mean_grey_and_stated(shared_data, tmp_path, capsys):
    """Allen-style blank sweeps (orientation NaN: a grey screen) were refused with "non-finite
    orientation(s) ... expected a finite orientation", no word on what to do with them. They are
    rendered as mean grey frames, with a warning that counts them, and the NWB file's stimulus
    description states them; the other trials keep their gratings. A column of nothing but NaN (no
    grating at all, likely the wrong column) is still refused, naming the column."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import read_allen_gratings, read_nwb, write_nwb

    rec = read_allen_gratings(shared_data(ALLEN)).select_units(range(20))
    ori = np.asarray(rec.trial_info["orientation_deg"], dtype=float).copy()
    ori[[3, 10]] = np.nan
    blanked = replace(rec, trial_info={**rec.trial_info, "orientation_deg": ori})
    params = GratingParams(frame_shape=(8, 8))
    with pytest.warns(UserWarning, match=r"2 of 200 trials have no orientation \(NaN in 'orientation_deg'; first: "
                                         r"trial 3\) and are rendered as blank trials, mean grey"):
        v = render_drifting_gratings(blanked, params=params).stimulus
    full = render_drifting_gratings(rec, params=params).stimulus
    trial = np.searchsorted(rec.trials[:, 0], v.frame_times + 1e-9, side="right") - 1
    in_blank = np.isin(trial, [3, 10]) & (v.frame_times < rec.trials[np.clip(trial, 0, None), 1] - 1e-9)
    assert in_blank.sum() == 12  # 6 frames of each 100 ms trial at 60 Hz
    assert np.abs(v.frames[in_blank]).max() == 0.0  # grey throughout the blank trials
    np.testing.assert_array_equal(v.frames[~in_blank], full.frames[~in_blank])  # the others unchanged
    assert "2 of 200 trials are blank (orientation NaN)" in v.description
    # the CLI writes them, and the description with them
    data, out = tmp_path / "blank.nwb", tmp_path / "g.nwb"
    write_nwb(blanked, data)
    with pytest.warns(UserWarning, match=r"2 of 200 trials have no orientation"):
        assert main(["render-gratings", "--data", str(data), "--output", str(out), "--height", "8",
                     "--width", "8"]) == 0
    assert "2 of 200 trials are blank" in read_nwb(out).stimulus.description
    capsys.readouterr()
    with pytest.raises(ValueError, match=r"^column: trial column 'orientation_deg' holds no orientation \(all 200 "
                                         r"trials are NaN"):
        render_drifting_gratings(replace(rec, trial_info={"orientation_deg": np.full(200, np.nan)}), params=params)


def test_the_rendered_stripes_and_drift_follow_the_documented_orientation_convention():
    """The orientation convention was unchecked: the tests only asked that 0 and 90 deg differ. Here
    the stripe angle and the drift direction are measured from the images (the 2D FFT's peak and
    its phase change between two frames) for orientations that tell clockwise from counter-clockwise
    and a direction from its reverse: the grating's wave vector points at the orientation angle,
    counter-clockwise from rightward with y up (0 deg: vertical bars), and it drifts along it, as
    the docstring now says in words. A phase given in degrees (90 for a quarter cycle) ran as 90 rad
    without a word: it warns."""
    oris = np.array([0.0, 30.0, 120.0, 200.0, 300.0])
    trials = np.stack([np.arange(5) * 0.1, np.arange(5) * 0.1 + 0.1], axis=1)
    rec = SpikeRecording(spike_times=np.array([0.01]), unit_ids=np.array([0]), time_domain=(0.0, 0.5),
                         trials=trials, trial_info={"orientation_deg": oris})
    params = GratingParams(frame_shape=(64, 64), field_of_view=(64.0, 64.0), spatial_frequency=0.125,
                           frame_rate=100.0, temporal_frequency=4.0)
    v = render_drifting_gratings(rec, params=params).stimulus
    freq = np.fft.fftfreq(64)  # cycles per pixel; rows grow downward, so y up is -row
    for i, ori in enumerate(oris):
        f0, f1 = np.fft.fft2(v.frames[10 * i]), np.fft.fft2(v.frames[10 * i + 1])  # one frame apart
        r, c = np.unravel_index(np.argmax(np.abs(f0)), f0.shape)
        kx, ky = freq[c], -freq[r]
        assert np.hypot(kx, ky) == pytest.approx(0.125, abs=0.02)  # 0.125 cycles/deg at 1 px/deg
        # the pattern moves along +k when the phase at k falls between frames
        sign = 1.0 if np.angle(f1[r, c] / f0[r, c]) < 0 else -1.0
        drift = np.degrees(np.arctan2(sign * ky, sign * kx)) % 360
        assert abs((drift - ori + 180) % 360 - 180) < 1.0, (ori, drift)  # 30 deg measures 29.7 on 64 px
    with pytest.warns(UserWarning, match=r"GratingParams\.phase=90 is beyond 2 pi: it looks like degrees"):
        render_drifting_gratings(rec, params=replace(params, phase=90.0))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_drifting_gratings(rec, params=replace(params, phase=np.pi / 2))


def test_processor_checks_the_recording_against_the_model_modalities_once_per_call():
    """Only the commands checked a recording against the model's modalities: the library route,
    ``processor(recording, starts)``, read 0-255 frames with a model trained on [0, 1] frames without
    a word, and a recording without frames failed with a config-level message naming no recording."""
    import hf_neuroformer as nf

    rec = _ramp_recording(np.arange(10) * 0.1, shape=(16, 16))  # frames 0..9: mean 4.5, std 2.87
    px = rec.stimulus.frames.astype(np.float64)
    cfg = small_config(modalities=[{**VIDEO, "mean": [px.mean() / 255], "std": [px.std() / 255]}])
    tok = nf.NeuroformerTokenizer(unit_tokens=nf.NeuroformerTokenizer(unit_tokens=[]).recording_unit_tokens(rec),
                                  current_window=0.01, past_window=0.02, dt_resolution=0.002)
    processor = nf.NeuroformerProcessor(tok, modalities=cfg.modalities)
    for call in (lambda: processor(rec, [0.3, 0.5, 0.7]), lambda: processor.to_dataset(rec, [0.3, 0.5, 0.7])):
        with pytest.warns(UserWarning) as caught:
            call()
        scale = [w for w in caught if "another pixel scale" in str(w.message)]
        assert len(scale) == 1, [str(w.message) for w in caught]  # once per call, not per window
        assert re.match(r"recording: the model's modality 'video' normalises pixels", str(scale[0].message))
        assert scale[0].filename == __file__  # attributed to the caller of the processor
    no_frames = replace(rec, stimulus=None)
    with pytest.raises(ValueError, match=r"^recording: the model's modality 'video' reads 'stimulus:frames', which "
                                         r"this recording does not hold .*pass the recording the model was trained on"):
        processor(no_frames, [0.5])


def test_processor_check_does_not_repeat_the_warnings_of_reading_a_modality():
    """The processor's recording check reads each modality as the windows do, so a warning of the
    reading (angles labelled 'rad' that look like degrees) came twice per call."""
    import hf_neuroformer as nf
    from hf_neuroformer.recording import BehaviourSeries

    t = np.arange(0, 1, 0.005)
    hd = BehaviourSeries(timestamps=t, values=np.where(np.arange(t.size) % 2, 300.0, 0.0), unit="rad")
    rec = SpikeRecording(spike_times=np.array([0.05, 0.5]), unit_ids=np.array([0, 1]), time_domain=(0.0, 1.0),
                         behaviour={"hd": hd})
    cfg = small_config(modalities=[{"name": "hd", "source": "behaviour:hd", "kind": "continuous",
                                    "normalization": "circular"}])
    tok = nf.NeuroformerTokenizer(unit_tokens=nf.NeuroformerTokenizer(unit_tokens=[]).recording_unit_tokens(rec),
                                  current_window=0.01, past_window=0.02, dt_resolution=0.002)
    with pytest.warns(UserWarning) as caught:
        nf.NeuroformerProcessor(tok, modalities=cfg.modalities)(rec, [0.3, 0.5])
    assert [str(w.message)[:45] for w in caught] == ["NeuroformerConfig.modalities[0] ('hd'): behav"]


def test_a_recording_at_another_frame_rate_than_the_training_frames_is_warned_of(allen_video):
    """A model trained on 60 Hz video given 30 Hz video read half the frames per window, each on
    screen twice as long, without a word: fit_modalities now records the training frames' median
    interval (frame_interval) and the check of a trained model's recording (the commands', the
    processor's) warns when the recording's differs by more than 10 %; a config saved before the
    key (None) is not checked."""
    from hf_neuroformer.modalities import check_recording_modalities, fit_modalities
    from hf_neuroformer.windows import plan_splits

    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[VIDEO])
    fit_modalities(allen_video, cfg, plan_splits(allen_video, cfg))
    assert cfg.modalities[0]["frame_interval"] == pytest.approx(1 / 60, rel=1e-3)
    saved = nf_config_round_trip(cfg)
    assert saved.modalities[0]["frame_interval"] == cfg.modalities[0]["frame_interval"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recording_modalities(saved, allen_video)
    stim = allen_video.stimulus
    half = replace(allen_video, stimulus=replace(stim, frames=stim.frames[::2], frame_times=stim.frame_times[::2]))
    with pytest.warns(UserWarning, match=r"--data: the model's modality 'video' was trained on frames every 16\.67 ms "
                                         r"\(60 Hz\), but this recording's frames come every 33\.33 ms \(30 Hz; .*"
                                         r"its windows read fewer frames"):
        check_recording_modalities(saved, half)
    older = small_config(modalities=[{**VIDEO, **{k: saved.modalities[0][k] for k in ("mean", "std")}}])
    assert older.modalities[0]["frame_interval"] is None  # a config saved before the key loads, unchecked
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_recording_modalities(older, half)
    with pytest.raises(ValueError, match=r"\('video'\)\.frame_interval: expected None or .* positive number"):
        small_config(modalities=[{**VIDEO, "frame_interval": -0.01}])


def nf_config_round_trip(cfg):
    """``cfg`` written to JSON and read back, as a saved model's config is."""
    import hf_neuroformer as nf

    return nf.NeuroformerConfig.from_dict(json.loads(cfg.to_json_string()))


def test_likelihoods_and_decoding_check_the_recordings_pixel_scale_once_per_call():
    """``window_log_likelihoods`` and ``decode_windows`` tokenized without the processor's recording
    check: called from Python with 0-255 frames on a model trained on [0, 1] frames, they gave no
    pixel-scale warning (only the commands, which check first, did)."""
    import hf_neuroformer as nf
    from hf_neuroformer.finetuning import decode_windows
    from hf_neuroformer.likelihood import window_log_likelihoods

    rec = _ramp_recording(np.arange(10) * 0.1, shape=(16, 16))  # frames 0..9: mean 4.5, std 2.87
    px = rec.stimulus.frames.astype(np.float64)
    video = {**VIDEO, "mean": [px.mean() / 255], "std": [px.std() / 255]}  # trained on [0, 1] frames
    cfg = small_config(modalities=[video])
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    decoder = nf.NeuroformerForBehaviorDecoding(small_config(
        modalities=[video], vocab_size=len(tok),
        decoding_targets=[{"name": "x", "kind": "regression", "mean": 0.0, "std": 1.0}])).eval()
    starts = [0.3, 0.5, 0.7]
    for call in (lambda **kw: window_log_likelihoods(model, tok, rec, starts, **kw),
                 lambda **kw: decode_windows(decoder, tok, rec, starts, recorded=False, **kw)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        scale = [w for w in caught if "another pixel scale" in str(w.message)]
        assert len(scale) == 1, [str(w.message) for w in caught]  # once per call, not per window
        with warnings.catch_warnings(record=True) as caught:  # a caller that has checked (the commands)
            warnings.simplefilter("always")
            call(check_modalities=False)
        assert not [w for w in caught if "another pixel scale" in str(w.message)]


def test_a_checkpoint_written_before_frame_interval_existed_resumes(allen_video, tmp_path):
    """Break test: a video run's checkpoint written before the modalities recorded
    ``frame_interval`` (d40cc71) holds modality dicts without the key; a resume fits it from the
    recording and was refused as 'written with config.modalities=[...]' (the two differ only in a
    key the checkpoint never had). A key the checkpoint lacks is not compared; another fitted value
    still is (checked in test_training)."""
    torch.set_num_threads(1)
    out = tmp_path / "run"
    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", modalities=[VIDEO])
    tc = TrainingConfig(max_steps=1, batch_size=8, eval_every=1, save_every=1, learning_rate=3e-3, generate_test=False)
    quiet(train, allen_video, out, cfg, tc, overwrite=True, progress=False)
    state_file = next((out / "checkpoints").glob("step-*")) / "trainer_state.json"
    state = json.loads(state_file.read_text())
    stored = state["fingerprint"]["config"]["modalities"]
    assert stored[0]["frame_interval"] is not None
    older = json.loads(json.dumps(state))
    del older["fingerprint"]["config"]["modalities"][0]["frame_interval"]
    state_file.write_text(json.dumps(older))
    quiet(train, allen_video, out, cfg, replace(tc, max_steps=2), progress=False, resume=True)
    assert (out / "checkpoints" / "step-00000002").is_dir()
    # a value the checkpoint holds is still compared: test_training's
    # test_a_checkpoint_of_a_behaviour_modality_from_before_frame_interval_is_compared_without_it


def test_field_of_view_is_a_stimulus_field_that_survives_nwb_and_is_validated(tmp_path):
    """The frames' field of view (degrees of visual angle) was known only as text in the frames
    description ("... px covering 64.0x64.0 deg ..."), parsed back by a regular expression: a
    description edited, translated or from another writer lost it without a word. It is now
    Stimulus.field_of_view ((height, width) degrees, validated), set by render_drifting_gratings,
    written by write_nwb and read back by read_nwb; the description is only a fallback for older files."""
    from hf_neuroformer.io import read_nwb, read_nwb_scratch, write_nwb
    from hf_neuroformer.recording import RecordingValidationError
    from hf_neuroformer.stimuli import stimulus_field_of_view

    rec = SpikeRecording(spike_times=np.array([0.01, 0.24]), unit_ids=np.array([0, 0]), time_domain=(0.0, 0.25),
                         trials=np.array([[0.0, 0.1], [0.2, 0.25]]),
                         trial_info={"orientation_deg": np.array([0.0, 90.0])})
    out = render_drifting_gratings(rec, params=GratingParams(frame_shape=(8, 16), field_of_view=(30.0, 60.0)))
    assert out.stimulus.field_of_view == (30.0, 60.0)
    assert out.restrict(0.0, 0.1).stimulus.field_of_view == (30.0, 60.0)
    # the structured field is read, not the text: a description that states another size no longer decides
    edited = replace(out, stimulus=replace(out.stimulus, description="gratings, 8x16 px covering 1.0x2.0 deg"))
    back = read_nwb(write_nwb(edited, tmp_path / "fov.nwb"))
    assert back.stimulus.field_of_view == (30.0, 60.0) and stimulus_field_of_view(back.stimulus) == (30.0, 60.0)
    assert read_nwb_scratch(tmp_path / "fov.nwb") == {}  # ours, not the caller's scratch
    # an older file (no field): the description is the fallback; none stated: unknown
    old = replace(out, stimulus=replace(out.stimulus, field_of_view=None))
    back = read_nwb(write_nwb(old, tmp_path / "old.nwb"))
    assert back.stimulus.field_of_view is None and stimulus_field_of_view(back.stimulus) == (30.0, 60.0)
    assert stimulus_field_of_view(replace(back.stimulus, description="my movie")) is None
    # validated, naming the field and the value
    for bad in [(0.0, 60.0), (float("nan"), 60.0), (30.0,), (30.0, 60.0, 1.0), "30x60", (True, 60.0), (-1, 2)]:
        with pytest.raises(RecordingValidationError, match=r"Stimulus\.field_of_view: expected \(height, width\) of a "
                                                           r"frame in degrees of visual angle, two finite numbers > 0"):
            replace(out.stimulus, field_of_view=bad)
    fov = Stimulus(frames=out.stimulus.frames, frame_times=out.stimulus.frame_times, field_of_view=[np.int64(30), 60])
    assert fov.field_of_view == (30.0, 60.0) and all(type(v) is float for v in fov.field_of_view)
    set_later = replace(out.stimulus)
    set_later.field_of_view = (30.0, float("inf"))  # past __post_init__: validate() names it
    with pytest.raises(RecordingValidationError, match=r"stimulus\.field_of_view: expected \(height, width\)"):
        replace(out, stimulus=set_later)
    # frames removed (a recording without video): the field stays, and survives the file too
    bare = replace(out, stimulus=replace(out.stimulus, frames=None, frame_times=None))
    assert read_nwb(write_nwb(bare, tmp_path / "bare.nwb")).stimulus.field_of_view == (30.0, 60.0)


def test_an_optical_series_field_of_view_in_metres_at_its_distance_is_read_as_degrees(tmp_path):
    """Another writer's frames as an NWB OpticalSeries state their size on the screen as field_of_view
    (width, height in metres) and the eye's distance (metres); read_nwb left both unread, so the
    attention map said the field of view was not recorded. They now give Stimulus.field_of_view in
    degrees, (height, width) = 2 atan(size / (2 distance)); a size without a distance is named in a
    warning and leaves it None."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import OpticalSeries

    from hf_neuroformer.io import read_nwb

    frames = np.zeros((4, 8, 8), dtype=np.float32)
    for name, distance in (("seen", 0.2), ("nodist", None)):
        nwb = NWBFile(session_description="s", identifier=name, session_start_time=datetime(2024, 1, 1,
                                                                                            tzinfo=timezone.utc))
        nwb.add_unit(spike_times=[0.01, 0.05])
        nwb.add_stimulus(OpticalSeries(name="movie", data=frames, unit="grey level", timestamps=np.arange(4) / 60.0,
                                       field_of_view=[0.4, 0.2], distance=distance, orientation="lower left"))
        with NWBHDF5IO(str(tmp_path / f"{name}.nwb"), "w") as io:
            io.write(nwb)
    back = read_nwb(tmp_path / "seen.nwb")
    h, w = back.stimulus.field_of_view  # 0.2 m high, 0.4 m wide at 0.2 m: 2 atan(0.5) and 2 atan(1) = 90 deg
    assert h == pytest.approx(np.degrees(2 * np.arctan(0.5))) and w == pytest.approx(90.0)
    with pytest.warns(UserWarning, match=r"stimulus: 'movie' states field_of_view \[0\.4, 0\.2\] m at distance None "
                                         r"m; expected .* so stimulus\.field_of_view is not set"):
        assert read_nwb(tmp_path / "nodist.nwb").stimulus.field_of_view is None
