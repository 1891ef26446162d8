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
    # the evaluate metric modules are loaded by path (hf_neuroformer.metrics.load_metric), not
    # imported as packages, so they ship as package data (in the wheel and in the sdist)
    package_data={"hf_neuroformer.metrics": ["evaluate_modules/*/*.py"],
                  # the model card template (model_cards/ links to it)
                  "hf_neuroformer": ["templates/*.md"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        # 5.23 is the first with activation_checkpointing_enable (training.activation_checkpointing);
        # the suite passes on 5.23.0 and 5.24.0 (README, "Set-up")
        "transformers>=5.23",
        "datasets",
        "accelerate",
        "safetensors",
        "huggingface-hub",
        "jinja2",  # model card templates (huggingface_hub.ModelCard.from_template)
        "evaluate",
        "pynwb>=4.2",  # EventsTable (NWB 2.9) for event streams
        "h5py",
        "numpy<2.4",  # brian2 2.9 does not import with numpy 2.4
        "brian2>=2.9",  # reference LIF simulator of the hub networks (neuroformer simulate --kind hub)
        "scipy",
        "scikit-learn",  # decoding metrics and the classical decoding baselines (issue 4)
        "pandas",
        "matplotlib>=3.8",  # Figure.get_suptitle
        "pyyaml",
        "tqdm",
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={"console_scripts": ["neuroformer=hf_neuroformer.cli:main"]},
)
