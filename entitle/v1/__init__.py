"""Generated gRPC code for entitle.v1 (from proto/entitle/v1; run scripts/genproto)."""
