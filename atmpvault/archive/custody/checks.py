"""The checks every accepted custody event gets, against the lot's chain so far.

Pure: given the settings, the lot's identity and the events logged before (corrected
ones replaced by their corrections), it says which checks pass and which fail. A failed
check is a chain break; the event is kept all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from atmpvault.archive.custody.settings import RELABEL, SHIPMENTS, CustodySettings

ORDER, IDENTITY, DIN, TIME, TEMPERATURE, HOLD, SEAL = (
    "order", "identity", "din", "time", "temperature", "hold-time", "seal",
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


def effective(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chain as it stands: each corrected event replaced by its latest correction."""
    chain: list[dict[str, Any]] = []
    place: dict[str, int] = {}
    for event in events:
        corrected = event.get("corrects")
        if corrected and corrected in place:
            index = place[corrected]
            chain[index] = event
            place[event["id"]] = index
        else:
            place[event["id"]] = len(chain)
            chain.append(event)
    return chain


def current_din(chain: list[dict[str, Any]]) -> str | None:
    """The unit's DIN now: the first one given, or the last relabel's."""
    din = None
    for event in chain:
        if event["step"] == RELABEL or din is None:
            din = event.get("din") or din
    return din


def check(
    settings: CustodySettings, coi: str | None, before: list[dict[str, Any]], event: dict[str, Any]
) -> list[Check]:
    """Every check of `event` against the chain `before` it (already effective)."""
    names = settings.names()
    checks = []
    steps = [e for e in before if e["step"] != RELABEL]
    step = event["step"]
    if step != RELABEL:
        index = names.index(step)
        last = names.index(steps[-1]["step"]) if steps else -1
        optional = settings.step(step).optional
        if step in {e["step"] for e in steps} and optional and steps[-1]["step"] == step:
            checks.append(Check(ORDER, True, f"{step} again (an optional step may repeat)"))
        elif step in {e["step"] for e in steps}:
            checks.append(Check(ORDER, False, f"{step} was already logged"))
        elif index <= last:
            checks.append(Check(ORDER, False, f"{step} after {steps[-1]['step']}: out of order"))
        else:
            skipped = [s.name for s in settings.steps[last + 1 : index] if not s.optional]
            detail = f"skipped {', '.join(skipped)}" if skipped else "in order"
            checks.append(Check(ORDER, not skipped, detail))
    identity = coi or next((e["coi"] for e in before if e.get("coi")), None)
    if event.get("coi") and identity and event["coi"] != identity:
        checks.append(
            Check(IDENTITY, False, f"chain-of-identity id {event['coi']} is not {identity}")
        )
    elif event.get("coi") or identity:
        checks.append(Check(IDENTITY, True, f"chain-of-identity id {event.get('coi') or identity}"))
    din = current_din(before)
    if step == RELABEL:
        checks.append(
            Check(DIN, True, f"relabelled {din or 'a unit without DIN'} as {event.get('din')}")
        )
    elif event.get("din") and din and event["din"] != din:
        checks.append(
            Check(DIN, False, f"DIN {event['din']} is not {din} and no relabel changed it")
        )
    elif event.get("din") or din:
        checks.append(Check(DIN, True, f"DIN {event.get('din') or din}"))
    if before:
        previous = max(datetime.fromisoformat(e["at"]) for e in before)
        at = datetime.fromisoformat(event["at"])
        ok = at >= previous
        detail = (
            "after the previous event"
            if ok
            else f"before the previous event ({previous.isoformat()})"
        )
        checks.append(Check(TIME, ok, detail))
    limits = settings.step(step) if step in names else None
    temps = list(event.get("temps") or ())
    logger = (event.get("logger") or {}).get("summary")
    if limits is not None and (limits.low is not None or limits.high is not None):
        out = [t for t in temps if (limits.low is not None and t < limits.low)
               or (limits.high is not None and t > limits.high)]  # fmt: skip
        minutes = float(logger.get("minutes_out_of_range") or 0) if logger else 0.0
        shown = _range(limits.low, limits.high)
        if out or minutes > 0:
            found = ", ".join(f"{t:g} °C" for t in out)
            extra = f"{minutes:g} min out of range in the logger file" if minutes else ""
            checks.append(
                Check(
                    TEMPERATURE,
                    False,
                    f"outside {shown}: {'; '.join(x for x in (found, extra) if x)}",
                )
            )
        elif temps or logger:
            checks.append(Check(TEMPERATURE, True, f"within {shown}"))
    shipped_by = {receipt: shipment for shipment, receipt in SHIPMENTS.items()}
    if step in shipped_by:
        shipment = next((e for e in reversed(steps) if e["step"] == shipped_by[step]), None)
        if shipment is not None:
            hours = (
                datetime.fromisoformat(event["at"]) - datetime.fromisoformat(shipment["at"])
            ).total_seconds() / 3600
            hold = settings.hold(shipment.get("shipper"))
            ok = hours <= hold
            checks.append(
                Check(HOLD, ok, f"{hours:.1f} h in transit; the shipper holds {hold:g} h")
            )
    if event.get("seal"):
        checks.append(Check(SEAL, event["seal"] == "intact", f"seal {event['seal']}"))
    return checks


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g} to {high:g} °C"
    return f"at most {high:g} °C" if high is not None else f"at least {low:g} °C"
