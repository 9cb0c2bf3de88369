"""The devstack pod runner: a node agent that turns pods bound to its node into real local processes.

``agent`` registers the Node and watches its pods; ``pod`` runs one pod
(IP, volumes, containers, status, deletion); ``container`` one container with
its probes and restarts; ``images`` is the table from image to local program.
The rest are pure pieces written to the kubelet's rules and unit-tested alone:
``expansion`` ($(VAR)), ``backoff``, ``probes``, ``ipam``, ``status``, ``env``.
"""
