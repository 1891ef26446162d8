from setuptools import find_packages, setup

setup(
    name="hf_neuroformer",
    version="0.1.0",
    description="Neuroformer (Antoniades et al., ICLR 2024): generative pretraining on spike trains, "
    "in the Hugging Face ecosystem",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    package_dir={"": "src"},
    packages=find_packages("src"),
    # the console script's entry point, outside the package so that `neuroformer --help` does not
    # import torch (the package's __init__ does; see the module's docstring)
    py_modules=["hf_neuroformer_entry"],
    # the evaluate metric modules are loaded by path (hf_neuroformer.metrics.load_metric), not
    # imported as packages, so they ship as package data (in the wheel and in the sdist)
    package_data={"hf_neuroformer.metrics": ["evaluate_modules/*/*.py"],
                  # the model card template (model_cards/ links to it)
                  "hf_neuroformer": ["templates/*.md"]},
    python_requires=">=3.10",
    install_requires=[
        # transformers 5.23+ requires 2.6 (below it, transformers turns PyTorch off and the package does
        # not import: tried with 2.4.1); the whole suite passes on 2.6.0 (docs/development.md)
        "torch>=2.6",
        # 5.23 is the first with activation_checkpointing_enable (training.activation_checkpointing);
        # the suite passes on 5.23.0 and 5.24.0 (docs/development.md)
        "transformers>=5.23",
        "datasets>=5.1",  # 4.x: no max_buffer_input_shards; 5.0: the one-shard epoch-order test fails
        "accelerate>=1.3",  # unwrap_model(keep_torch_compile=...); 1.2 lacks it, 1.0 lacks dynamo_plugin
        "safetensors>=0.8",  # transformers 5.23 requires it
        "huggingface-hub>=1.31",  # transformers 5.23 requires it; the Hub tests pass on 1.31.0
        # model card templates (huggingface_hub.ModelCard.from_template); 2.11.3 does not import with
        # MarkupSafe 2.1+ (no soft_unicode), and transformers imports it, so neither does the package
        "jinja2>=3.0",
        "evaluate>=0.4",  # 0.4.0 passes; older not tried
        # EventsTable (NWB 2.9) for event streams (from 4.0); 4.0 and 4.1 warn on writing rendered frames
        # (hdmf DtypeConversionWarning, ImageSeries/num_samples int64 -> uint64)
        "pynwb>=4.2",
        "h5py>=3.11",  # 3.10.0 is built for numpy 1: with numpy 2, "numpy.dtype size changed" on import
        # brian2 2.9 does not import with numpy 2.4; 1.26 fails in pyarrow (datasets), which needs 2.0
        "numpy>=2.0,<2.4",
        "brian2>=2.9",  # reference LIF simulator of the hub networks (neuroformer simulate --kind hub)
        # stats.bootstrap(rng=) (metrics.bootstrap, the decoding intervals) is new in 1.15; 1.13.1
        # and 1.14.1 raise TypeError there
        "scipy>=1.15",
        # decoding metrics and the classical decoding baselines (issue 4); 1.8 is the first where
        # l1_ratio alone picks the penalty (before, the "lasso" classifier would silently fit L2)
        "scikit-learn>=1.8",
        "pandas>=2.2",  # 2.2.3 passes; older not tried
        "matplotlib>=3.8.4",  # Figure.get_suptitle (3.8); 3.8.0 to 3.8.3 require numpy<2
        "pyyaml>=5.1",  # transformers, datasets, huggingface_hub require it; 5.1 passes the YAML config tests
        "tqdm>=4.66.3",  # datasets 5.1 requires it; 4.66.3 passes the progress bar tests
    ],
    # pytest-xdist: the README runs the suite in two worker processes (-n 2 --dist loadfile);
    # 3.8.0 runs the whole suite, 3.0.2 passed two test files
    extras_require={"test": ["pytest", "hypothesis", "pytest-xdist>=3.0"]},
    entry_points={"console_scripts": ["neuroformer=hf_neuroformer_entry:main"]},
)
