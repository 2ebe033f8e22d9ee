"""The operations dashboard: server-rendered pages over the service, for the HTTP listener."""

from entitle.server.faces.dashboard.app import build_dashboard, dashboard_mount

__all__ = ["build_dashboard", "dashboard_mount"]
