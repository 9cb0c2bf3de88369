"""Waiting for the CRD: a CRD the API server has only just stored is "not yet", never a crash.

Seen starting a fresh devstack for the chaos trials: ``kubectl get crd -o json``
answered ``"status": {"conditions": null}`` right after the apply, and the
wait raised TypeError instead of polling again.
"""

from __future__ import annotations

from devstack.scenario import crd_established


def test_a_crd_just_created_with_null_conditions_is_not_yet_established() -> None:
    assert crd_established({"status": {"conditions": None}}) is None
    assert crd_established({"status": None}) is None
    assert crd_established({}) is None


def test_an_established_crd_gives_its_conditions() -> None:
    conditions = [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]
    assert crd_established({"status": {"conditions": conditions}}) == conditions
    assert crd_established({"status": {"conditions": [{"type": "Established", "status": "False"}]}}) is None
