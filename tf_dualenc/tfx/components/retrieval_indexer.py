"""Beam indexer: encodes a corpus with the blessed model's document encoder (the Beam job of `tf-dualenc build-index`,
`tf_dualenc.indexing.build_index_pipeline`) and builds a ScaNN (or exact) index folder as a `RetrievalIndexArtifact`.

Runs on the pipeline's Beam options (`beam_pipeline_args`: DirectRunner workers locally, Dataflow on Vertex AI). An
unblessed model is not indexed: the artifact is left empty with `skipped` = 1 and the reason. A blessed one's index
also gets the search the evaluator chose on validation (the blessing's `search_fusion`, `search_weight`,
`search_depth`; `record_search`): with a fusion, BM25 over the same documents is built into the index folder, so what
is pushed answers the blessed ranking.

The evaluator has already encoded the test corpus with this model: given its `corpus_embeddings`, and when they are of
the very (id, text) pairs to index and of this model, the index is built from them with no Beam job (the same index
writer; the SciFact corpus took minutes to encode again on 2 cores). Otherwise the corpus is encoded, and the log and
the artifact's `embeddings` property say why; the encoding shows progress lines on stderr unless
TF_DUALENC_PROGRESS=0 (`tf-dualenc pipeline run --quiet`; `tf_dualenc.progress.components_show_progress`).
"""

import json
import os

from absl import logging

from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tf_dualenc.tfx.artifacts import CorpusEmbeddings, RetrievalDataset, RetrievalIndexArtifact
from tf_dualenc.tfx.components.shared import INDEX_FOLDER, blessed_search, is_blessed, record_unblessed, reported_as, serving_dir

COMPONENT = "RetrievalIndexer"


def _saved_embeddings(input_dict, model, corpus, title_separator):
    """(documents, embeddings, "") from the evaluator's output when it fits this corpus and model, else (None, None, why)."""
    from tf_dualenc.indexing.build_index_pipeline import read_documents
    from tf_dualenc.indexing.corpus_embeddings import reusable_embeddings

    saved = input_dict.get("corpus_embeddings") or []
    if not saved:
        return None, None, "no corpus embeddings were given"
    if not saved[0].get_int_custom_property("count"):
        return None, None, f"the evaluator saved none ({saved[0].get_string_custom_property('reason')})"
    documents = read_documents(corpus, title_separator=title_separator)
    embeddings, why = reusable_embeddings(saved[0].uri, documents, model=model.uri)
    return (documents, embeddings, "") if embeddings is not None else (None, None, why)


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from tf_dualenc.data import read_queries
        from tf_dualenc.indexing.build_index_pipeline import index_corpus, index_embeddings
        from tf_dualenc.indexing.retrieval_index import record_search
        from tf_dualenc.progress import components_show_progress

        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(input_dict["blessing"])
        dataset = artifact_utils.get_single_instance(input_dict["eval_dataset"])
        index = artifact_utils.get_single_instance(output_dict["index"])
        if not is_blessed(blessing):
            record_unblessed(blessing, index, "skipped", 1)
            return
        corpus = [p for p in exec_properties["corpus"].split(",") if p] or [os.path.join(dataset.uri, "corpus.jsonl")]
        title_separator = exec_properties["title_separator"]
        build = dict(method=exec_properties["method"], brute_force_below=int(exec_properties["brute_force_below"]),
                     overwrite=True, print_fn=lambda *a: None)
        with reported_as(COMPONENT):
            build["queries"] = list(read_queries(os.path.join(dataset.uri, "queries.jsonl")).values())
            documents, embeddings, why = _saved_embeddings(input_dict, model, corpus, title_separator)
            if embeddings is not None:
                logging.info("%s: building the index from the evaluator's embeddings of the same %d documents by the same model",
                             COMPONENT, len(documents))
                manifest = index_embeddings(serving_dir(model), documents, embeddings, os.path.join(index.uri, INDEX_FOLDER), **build)
                source = "reused from the evaluator"
            else:
                logging.info("%s: encoding the corpus: %s", COMPONENT, why)
                manifest = index_corpus(
                    serving_dir(model), corpus, os.path.join(index.uri, INDEX_FOLDER), make_pipeline=self._make_beam_pipeline,
                    title_separator=title_separator, max_batch_size=int(exec_properties["batch_size"]),
                    progress=components_show_progress(), **build)
                source = f"encoded: {why}"
            search = blessed_search(blessing)
            if search is not None:
                record_search(os.path.join(index.uri, INDEX_FOLDER), search)
                index.set_string_custom_property("search", json.dumps(search))
        index.set_string_custom_property("embeddings", source)
        index.set_int_custom_property("skipped", 0)
        index.set_int_custom_property("count", int(manifest["count"]))
        index.set_string_custom_property("method", manifest["method"])
        index.set_float_custom_property("recall_at_10_vs_exact", float(manifest["recall_at_10_vs_exact"]["recall"]))
        index.set_string_custom_property("manifest", json.dumps({k: manifest[k] for k in ("count", "dimension", "method")}))


class RetrievalIndexerSpec(ComponentSpec):
    PARAMETERS = {
        "corpus": ExecutionParameter(type=str),
        "method": ExecutionParameter(type=str),
        "brute_force_below": ExecutionParameter(type=int),
        "batch_size": ExecutionParameter(type=int),
        "title_separator": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "eval_dataset": ChannelParameter(type=RetrievalDataset),
        "corpus_embeddings": ChannelParameter(type=CorpusEmbeddings, optional=True),
    }
    OUTPUTS = {"index": ChannelParameter(type=RetrievalIndexArtifact)}


class RetrievalIndexer(base_beam_component.BaseBeamComponent):
    """Indexes `corpus` (files or globs; default: the evaluation corpus) with the blessed model.

    Args:
        corpus_embeddings: the evaluator's `CorpusEmbeddings` (optional): used instead of encoding when they are of
            this corpus and this model.
        method: "auto" (exact below `brute_force_below` documents, else ScaNN), "scann" or "brute_force".
        batch_size: largest encoding batch (Beam's BatchElements).
    """

    SPEC_CLASS = RetrievalIndexerSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, model, blessing, eval_dataset, corpus_embeddings=None, *, corpus=(), method="auto", brute_force_below=20_000,
                 batch_size=64, title_separator=" "):
        super().__init__(spec=RetrievalIndexerSpec(
            model=model, blessing=blessing, eval_dataset=eval_dataset, corpus_embeddings=corpus_embeddings, corpus=",".join(corpus),
            method=method,
            brute_force_below=brute_force_below, batch_size=batch_size, title_separator=title_separator,
            index=Channel(type=RetrievalIndexArtifact),
        ))
