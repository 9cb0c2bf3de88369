"""A TF-Serving-compatible model server: the real tensorflow_serving.apis protocol over real SavedModels.

devstack cannot run the tensorflow/serving binary (no Docker, no Google apt
repository), so this process stands in for it with the same flags, the same
gRPC services (PredictionService, ModelService), the same REST routes, JSON
formats and error bodies, the same version state machine and the same metric
names; the operator under test talks to it exactly as it would to the real one.

Modules: ``server`` (flags, wiring), ``manager`` (version lifecycle),
``servable`` (one loaded SavedModel), ``grpc_service`` and ``rest`` (the two
front ends), ``rest_json`` (TF Serving's JSON formats, pure), ``config``
(ModelServerConfig / MonitoringConfig text protos), ``metrics``, ``status``.
"""
