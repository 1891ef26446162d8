"""as_dataclass: one check for a parameters argument given as None, an instance or a dict;
check_model_kind: one check for a model of the wrong kind.

The grating renderer and the hub simulators each turned a ``params`` dict into their dataclass with
their own unknown-key check, one naming the closest field and one not; both now call
:func:`hf_neuroformer.argument_checks.as_dataclass`. Generation, decoding and the attention analyses
each restated the refusal of a model of the wrong kind (class names along the MRO, a path told how to
load what it names, another of the package's models given a hint); all three now call
:func:`hf_neuroformer.argument_checks.check_model_kind`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from types import MappingProxyType

import pytest
from torch import nn

import hf_neuroformer as nf
from hf_neuroformer.analysis._batches import check_attention_model
from hf_neuroformer.argument_checks import as_dataclass, check_model_kind
from hf_neuroformer.finetuning import check_decoder_model
from hf_neuroformer.generation import check_next_spike_model
from hf_neuroformer.simulation import HubNetworkParams
from hf_neuroformer.stimuli import GratingParams


@dataclasses.dataclass
class _Segment:
    """A dataclass with what GratingParams lacks: a field without a default, one not in __init__."""

    start: float
    stop: float = 1.0
    n_frames: int = dataclasses.field(init=False, default=0)


def test_none_an_instance_and_a_mapping_give_the_dataclass():
    assert as_dataclass(GratingParams, None) == GratingParams()
    given = GratingParams(frame_rate=30.0)
    assert as_dataclass(GratingParams, given) is given  # as is: not copied
    built = as_dataclass(GratingParams, {"frame_rate": 30.0, "frame_shape": (8, 4)})
    assert built == GratingParams(frame_rate=30.0, frame_shape=(8, 4))
    assert as_dataclass(GratingParams, MappingProxyType({"contrast": 0.5})).contrast == 0.5
    assert as_dataclass(_Segment, {"start": 2.0}) == _Segment(2.0)


def test_unknown_keys_are_each_named_with_the_closest_field_and_the_fields_listed():
    with pytest.raises(ValueError, match=r"^params: \['frame_rat'\] is not a GratingParams field "
                                         r"\(did you mean 'frame_rate'\?\); expected keys among "
                                         r"\['frame_rate', 'frame_shape', "):
        as_dataclass(GratingParams, {"frame_rat": 10.0, "contrast": 0.5})
    # several: each named, a hint for each that resembles a field, none for one that does not
    with pytest.raises(ValueError, match=r"^params: \['frame_rat', 'zzz', 'contrst'\] are not "
                                         r"GratingParams fields \(did you mean 'frame_rate' for "
                                         r"'frame_rat', 'contrast' for 'contrst'\?\); expected "
                                         r"keys among \["):
        as_dataclass(GratingParams, {"frame_rat": 10.0, "zzz": 1, "contrst": 0.5})
    # not a string: named, no hint, no crash in difflib
    with pytest.raises(ValueError, match=r"^params: \[7\] is not a GratingParams field; "
                                         r"expected keys among"):
        as_dataclass(GratingParams, {7: 1.0})
    # a field outside __init__ is no key of the mapping (_Segment(n_frames=...) would fail)
    with pytest.raises(ValueError, match=r"^params: \['n_frames'\] is not a _Segment field; "
                                         r"expected keys among \['start', 'stop'\]$"):
        as_dataclass(_Segment, {"start": 0.0, "n_frames": 3})


def test_a_field_without_default_that_is_missing_is_named():
    with pytest.raises(ValueError, match=r"^segment: _Segment field \['start'\] missing \(it has "
                                         r"no default\); expected keys among \['start', 'stop'\]$"):
        as_dataclass(_Segment, None, "segment")
    with pytest.raises(ValueError, match=r"^params: _Segment field \['start'\] missing"):
        as_dataclass(_Segment, {"stop": 2.0})


def test_another_type_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match=r"^grating: expected a GratingParams \(or a dict of its "
                                        r"fields, or None\), got list$"):
        as_dataclass(GratingParams, [10.0], "grating")
    # another dataclass is not taken for its fields
    with pytest.raises(TypeError, match=r"^params: expected a GratingParams .*, got "
                                        r"HubNetworkParams$"):
        as_dataclass(GratingParams, HubNetworkParams())
    with pytest.raises(TypeError, match=r"^cls: expected a dataclass type, got "):
        as_dataclass(dict, {})
    with pytest.raises(TypeError, match=r"^cls: expected a dataclass type, got GratingParams\("):
        as_dataclass(GratingParams(), {})  # an instance, not the type


_PRETRAINED = dict(expected="a NeuroformerForPreTraining (the model)",
                   hints={"NeuroformerForBehaviorDecoding": "no spikes"})


def _remote_code_class(name):
    """A class of the package's model name defined here, as a model loaded with
    ``trust_remote_code=True`` is: another class object, from another module."""
    return type(name, (nn.Module,), {})


def test_check_model_kind_accepts_a_class_of_the_accepted_name_defined_elsewhere():
    remote = _remote_code_class("NeuroformerForPreTraining")
    assert remote is not nf.NeuroformerForPreTraining and remote.__module__ != nf.NeuroformerForPreTraining.__module__
    assert check_model_kind(remote(), ("NeuroformerForPreTraining",), **_PRETRAINED) is None
    check_next_spike_model(remote())
    check_attention_model(remote())
    # a subclass of it, as any name along the MRO passes; a bare name is one accepted name
    check_model_kind(type("Wrapped", (remote,), {})(), "NeuroformerForPreTraining", **_PRETRAINED)
    check_decoder_model(_remote_code_class("NeuroformerForBehaviorDecoding")())
    check_attention_model(_remote_code_class("NeuroformerModel")())
    # the name decides, not the base class: an nn.Module of another name is refused
    with pytest.raises(TypeError, match=r"^model: expected a NeuroformerForPreTraining \(the model\), got "
                                        r"NeuroformerForPreTrainingX; load one with "
                                        r"AutoModelForPreTraining\.from_pretrained\(<model dir>\)$"):
        check_model_kind(_remote_code_class("NeuroformerForPreTrainingX")(), ("NeuroformerForPreTraining",),
                         **_PRETRAINED)


@pytest.mark.parametrize("given, got", [("/m/model", "str"), (Path("/m/model"), type(Path()).__name__)])
def test_check_model_kind_refuses_a_path_naming_the_field_and_the_load_call(given, got):
    quoted = re.escape(repr(os.fspath(given)))  # '/m/model', as the path is written on this system
    with pytest.raises(TypeError, match=r"^my_model: expected a NeuroformerForPreTraining \(the model\), got "
                                        + got + r" \(a path: load the model it names with "
                                        r"AutoModelForPreTraining\.from_pretrained\(" + quoted + r"\), its "
                                        r"tokenizer with AutoTokenizer\.from_pretrained\)$"):
        check_model_kind(given, ("NeuroformerForPreTraining",), "my_model", **_PRETRAINED)
    with pytest.raises(TypeError, match=r"^decoder: expected a NeuroformerForBehaviorDecoding .*got " + got
                                        + r" \(a path: load the decoder it names with load_decoder\(" + quoted
                                        + r"\)\)$"):
        check_decoder_model(given, "decoder")
    with pytest.raises(TypeError, match=r"^pretrained: expected a NeuroformerForPreTraining \(or its backbone "
                                        r"NeuroformerModel\), got " + got + r" \(a path: "):
        check_attention_model(given, "pretrained")  # the flag check_attention_model now takes, as the others


def test_check_model_kind_refuses_none_and_gives_another_kind_its_hint():
    with pytest.raises(TypeError, match=r"^my_model: expected a NeuroformerForPreTraining \(the model\), got "
                                        r"NoneType; load one with AutoModelForPreTraining\.from_pretrained"
                                        r"\(<model dir>\)$"):
        check_model_kind(None, ("NeuroformerForPreTraining",), "my_model", **_PRETRAINED)
    with pytest.raises(TypeError, match=r"^decoder: .*got NoneType; load one with load_decoder\(<decoder dir>\)$"):
        check_decoder_model(None, "decoder")
    # another of the package's kinds (here a remote-code one): its hint, then how to get the kind wanted
    decoder = _remote_code_class("NeuroformerForBehaviorDecoding")()
    with pytest.raises(TypeError, match=r"^my_model: .*got NeuroformerForBehaviorDecoding \(a behaviour "
                                        r"decoder: no spikes\); load the pretrained model with "
                                        r"AutoModelForPreTraining\.from_pretrained\(<model dir>\)$"):
        check_model_kind(decoder, ("NeuroformerForPreTraining",), "my_model", **_PRETRAINED)
    with pytest.raises(TypeError, match=r"^model: .*got NeuroformerModel \(the backbone alone, as "
                                        r"AutoModel\.from_pretrained loads it: it has no behaviour heads\); "
                                        r"fine-tune one with finetune, load it with load_decoder\(<decoder dir>\)$"):
        check_decoder_model(_remote_code_class("NeuroformerModel")())


def test_check_model_kind_refuses_accepted_names_or_hints_it_does_not_know():
    for accepted in ((), ("NeuroformerModel",), ["Unknown", "NeuroformerForPreTraining"]):
        with pytest.raises(ValueError, match=r"^accepted: expected class names starting with one of "
                                             r"\['NeuroformerForBehaviorDecoding', 'NeuroformerForPreTraining'\]"):
            check_model_kind(None, accepted, **_PRETRAINED)
    with pytest.raises(ValueError, match=r"^hints: expected keys among \['NeuroformerForBehaviorDecoding', "
                                         r"'NeuroformerForPreTraining', 'NeuroformerModel'\], got \['Decoder'\]$"):
        check_model_kind(None, ("NeuroformerForPreTraining",), expected="x", hints={"Decoder": "no spikes"})
