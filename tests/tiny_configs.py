"""Small pieces shared by the tests: a tiny NeuroformerConfig for the modality tests (Allen-sized
windows: 10 ms current, 20 ms past; test_modalities, test_video, test_visual_attention,
test_cli_errors), an untrained model with its tokenizer for a recording, a quiet call, a
``warnings.showwarning`` that prints to stderr, and an NWB file's datasets stored again as float32."""

import copy
import sys
import warnings

import torch

import hf_neuroformer as nf


def small_config(**kw):
    base = dict(current_window=0.01, past_window=0.02, dt_resolution=0.002, max_window_length=64,
                max_past_length=96, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                intermediate_size=64, hidden_dropout=0.0)
    base.update(kw)
    return nf.NeuroformerConfig(**base)


def untrained_model(recording, config, seed: int = 0):
    """``(tokenizer, model)``: a tokenizer holding ``recording``'s units, ``config.vocab_size`` set to
    its length, and a seeded, untrained ``NeuroformerForPreTraining`` in eval mode."""
    tok = nf.NeuroformerTokenizer.from_config(config)
    tok.add_units(recording)
    config.vocab_size = len(tok)
    torch.manual_seed(seed)
    return tok, nf.NeuroformerForPreTraining(config).eval()


def untrained_decoder(model):
    """An untrained ``NeuroformerForBehaviorDecoding`` (one regression target, ``x``) of ``model``'s
    config, in eval mode: for the calls that take a decoder only, or refuse one."""
    config = copy.deepcopy(model.config)
    config.decoding_targets = [{"name": "x", "kind": "regression"}]
    return nf.NeuroformerForBehaviorDecoding(config).eval()


def quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with warnings silenced (readers of real files warn about skipped parts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def printed_as_the_interpreter_does(message, category, filename, lineno, file=None, line=None):
    """A ``warnings.showwarning`` writing to stderr as the interpreter does, where pytest records them,
    so that a CLI test reads the command's warnings as the user sees them."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def store_as_float32(path, keys):
    """Store the datasets ``keys`` (e.g. ``"units/spike_times"``) of the HDF5 / NWB file ``path``
    again as float32, with their attributes, as a writer other than pynwb may (pynwb writes float64)."""
    import h5py
    import numpy as np

    with h5py.File(path, "a") as f:
        for key in keys:
            data, attrs = f[key][()], dict(f[key].attrs)  # [()]: a scalar too (starting_time)
            del f[key]
            f.create_dataset(key, data=data.astype(np.float32))
            f[key].attrs.update(attrs)


def set_nwb_session_id(path, session: str):
    """Overwrite the ``session_id`` of the NWB file ``path`` in place (h5py), keeping its attributes,
    as an older ``write_nwb`` wrote a session (``""``, ``"a b"``, ``"m/1"``) that
    :meth:`SpikeRecording.validate` now refuses; returns ``path``."""
    import h5py

    with h5py.File(path, "a") as f:
        attrs = dict(f["general/session_id"].attrs)
        del f["general/session_id"]
        f.create_dataset("general/session_id", data=session, dtype=h5py.string_dtype())
        f["general/session_id"].attrs.update(attrs)
    return path


def set_npz_session(path, session: str):
    """Overwrite the ``session`` of the ``.npz`` file ``path`` (as :func:`hf_neuroformer.io.write_npz`
    wrote it), keeping its other arrays, as an older ``write_npz`` wrote a session (``""``) that
    :meth:`SpikeRecording.validate` now refuses; returns ``path``."""
    import numpy as np

    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["session"] = np.asarray(session)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def float32_notes(read, path):
    """``(read(path), notes)``: what the reader ``read`` gives for ``path`` and the messages of the
    ``"stored as float32"`` warnings it gave (every warning caught, ``"always"``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = read(path)
    return out, [str(w.message) for w in caught if "stored as float32" in str(w.message)]
