"""The consortium dashboard: server-rendered pages (FastAPI + Jinja2) behind TAXII member authentication.

Public API: :func:`create_dashboard_app`, :func:`serve_dashboard`, :class:`DashboardConfig`,
:func:`line_chart` (the inline-SVG chart renderer).
"""

from mamori.web.app import create_dashboard_app, serve_dashboard
from mamori.web.charts import line_chart
from mamori.web.config import DashboardConfig

__all__ = ["DashboardConfig", "create_dashboard_app", "line_chart", "serve_dashboard"]
