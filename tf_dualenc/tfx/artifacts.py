"""Artifact types the pipeline's custom components produce (TFX's standard ones cover examples, models and blessings).

Type names are `<namespace>.<Name>`: Kubeflow V2 / Vertex AI encode custom types as schema titles of that form.
"""

from tfx.types import artifact


class RetrievalDataset(artifact.Artifact):
    """A BEIR-layout evaluation split: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv` (custom property `split`)."""

    TYPE_NAME = "tf_dualenc.RetrievalDataset"


class RetrievalEvaluation(artifact.Artifact):
    """Retrieval metrics of a model (and of its baseline): `evaluation.json`, `report.json`, `run.trec`."""

    TYPE_NAME = "tf_dualenc.RetrievalEvaluation"


class RetrievalIndexArtifact(artifact.Artifact):
    """A `tf_dualenc.indexing.RetrievalIndex` folder under `<uri>/index` (empty, `skipped`=1, for an unblessed model).

    Named apart from the index class it holds; the type name stays what ML Metadata stores already record."""

    TYPE_NAME = "tf_dualenc.RetrievalIndex"


class CorpusEmbeddings(artifact.Artifact):
    """The evaluation corpus's document embeddings by the blessed model (`tf_dualenc.indexing.corpus_embeddings`
    layout), saved by the evaluator so the indexer need not encode the corpus again (empty, `count` = 0, otherwise)."""

    TYPE_NAME = "tf_dualenc.CorpusEmbeddings"
