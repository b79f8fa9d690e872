"""Usage event streams: ``local.events.<stream>``, created by their first event.

A stream's columns are its events' own fields. The first events define them by inference (and
later fields add columns); a declared schema is enforced instead. Every event needs an id (its
idempotency key), a timestamp and a customer; their field names default to ``id``,
``timestamp`` and ``customer_id`` and are set per stream when it is created.

Each event gets an answer: ``accepted`` (stored, durable once the call returns), ``duplicate``
(the same id with the same body was stored before: ignored) or ``rejected`` with the reason
(also: the same id with a different body). Ids are remembered for as long as the data is kept.

Types inferred from JSON values: booleans -> BOOLEAN, integers -> BIGINT, other numbers ->
DECIMAL(38, 9) (exact: numbers are parsed as decimals, and numbers sent as strings are accepted
for decimal fields), strings -> VARCHAR, objects and arrays -> JSON. A BIGINT field that later
receives a fraction widens to DECIMAL(38, 9).
"""

from meterql.local.events.body import check_utf8, parse_body
from meterql.local.events.outcomes import Accepted, Outcome
from meterql.local.events.schemas import StreamConfig
from meterql.local.events.streams import EventStreams

__all__ = ["Accepted", "EventStreams", "Outcome", "StreamConfig", "check_utf8", "parse_body"]
