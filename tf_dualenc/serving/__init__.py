"""Serving: a client for TF Serving's gRPC PredictionService and REST API (`tf_dualenc.serving.client`), and a local
server speaking the same API over exports (`tf_dualenc.serving.local_server`, also `tf-dualenc serve`) for machines
without `tensorflow_model_server`. The deployment files (models.config, Dockerfile, docker-compose.yml,
kubernetes.yaml) are not part of the package: they stay in the repository's top-level `serving/` folder."""
