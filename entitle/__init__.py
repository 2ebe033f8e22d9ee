"""entitle: support entitlements (plans, SLAs, quotas, alerts) as code."""

__version__ = "0.1.0"
