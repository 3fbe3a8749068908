"""Embedding-space analysis (t-SNE of both towers, top-1 similarity, same-tower ratio) and HTML run reports."""

from tf_dualenc.analysis.embedding_analysis import (
    AnalysisError,
    EmbeddingAnalysis,
    analyze_embeddings,
    analyze_model,
    sample_evaluation_set,
)
from tf_dualenc.analysis.report import plot_ratio, plot_top1, plot_tsne, write_report

__all__ = [
    "AnalysisError", "EmbeddingAnalysis", "analyze_embeddings", "analyze_model", "plot_ratio", "plot_top1", "plot_tsne",
    "sample_evaluation_set", "write_report",
]
