"""SavedModel export for TF Serving (encoders and retrieval models), the op audit and model card of each export, and
TF Serving's folder layout (`layout.py`)."""

from tf_dualenc.export.exported_dual_encoder import ExportedCrossEncoder, ExportedDualEncoder
from tf_dualenc.export.layout import ExportError, check_model_name, model_versions, next_version, resolve_export
from tf_dualenc.export.model_card import MODEL_CARD_PATH, write_model_card
from tf_dualenc.export.op_audit import OpAudit, audit_saved_model, registered_ops_by_provider, saved_model_ops
from tf_dualenc.export.saved_model_export import (
    INDEX_TYPES,
    MANIFEST_PATH,
    ExportResult,
    export_cross_encoder,
    export_encoder,
    export_precision,
    export_retrieval_model,
    load_export,
    read_manifest,
    scann_defaults,
)

__all__ = [
    "INDEX_TYPES", "MANIFEST_PATH", "MODEL_CARD_PATH", "ExportError", "ExportResult", "ExportedCrossEncoder", "ExportedDualEncoder", "export_cross_encoder", "OpAudit", "audit_saved_model", "export_encoder",
    "export_precision", "check_model_name", "export_retrieval_model", "load_export", "model_versions", "next_version", "read_manifest", "registered_ops_by_provider",
    "resolve_export", "saved_model_ops", "scann_defaults", "write_model_card",
]
