"""Kubernetes adapters: Deployments, Services, status patches, events."""
