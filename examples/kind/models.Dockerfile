# TF Serving with the digits SavedModels (versions 1, 2, 3) that `make setup` trains, for kind:
#   docker build -f examples/kind/models.Dockerfile -t digits-serving:local ~/.cache/modelrelease/models
#   kind load docker-image digits-serving:local --name modelrelease
FROM tensorflow/serving:2.18.0
COPY digits /models/digits
