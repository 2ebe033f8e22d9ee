"""Contract status and the renewal list: policy contracts seen at one instant with their usage."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from entitle.engine.decide import UsageView, quota_for
from entitle.engine.model import Contract, Policy
from entitle.engine.periods import lifecycle
from entitle.server.service.wire import LIFECYCLES, quota_to_proto, timestamp
from entitle.v1 import entitle_pb2 as pb


def contract_state(contract: Contract, at: datetime) -> str:
    """planned | active | expired, or suspended: a suspension overrides the dates while set."""
    return "suspended" if contract.suspended else lifecycle(contract, at)


def contract_status(
    policy: Policy, usage: UsageView, contract: Contract, at: datetime
) -> pb.ContractStatus:
    plan = policy.plans[contract.plan_id]
    out = pb.ContractStatus(
        contract_id=contract.id,
        customer_id=contract.customer,
        plan_id=plan.id,
        plan_type=plan.type,
        products=sorted(contract.products or ()),
        all_products=contract.products is None,
        lifecycle=LIFECYCLES[contract_state(contract, at)],
        start_date=contract.start.isoformat(),
        end_date=contract.end.isoformat() if contract.end else "",
        timezone=contract.tz,
        start_at=timestamp(contract.start_at),
        owner=contract.owner or "",
        notify=contract.notify,
    )
    if contract.end_at is not None:
        out.end_at.CopyFrom(timestamp(contract.end_at))
        out.days_to_expiry = (contract.end_at - at).total_seconds() / 86400
    if lifecycle(contract, at) == "active":
        out.quota.CopyFrom(quota_to_proto(quota_for(plan, contract, at, usage)))
    return out


@dataclass(frozen=True)
class ContractFilter:
    """ListContracts filters; an empty value matches everything."""

    customer_id: str = ""
    state: str = ""  # planned | active | expired | suspended
    plan_id: str = ""
    product: str = ""
    ends_before: datetime | None = None

    def matches(self, contract: Contract, at: datetime) -> bool:
        if self.customer_id and contract.customer != self.customer_id:
            return False
        if self.plan_id and contract.plan_id != self.plan_id:
            return False
        if self.product and contract.products is not None and self.product not in contract.products:
            return False
        if self.ends_before is not None and (
            contract.end_at is None or contract.end_at >= self.ends_before
        ):
            return False
        return not self.state or contract_state(contract, at) == self.state


def select_contracts(
    policy: Policy, where: ContractFilter, at: datetime, after: str | None, limit: int
) -> tuple[list[Contract], bool]:
    """Up to `limit` matching contracts ordered by id after `after`, and whether more match."""
    if where.customer_id:
        ids = sorted(c.id for c in policy.by_customer.get(where.customer_id, ()))
    else:
        ids = _sorted_ids(policy)
    start = 0 if after is None else bisect_right(ids, after)
    page: list[Contract] = []
    for cid in islice(ids, start, None):
        contract = policy.contracts[cid]
        if where.matches(contract, at):
            if len(page) == limit:
                return page, True
            page.append(contract)
    return page, False


_ids_cache: tuple[str, list[str]] = ("", [])


def _sorted_ids(policy: Policy) -> list[str]:
    """Contract ids in order, sorted once per revision rather than once per page."""
    global _ids_cache
    revision, ids = _ids_cache
    if revision != policy.revision:
        ids = sorted(policy.contracts)
        _ids_cache = (policy.revision, ids)
    return ids
