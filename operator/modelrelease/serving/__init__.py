"""TF Serving model status and smoke predictions over gRPC."""
