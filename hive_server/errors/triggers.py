"""Errors of triggers: their specs, the timers that fire them, and webhook deliveries."""

from __future__ import annotations

from hive_server.errors import Conflict, InvalidInput, NotFound, Unauthorized, Unavailable


class TriggerInvalid(InvalidInput):
    """A trigger spec that fails its schema (400)."""

    code = "invalid_trigger"


class TaskRequired(InvalidInput):
    """A trigger without a non-blank task (400)."""

    code = "task_required"

    def __init__(self) -> None:
        super().__init__("a trigger needs a task (what the queen is asked to do when it fires)")


class TriggerNotFound(NotFound):
    """No trigger of that id in the session (404)."""

    code = "trigger_not_found"

    def __init__(self, trigger_id: str):
        super().__init__(f"trigger {trigger_id!r} not found")


class NoAgentTrigger(NotFound):
    """A webhook names a trigger the agent does not have (404)."""

    code = TriggerNotFound.code

    def __init__(self, agent_id: str, trigger_id: str):
        super().__init__(f"no trigger {trigger_id!r} for agent {agent_id!r}")


class NotAWebhookTrigger(NotFound):
    """A webhook names a trigger that is not a webhook trigger (404)."""

    code = TriggerNotFound.code

    def __init__(self, trigger_id: str):
        super().__init__(f"trigger {trigger_id!r} is not a webhook trigger")


class TriggerExists(Conflict):
    """A trigger of that id exists already (409)."""

    code = "trigger_exists"

    def __init__(self, trigger_id: str):
        super().__init__(f"trigger {trigger_id!r} already exists")


class TimerArmed(Conflict):
    """The scheduler runs a timer under that key already (409)."""

    code = "timer_armed"

    def __init__(self, key: str):
        super().__init__(f"timer {key!r} is already armed")


class TimerChanged(Conflict):
    """The timer was armed or the scheduler closed while it was re-armed (409)."""

    code = TimerArmed.code

    def __init__(self, key: str):
        super().__init__(f"timer {key!r} changed while re-arming")


class TimerNotArmed(NotFound):
    """Re-arming a timer the scheduler does not run (404)."""

    code = "timer_not_armed"

    def __init__(self, key: str):
        super().__init__(f"timer {key!r} is not armed")


class SchedulerClosed(Unavailable):
    """Arming a timer after the scheduler closed (503 ``unavailable``)."""

    def __init__(self) -> None:
        super().__init__("trigger scheduler is closed")


class InvalidSignature(Unauthorized):
    """A webhook delivery whose signature does not verify (401)."""

    code = "invalid_signature"

    def __init__(self) -> None:
        super().__init__("invalid signature")


class UnsignedOffLoopback(Unauthorized):
    """An unsigned webhook delivery on a listener that is not loopback (401)."""

    code = InvalidSignature.code

    def __init__(self) -> None:
        super().__init__("unsigned webhooks are accepted only on a loopback listener")


class MissingSignature(Unauthorized):
    """A webhook delivery without its signature headers (401)."""

    code = "missing_signature"

    def __init__(self) -> None:
        super().__init__("missing signature")


class StaleTimestamp(Unauthorized):
    """A webhook delivery whose timestamp is outside the tolerance (401)."""

    code = "stale_timestamp"

    def __init__(self) -> None:
        super().__init__("stale timestamp")


class SecretNotConfigured(Unavailable):
    """The webhook trigger's ``secret_env`` is not set (503)."""

    code = "secret_not_configured"

    def __init__(self, secret_env: str | None):
        super().__init__(f"the webhook secret is not configured ({secret_env})")


class InvalidId(InvalidInput):
    """An agent or trigger id that cannot name an inbox file (400)."""

    code = "invalid_id"

    def __init__(self, what: str):
        super().__init__(f"invalid {what}")


class NotSerialisable(InvalidInput):
    """A delivery the inbox cannot write as JSON (400 ``invalid_input``)."""

    def __init__(self, reason: BaseException):
        super().__init__(f"delivery is not JSON-serialisable: {reason}")


class WebhookInboxFull(Unavailable):
    """The cold-agent inbox is at its size limit (503)."""

    code = "inbox_full"

    def __init__(self) -> None:
        super().__init__("webhook inbox is full")


class InboxUnavailable(Unavailable):
    """A delivery no live session takes could not be held in the inbox (503)."""

    code = "inbox_unavailable"

    def __init__(self, reason: BaseException):
        super().__init__(f"the delivery could not be stored: {reason}")


class DuplicateDelivery(Conflict):
    """A delivery id seen before: answered 200, fires nothing (a ``webhook_rejected`` reason)."""

    code = "duplicate"

    def __init__(self) -> None:
        super().__init__("this delivery id was taken before; it fires nothing")


class TriggerStateUnavailable(Unavailable):
    """The session's trigger state (in Redis) could not be read or stored (503)."""

    code = "trigger_state_unavailable"

    def __init__(self, session_id: str, reason: BaseException):
        super().__init__(f"session {session_id!r}: its trigger state could not be read or "
                         f"stored: {reason}")


class DeliveryStoreUnavailable(Unavailable):
    """The delivery ids seen (in Redis, or the file) could not be checked or recorded (503):
    nothing was accepted, the sender's retry is not a duplicate."""

    code = "webhook_store_unavailable"

    def __init__(self, reason: BaseException):
        super().__init__(f"the delivery could not be checked against the deliveries seen: "
                         f"{reason}")
