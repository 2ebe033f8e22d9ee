"""The operations dashboard: server-rendered pages over the service, for the HTTP listener."""

from entitle.server.faces.dashboard.app import MOUNT_PATH, build_dashboard, mount

__all__ = ["MOUNT_PATH", "build_dashboard", "mount"]
