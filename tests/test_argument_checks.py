"""as_dataclass: one check for a parameters argument given as None, an instance or a dict.

The grating renderer and the hub simulators each turned a ``params`` dict into their dataclass with
their own unknown-key check, one naming the closest field and one not; both now call
:func:`hf_neuroformer.argument_checks.as_dataclass`.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from hf_neuroformer.argument_checks import as_dataclass
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
