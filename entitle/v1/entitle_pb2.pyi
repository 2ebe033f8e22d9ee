import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CoverageReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COVERAGE_REASON_UNSPECIFIED: _ClassVar[CoverageReason]
    COVERAGE_REASON_COVERED: _ClassVar[CoverageReason]
    COVERAGE_REASON_COVERED_OVERAGE: _ClassVar[CoverageReason]
    COVERAGE_REASON_NO_CONTRACT: _ClassVar[CoverageReason]
    COVERAGE_REASON_CONTRACT_NOT_STARTED: _ClassVar[CoverageReason]
    COVERAGE_REASON_CONTRACT_EXPIRED: _ClassVar[CoverageReason]
    COVERAGE_REASON_CONTRACT_SUSPENDED: _ClassVar[CoverageReason]
    COVERAGE_REASON_PRODUCT_NOT_COVERED: _ClassVar[CoverageReason]
    COVERAGE_REASON_QUOTA_EXHAUSTED: _ClassVar[CoverageReason]

class ClockState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLOCK_STATE_UNSPECIFIED: _ClassVar[ClockState]
    CLOCK_STATE_RUNNING: _ClassVar[ClockState]
    CLOCK_STATE_PAUSED: _ClassVar[ClockState]
    CLOCK_STATE_MET: _ClassVar[ClockState]
    CLOCK_STATE_MET_LATE: _ClassVar[ClockState]
    CLOCK_STATE_BREACHED: _ClassVar[ClockState]
    CLOCK_STATE_CANCELLED: _ClassVar[ClockState]
    CLOCK_STATE_INACTIVE: _ClassVar[ClockState]

class Lifecycle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_UNSPECIFIED: _ClassVar[Lifecycle]
    LIFECYCLE_PLANNED: _ClassVar[Lifecycle]
    LIFECYCLE_ACTIVE: _ClassVar[Lifecycle]
    LIFECYCLE_EXPIRED: _ClassVar[Lifecycle]
    LIFECYCLE_SUSPENDED: _ClassVar[Lifecycle]

class AlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_KIND_UNSPECIFIED: _ClassVar[AlertKind]
    ALERT_KIND_USAGE_THRESHOLD: _ClassVar[AlertKind]
    ALERT_KIND_QUOTA_EXHAUSTED: _ClassVar[AlertKind]
    ALERT_KIND_CONTRACT_ACTIVATED: _ClassVar[AlertKind]
    ALERT_KIND_CONTRACT_EXPIRING: _ClassVar[AlertKind]
    ALERT_KIND_CONTRACT_EXPIRED: _ClassVar[AlertKind]
    ALERT_KIND_SLA_WARNING: _ClassVar[AlertKind]
    ALERT_KIND_SLA_BREACHED: _ClassVar[AlertKind]
COVERAGE_REASON_UNSPECIFIED: CoverageReason
COVERAGE_REASON_COVERED: CoverageReason
COVERAGE_REASON_COVERED_OVERAGE: CoverageReason
COVERAGE_REASON_NO_CONTRACT: CoverageReason
COVERAGE_REASON_CONTRACT_NOT_STARTED: CoverageReason
COVERAGE_REASON_CONTRACT_EXPIRED: CoverageReason
COVERAGE_REASON_CONTRACT_SUSPENDED: CoverageReason
COVERAGE_REASON_PRODUCT_NOT_COVERED: CoverageReason
COVERAGE_REASON_QUOTA_EXHAUSTED: CoverageReason
CLOCK_STATE_UNSPECIFIED: ClockState
CLOCK_STATE_RUNNING: ClockState
CLOCK_STATE_PAUSED: ClockState
CLOCK_STATE_MET: ClockState
CLOCK_STATE_MET_LATE: ClockState
CLOCK_STATE_BREACHED: ClockState
CLOCK_STATE_CANCELLED: ClockState
CLOCK_STATE_INACTIVE: ClockState
LIFECYCLE_UNSPECIFIED: Lifecycle
LIFECYCLE_PLANNED: Lifecycle
LIFECYCLE_ACTIVE: Lifecycle
LIFECYCLE_EXPIRED: Lifecycle
LIFECYCLE_SUSPENDED: Lifecycle
ALERT_KIND_UNSPECIFIED: AlertKind
ALERT_KIND_USAGE_THRESHOLD: AlertKind
ALERT_KIND_QUOTA_EXHAUSTED: AlertKind
ALERT_KIND_CONTRACT_ACTIVATED: AlertKind
ALERT_KIND_CONTRACT_EXPIRING: AlertKind
ALERT_KIND_CONTRACT_EXPIRED: AlertKind
ALERT_KIND_SLA_WARNING: AlertKind
ALERT_KIND_SLA_BREACHED: AlertKind

