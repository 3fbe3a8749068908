"""The pipeline's custom components, one per module: ingest, retrieval evaluator, Beam indexer, serving pusher."""
