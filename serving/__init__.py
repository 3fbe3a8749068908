"""Serving: TF Serving deployment files (models.config, Dockerfile, docker-compose.yml, kubernetes.yaml), a client for
TF Serving's gRPC PredictionService and REST API (`serving.client`), and a local server speaking the same API over
exports (`serving.local_server`) for machines without `tensorflow_model_server`."""