class Ticket(_message.Message):
    __slots__ = ("ticket_id", "customer_id", "product", "priority", "created_at", "subject", "attributes", "pauses", "first_response_at", "resolved_at", "events")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PAUSES_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    customer_id: str
    product: str
    priority: str
    created_at: _timestamp_pb2.Timestamp
    subject: str
    attributes: _containers.MessageMap[str, AttributeValue]
    pauses: _containers.RepeatedCompositeFieldContainer[Pause]
    first_response_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    events: _containers.RepeatedCompositeFieldContainer[TicketEvent]
    def __init__(self, ticket_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., product: _Optional[str] = ..., priority: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., pauses: _Optional[_Iterable[_Union[Pause, _Mapping]]] = ..., first_response_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events: _Optional[_Iterable[_Union[TicketEvent, _Mapping]]] = ...) -> None: ...

class Pause(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TicketEvent(_message.Message):
    __slots__ = ("id", "type", "at", "status", "priority")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    at: _timestamp_pb2.Timestamp
    status: str
    priority: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., priority: _Optional[str] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("string_value", "number_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    number_value: float
    def __init__(self, string_value: _Optional[str] = ..., number_value: _Optional[float] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("ticket_id", "covered", "reason", "explanation", "contract_id", "plan_id", "sla_id", "sla_rule", "targets", "quota", "warnings", "policy_revision", "decided_at")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SLA_ID_FIELD_NUMBER: _ClassVar[int]
    SLA_RULE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    covered: bool
    reason: CoverageReason
    explanation: str
    contract_id: str
    plan_id: str
    sla_id: str
    sla_rule: str
    targets: _containers.RepeatedCompositeFieldContainer[Target]
    quota: Quota
    warnings: _containers.RepeatedScalarFieldContainer[str]
    policy_revision: str
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, ticket_id: _Optional[str] = ..., covered: _Optional[bool] = ..., reason: _Optional[_Union[CoverageReason, str]] = ..., explanation: _Optional[str] = ..., contract_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., sla_id: _Optional[str] = ..., sla_rule: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., quota: _Optional[_Union[Quota, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., policy_revision: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("metric", "minutes", "clock", "calendar_id", "due_at", "state", "paused", "cycle", "priority", "started_at", "elapsed_minutes", "remaining_minutes", "percent_elapsed", "breached_at", "stopped_at", "crossed", "pauses")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    CLOCK_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_ID_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MINUTES_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MINUTES_FIELD_NUMBER: _ClassVar[int]
    PERCENT_ELAPSED_FIELD_NUMBER: _ClassVar[int]
    BREACHED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    CROSSED_FIELD_NUMBER: _ClassVar[int]
    PAUSES_FIELD_NUMBER: _ClassVar[int]
    metric: str
    minutes: float
    clock: str
    calendar_id: str
    due_at: _timestamp_pb2.Timestamp
    state: ClockState
    paused: bool
    cycle: int
    priority: str
    started_at: _timestamp_pb2.Timestamp
    elapsed_minutes: float
    remaining_minutes: float
    percent_elapsed: float
    breached_at: _timestamp_pb2.Timestamp
    stopped_at: _timestamp_pb2.Timestamp
    crossed: _containers.RepeatedCompositeFieldContainer[ThresholdCrossing]
    pauses: _containers.RepeatedCompositeFieldContainer[Pause]
    def __init__(self, metric: _Optional[str] = ..., minutes: _Optional[float] = ..., clock: _Optional[str] = ..., calendar_id: _Optional[str] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[ClockState, str]] = ..., paused: _Optional[bool] = ..., cycle: _Optional[int] = ..., priority: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., elapsed_minutes: _Optional[float] = ..., remaining_minutes: _Optional[float] = ..., percent_elapsed: _Optional[float] = ..., breached_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stopped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., crossed: _Optional[_Iterable[_Union[ThresholdCrossing, _Mapping]]] = ..., pauses: _Optional[_Iterable[_Union[Pause, _Mapping]]] = ...) -> None: ...

class ThresholdCrossing(_message.Message):
    __slots__ = ("percent", "at")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    percent: int
    at: _timestamp_pb2.Timestamp
    def __init__(self, percent: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Quota(_message.Message):
    __slots__ = ("unit", "unlimited", "limit", "used", "remaining", "percent_used", "period_start", "period_end")
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    PERCENT_USED_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    unit: str
    unlimited: bool
    limit: float
    used: float
    remaining: float
    percent_used: float
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, unit: _Optional[str] = ..., unlimited: _Optional[bool] = ..., limit: _Optional[float] = ..., used: _Optional[float] = ..., remaining: _Optional[float] = ..., percent_used: _Optional[float] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CheckCoverageRequest(_message.Message):
    __slots__ = ("ticket", "consume")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    CONSUME_FIELD_NUMBER: _ClassVar[int]
    ticket: Ticket
    consume: bool
    def __init__(self, ticket: _Optional[_Union[Ticket, _Mapping]] = ..., consume: _Optional[bool] = ...) -> None: ...

class CheckCoverageResponse(_message.Message):
    __slots__ = ("decision", "duplicate", "admitted")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    duplicate: bool
    admitted: bool
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ..., duplicate: _Optional[bool] = ..., admitted: _Optional[bool] = ...) -> None: ...

class RecordUsageRequest(_message.Message):
    __slots__ = ("ticket_id", "contract_id", "amount", "unit", "idempotency_key", "recorded_at")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    contract_id: str
    amount: float
    unit: str
    idempotency_key: str
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, ticket_id: _Optional[str] = ..., contract_id: _Optional[str] = ..., amount: _Optional[float] = ..., unit: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordUsageResponse(_message.Message):
    __slots__ = ("contract_id", "quota", "duplicate")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    quota: Quota
    duplicate: bool
    def __init__(self, contract_id: _Optional[str] = ..., quota: _Optional[_Union[Quota, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ReleaseUsageRequest(_message.Message):
    __slots__ = ("ticket_id", "reason")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    reason: str
    def __init__(self, ticket_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleasedUsage(_message.Message):
    __slots__ = ("contract_id", "unit", "amount")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    unit: str
    amount: float
    def __init__(self, contract_id: _Optional[str] = ..., unit: _Optional[str] = ..., amount: _Optional[float] = ...) -> None: ...

class ReleaseUsageResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: _containers.RepeatedCompositeFieldContainer[ReleasedUsage]
    def __init__(self, released: _Optional[_Iterable[_Union[ReleasedUsage, _Mapping]]] = ...) -> None: ...

class ContractStatus(_message.Message):
    __slots__ = ("contract_id", "customer_id", "plan_id", "plan_type", "products", "all_products", "lifecycle", "start_date", "end_date", "timezone", "start_at", "end_at", "quota", "days_to_expiry", "owner", "notify")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    ALL_PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    END_AT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    DAYS_TO_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    customer_id: str
    plan_id: str
    plan_type: str
    products: _containers.RepeatedScalarFieldContainer[str]
    all_products: bool
    lifecycle: Lifecycle
    start_date: str
    end_date: str
    timezone: str
    start_at: _timestamp_pb2.Timestamp
    end_at: _timestamp_pb2.Timestamp
    quota: Quota
    days_to_expiry: float
    owner: str
    notify: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, contract_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., plan_type: _Optional[str] = ..., products: _Optional[_Iterable[str]] = ..., all_products: _Optional[bool] = ..., lifecycle: _Optional[_Union[Lifecycle, str]] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., timezone: _Optional[str] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quota: _Optional[_Union[Quota, _Mapping]] = ..., days_to_expiry: _Optional[float] = ..., owner: _Optional[str] = ..., notify: _Optional[_Iterable[str]] = ...) -> None: ...

class GetContractStatusRequest(_message.Message):
    __slots__ = ("contract_id", "at")
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    contract_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, contract_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetContractStatusResponse(_message.Message):
    __slots__ = ("contract", "as_of", "policy_revision")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    contract: ContractStatus
    as_of: _timestamp_pb2.Timestamp
    policy_revision: str
    def __init__(self, contract: _Optional[_Union[ContractStatus, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ...) -> None: ...

class ListContractsRequest(_message.Message):
    __slots__ = ("customer_id", "lifecycle", "plan_id", "product", "ends_before", "page_size", "page_token", "at")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    ENDS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    lifecycle: Lifecycle
    plan_id: str
    product: str
    ends_before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, customer_id: _Optional[str] = ..., lifecycle: _Optional[_Union[Lifecycle, str]] = ..., plan_id: _Optional[str] = ..., product: _Optional[str] = ..., ends_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListContractsResponse(_message.Message):
    __slots__ = ("contracts", "next_page_token", "as_of", "policy_revision")
    CONTRACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    contracts: _containers.RepeatedCompositeFieldContainer[ContractStatus]
    next_page_token: str
    as_of: _timestamp_pb2.Timestamp
    policy_revision: str
    def __init__(self, contracts: _Optional[_Iterable[_Union[ContractStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policy_revision: _Optional[str] = ...) -> None: ...

class ServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfoResponse(_message.Message):
    __slots__ = ("policy_revision", "loaded_at", "last_reload_error", "last_reload_attempt_at", "last_reload_error_at", "store_backend", "version", "workers", "pid")
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RELOAD_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    STORE_BACKEND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    policy_revision: str
    loaded_at: _timestamp_pb2.Timestamp
    last_reload_error: str
    last_reload_attempt_at: _timestamp_pb2.Timestamp
    last_reload_error_at: _timestamp_pb2.Timestamp
    store_backend: str
    version: str
    workers: int
    pid: int
    def __init__(self, policy_revision: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reload_error: _Optional[str] = ..., last_reload_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reload_error_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store_backend: _Optional[str] = ..., version: _Optional[str] = ..., workers: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("policy_revision", "changed", "error")
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    policy_revision: str
    changed: bool
    error: str
    def __init__(self, policy_revision: _Optional[str] = ..., changed: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Alert(_message.Message):
    __slots__ = ("cursor", "kind", "contract_id", "customer_id", "plan_id", "threshold", "period_start", "used", "limit", "unit", "days_left", "occurred_at", "emitted_at", "recipients", "message", "ticket_id", "metric", "cycle", "due_at")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DAYS_LEFT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    kind: AlertKind
    contract_id: str
    customer_id: str
    plan_id: str
    threshold: int
    period_start: _timestamp_pb2.Timestamp
    used: float
    limit: float
    unit: str
    days_left: float
    occurred_at: _timestamp_pb2.Timestamp
    emitted_at: _timestamp_pb2.Timestamp
    recipients: _containers.RepeatedScalarFieldContainer[str]
    message: str
    ticket_id: str
    metric: str
    cycle: int
    due_at: _timestamp_pb2.Timestamp
    def __init__(self, cursor: _Optional[int] = ..., kind: _Optional[_Union[AlertKind, str]] = ..., contract_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., threshold: _Optional[int] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., used: _Optional[float] = ..., limit: _Optional[float] = ..., unit: _Optional[str] = ..., days_left: _Optional[float] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., emitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recipients: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., ticket_id: _Optional[str] = ..., metric: _Optional[str] = ..., cycle: _Optional[int] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AlertFilter(_message.Message):
    __slots__ = ("kinds", "customer_id", "contract_id")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    kinds: _containers.RepeatedScalarFieldContainer[AlertKind]
    customer_id: str
    contract_id: str
    def __init__(self, kinds: _Optional[_Iterable[_Union[AlertKind, str]]] = ..., customer_id: _Optional[str] = ..., contract_id: _Optional[str] = ...) -> None: ...

class WatchAlertsRequest(_message.Message):
    __slots__ = ("after_cursor", "filter")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    filter: AlertFilter
    def __init__(self, after_cursor: _Optional[int] = ..., filter: _Optional[_Union[AlertFilter, _Mapping]] = ...) -> None: ...

class WatchAlertsResponse(_message.Message):
    __slots__ = ("alert",)
    ALERT_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("after_cursor", "page_size", "filter")
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    page_size: int
    filter: AlertFilter
    def __init__(self, after_cursor: _Optional[int] = ..., page_size: _Optional[int] = ..., filter: _Optional[_Union[AlertFilter, _Mapping]] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_cursor", "has_more")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_cursor: int
    has_more: bool
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_cursor: _Optional[int] = ..., has_more: _Optional[bool] = ...) -> None: ...

class RecordTicketEventsRequest(_message.Message):
    __slots__ = ("ticket_id", "events")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    events: _containers.RepeatedCompositeFieldContainer[TicketEvent]
    def __init__(self, ticket_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[TicketEvent, _Mapping]]] = ...) -> None: ...

class RecordedEvent(_message.Message):
    __slots__ = ("id", "duplicate", "conflicting")
    ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    CONFLICTING_FIELD_NUMBER: _ClassVar[int]
    id: str
    duplicate: bool
    conflicting: bool
    def __init__(self, id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., conflicting: _Optional[bool] = ...) -> None: ...

class RecordTicketEventsResponse(_message.Message):
    __slots__ = ("events", "sla")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SLA_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[RecordedEvent]
    sla: TicketSla
    def __init__(self, events: _Optional[_Iterable[_Union[RecordedEvent, _Mapping]]] = ..., sla: _Optional[_Union[TicketSla, _Mapping]] = ...) -> None: ...

class GetTicketSlaRequest(_message.Message):
    __slots__ = ("ticket_id", "at")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, ticket_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetTicketSlaResponse(_message.Message):
    __slots__ = ("sla",)
    SLA_FIELD_NUMBER: _ClassVar[int]
    sla: TicketSla
    def __init__(self, sla: _Optional[_Union[TicketSla, _Mapping]] = ...) -> None: ...

class TicketSla(_message.Message):
    __slots__ = ("ticket_id", "contract_id", "customer_id", "plan_id", "sla_id", "sla_rule", "policy_revision", "created_at", "priority", "clocks", "event_count", "next_alert_at", "as_of")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SLA_ID_FIELD_NUMBER: _ClassVar[int]
    SLA_RULE_FIELD_NUMBER: _ClassVar[int]
    POLICY_REVISION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CLOCKS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ALERT_AT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    contract_id: str
    customer_id: str
    plan_id: str
    sla_id: str
    sla_rule: str
    policy_revision: str
    created_at: _timestamp_pb2.Timestamp
    priority: str
    clocks: _containers.RepeatedCompositeFieldContainer[Target]
    event_count: int
    next_alert_at: _timestamp_pb2.Timestamp
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, ticket_id: _Optional[str] = ..., contract_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., sla_id: _Optional[str] = ..., sla_rule: _Optional[str] = ..., policy_revision: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[str] = ..., clocks: _Optional[_Iterable[_Union[Target, _Mapping]]] = ..., event_count: _Optional[int] = ..., next_alert_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
