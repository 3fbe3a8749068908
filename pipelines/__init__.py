"""TFX pipeline definition (`create_pipeline`) and its thin runners (local, Beam, Kubeflow V2 / Vertex AI).

Empty until the TFX pipeline issue lands; the package exists so the project layout is fixed from the start.
"""
