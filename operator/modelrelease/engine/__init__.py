"""The pure rollout engine: (spec, status, observations, now) -> (status, actions)."""
