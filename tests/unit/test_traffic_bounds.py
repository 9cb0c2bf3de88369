"""The generator stays within its bounds: rate, duration, shares, loopback-only targets."""

from __future__ import annotations

import pytest

from devstack.traffic.__main__ import main
from devstack.traffic.generator import MAX_DURATION, MAX_RATE, TrafficConfig


@pytest.mark.parametrize(
    "overrides",
    [
        {"rate": 0},
        {"rate": MAX_RATE + 1},
        {"duration": 0},
        {"duration": MAX_DURATION + 1},
        {"count": -1},
        {"header_share": 1.5},
        {"feedback_noise": -0.1},
    ],
)
def test_out_of_bounds_settings_are_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrafficConfig(**overrides)  # type: ignore[arg-type]


def test_cli_refuses_a_non_loopback_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", "192.168.1.10:8500", "--duration", "1"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_refuses_a_non_loopback_metrics_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", "127.0.0.1:1", "--duration", "1", "--metrics-address", "0.0.0.0:0"]) == 2
    assert "loopback" in capsys.readouterr().err
