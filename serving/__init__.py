"""TF Serving configuration, the gRPC/REST client and the local PredictionService server.

Empty until the serving-path issue lands; the package exists so the project layout is fixed from the start.
"""
