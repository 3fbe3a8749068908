"""tf_dualenc: TensorFlow/Keras dual-encoder retrieval with the SamToNe loss.

The supported install is `make setup` (or `scripts/setup.sh`), which installs the fully pinned lock in
requirements/lock.txt with --no-deps: the TFX 1.21 family cannot be resolved by pip on glibc < 2.39 (see
requirements/README.md). The ranges below name what the library itself imports.
"""

from setuptools import find_packages, setup

setup(
    name="tf_dualenc",
    version="0.1.0",
    description="Dual-encoder retrieval for TensorFlow/Keras trained with the SamToNe contrastive loss",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tf_dualenc", "tf_dualenc.*", "pipelines", "pipelines.*", "serving", "serving.*"]),
    package_data={"tf_dualenc": ["data/*.jsonl"], "pipelines": ["configs/*.yaml"]},
    install_requires=[
        "keras>=3.15,<3.16",
        "keras-hub>=0.32,<0.33",
        "tensorflow-text>=2.20,<2.21",
        "sentencepiece>=0.2",
        "numpy>=1.26",
    ],
    entry_points={"console_scripts": ["tf-dualenc=tf_dualenc.cli:main"]},
)
