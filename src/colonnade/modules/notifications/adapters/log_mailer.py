"""The default mailer: writes each message to the log instead of sending it.

Enough for a shop that has no mail server yet, and for development: the message itself is
in notifications_messages either way. The recipient is left out of the log line (the log
holds no personal data).
"""

from __future__ import annotations

import structlog

from colonnade.modules.notifications.domain import Mail

log = structlog.get_logger(__name__)


class LogMailer:
    async def send(self, mail: Mail) -> None:
        log.info("notifications.mail_sent", subject=mail.subject, characters=len(mail.body))
