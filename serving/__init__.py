"""Model registry, TF-Serving-compatible REST/gRPC server, prediction clients and Beam batch prediction."""
