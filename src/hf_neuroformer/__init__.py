"""hf_neuroformer: Neuroformer (Antoniades et al., ICLR 2024) in the Hugging Face ecosystem.

Importing the package registers the model with ``AutoConfig``, ``AutoTokenizer``,
``AutoProcessor`` (:class:`NeuroformerProcessor`: windows of a recording -> input tensors),
``AutoModel``, ``AutoModelForPreTraining``, ``AutoModelForCausalLM`` and (behaviour decoding)
``AutoModelForSequenceClassification``.
"""

import sys as _sys

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoProcessor,
    AutoTokenizer,
)

from .configuration_neuroformer import NeuroformerConfig
from .generation import generate_spikes
from .hub import HubPushError, push_to_hub
from .modeling_neuroformer import (
    NeuroformerDecodingOutput,
    NeuroformerForBehaviorDecoding,
    NeuroformerForPreTraining,
    NeuroformerModel,
    NeuroformerModelOutput,
    NeuroformerPreTrainedModel,
    NeuroformerPreTrainingOutput,
)
from .processing_neuroformer import NeuroformerProcessor, TruncatedWindowsWarning
from .recording import BehaviourSeries, EventSeries, RecordingValidationError, SpikeRecording, Stimulus
from .simulation import (
    HubNetworkParams,
    SimulatedNetwork,
    default_recording,
    read_network,
    simulate_coupled_network,
    simulate_hub_glm,
    simulate_hub_network,
    write_network,
)
from .tokenization_neuroformer import NeuroformerTokenizer, TokenIdError, UnknownUnitError
from .windows import NeuroformerCollator, build_window_datasets, plan_splits

__version__ = "0.1.0"

AutoConfig.register("neuroformer", NeuroformerConfig, exist_ok=True)
AutoTokenizer.register(NeuroformerConfig, slow_tokenizer_class=NeuroformerTokenizer, exist_ok=True)
AutoProcessor.register(NeuroformerConfig, NeuroformerProcessor, exist_ok=True)
AutoModel.register(NeuroformerConfig, NeuroformerModel, exist_ok=True)
AutoModelForPreTraining.register(NeuroformerConfig, NeuroformerForPreTraining, exist_ok=True)
AutoModelForCausalLM.register(NeuroformerConfig, NeuroformerForPreTraining, exist_ok=True)
# behaviour decoding (regression / classification / circular heads): the closest HF Auto class
AutoModelForSequenceClassification.register(NeuroformerConfig, NeuroformerForBehaviorDecoding, exist_ok=True)

__all__ = [
    "NeuroformerConfig",
    "NeuroformerTokenizer",
    "UnknownUnitError",
    "TokenIdError",
    "NeuroformerProcessor",
    "TruncatedWindowsWarning",
    "NeuroformerModel",
    "NeuroformerForPreTraining",
    "NeuroformerPreTrainedModel",
    "NeuroformerModelOutput",
    "NeuroformerPreTrainingOutput",
    "NeuroformerForBehaviorDecoding",
    "NeuroformerDecodingOutput",
    "SpikeRecording",
    "BehaviourSeries",
    "EventSeries",
    "Stimulus",
    "RecordingValidationError",
    "SimulatedNetwork",
    "simulate_coupled_network",
    "HubNetworkParams",
    "simulate_hub_network",
    "simulate_hub_glm",
    "write_network",
    "read_network",
    "default_recording",
    "NeuroformerCollator",
    "build_window_datasets",
    "plan_splits",
    "generate_spikes",
    "push_to_hub",
    "HubPushError",
]

# The console script (hf_neuroformer_entry) loads argument_checks.py and cli.py as hf_neuroformer.<name>
# before this package, so the import system never set the attributes: `import hf_neuroformer.cli;
# hf_neuroformer.cli.main` then failed in that process. Set them as an import of the submodule does.
for _name in ("argument_checks", "cli"):
    if f"{__name__}.{_name}" in _sys.modules:
        globals()[_name] = _sys.modules[f"{__name__}.{_name}"]
del _name


def __getattr__(name):
    """Import a submodule on first use, so that ``import hf_neuroformer`` is enough for
    ``hf_neuroformer.training.train`` or ``hf_neuroformer.metrics.load_metric`` as the README writes
    them (PEP 562); the package imports its heavier submodules only when one is named.

    Raises:
        AttributeError: ``name`` is neither a public name nor a submodule of the package.
    """
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
