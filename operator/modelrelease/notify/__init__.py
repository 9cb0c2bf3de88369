"""Notifications: a webhook told of a rollout's stage changes, approval waits, promotions and rollbacks.

Why a package of three small parts: *what* to tell is decided by a pure
function over the engine's own record of the pass (``events``: the new
``status.history`` entries and the phase, so a notification never says
something the status does not); *how* it reads is a body format
(``formats``: Slack's incoming-webhook JSON or a generic JSON object);
*delivery* is fire-and-forget in the background (``sender``: one bounded
queue and one task per receiver, retries with back-off), so a receiver
that is slow or down never delays a pass.

Receivers are operator-wide (``--notify-webhook``, the chart's
``notifications.webhooks``) or per release (``spec.notifications``, whose
URLs the operator's ``--allowed-webhook-address`` must list, as for the
lifecycle webhooks).
"""

from __future__ import annotations

from modelrelease.notify.events import Notice, notices
from modelrelease.notify.formats import FORMATS, body_of, generic_body, slack_body
from modelrelease.notify.sender import Notifier, Target, parse_target

__all__ = [
    "FORMATS",
    "Notice",
    "Notifier",
    "Target",
    "body_of",
    "generic_body",
    "notices",
    "parse_target",
    "slack_body",
]
