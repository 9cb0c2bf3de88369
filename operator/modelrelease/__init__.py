"""modelrelease: stage TensorFlow Serving model rollouts and judge them from Prometheus."""

__version__ = "0.1.0"

GROUP = "modelrelease.io"
VERSION = "v1alpha1"
KIND = "ModelRelease"
PLURAL = "modelreleases"
