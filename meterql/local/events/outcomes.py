"""What each event of a push is answered: :class:`Outcome`, and :class:`Accepted` for a push
whose events were all accepted."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

#: ``accepted`` (stored), ``duplicate`` (the same id and body were stored before: ignored),
#: ``rejected`` (with the reason); corrections answer ``amended`` or ``voided``.
OutcomeStatus = Literal["accepted", "duplicate", "rejected", "amended", "voided"]

_json_string = json.encoder.encode_basestring  # a str as a JSON string literal (non-ASCII kept)


# Not frozen: a batch makes one per event, and slots without frozen make that five times
# cheaper. Never changed after it is made.
@dataclass(slots=True, unsafe_hash=True)
class Outcome:
    """One event's answer; ``index`` is its place in the request."""

    index: int
    id: str | None
    status: OutcomeStatus
    reason: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out


class Accepted(Sequence[Outcome]):
    """The outcomes of a push whose events were all accepted, made from their ids when read
    (a batch of 1,000 events would otherwise make 1,000 objects nobody looks at: the HTTP
    answer is written from the ids, see :func:`answer_json`).

    >>> Accepted(["a", "b"])[1]
    Outcome(index=1, id='b', status='accepted', reason=None)
    """

    __slots__ = ("ids",)

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.ids)))]
        if index < 0:
            index += len(self.ids)
        return Outcome(index, self.ids[index], "accepted")


def split_outcomes(outcomes: Sequence[Outcome | None], sizes: Sequence[int]
                   ) -> list[list[Outcome]]:
    """The outcomes of requests written together (every one filled by then), back per
    request (``sizes``: each one's events, in order), each numbered from 0 again.

    >>> [[o.index for o in part] for part in split_outcomes(
    ...     [Outcome(i, str(i), "accepted") for i in range(3)], [2, 1])]
    [[0, 1], [0]]
    """
    parts: list[list[Outcome]] = []
    start = 0
    for size in sizes:
        part = []
        for outcome in outcomes[start:start + size]:
            if outcome is None:
                raise AssertionError("an event of a written request was left without an outcome")
            part.append(outcome if start == 0 else replace(outcome, index=outcome.index - start))
        parts.append(part)
        start += size
    return parts


def count_outcomes(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many events of a push were accepted, duplicates and rejected.

    >>> count_outcomes(Accepted(["a", "b"]))
    {'accepted': 2, 'duplicate': 0, 'rejected': 0}
    """
    if isinstance(outcomes, Accepted):
        return {"accepted": len(outcomes), "duplicate": 0, "rejected": 0}
    return {k: sum(o.status == k for o in outcomes) for k in ("accepted", "duplicate", "rejected")}


def answer_json(counts: dict[str, int], outcomes: Sequence[Outcome]) -> bytes:
    """``{**counts, "results": [o.describe() ...]}`` as JSON, written directly: a batch's
    answer has one entry per event, and json.dumps of as many dicts costs several times more
    than the batch's own checks. Entries with a reason go through json.dumps."""
    if isinstance(outcomes, Accepted):  # (every event accepted: from the ids alone)
        parts = [f'{{"index":{i},"id":{_json_string(x)},"status":"accepted"}}'
                 for i, x in enumerate(outcomes.ids)]
        outcomes = ()
    else:
        parts = []
    for o in outcomes:
        if o.reason is None:
            ident = "null" if o.id is None else _json_string(o.id)
            parts.append(f'{{"index":{o.index},"id":{ident},"status":"{o.status}"}}')
        else:
            parts.append(json.dumps(o.describe(), ensure_ascii=False))
    head = ",".join(f'"{k}":{v}' for k, v in counts.items())
    return f'{{{head},"results":[{",".join(parts)}]}}'.encode()
