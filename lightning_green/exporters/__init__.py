"""Exporters publish a run's live figures (energy, power, emissions) while it is measured.

``PrometheusExporter`` (scraped) and ``PrometheusPushExporter`` (pushgateway) need the
optional extra ``pip install lightning-green[prometheus]``; importing this package does not.
"""

from __future__ import annotations

from lightning_green.exporters.base import Exporter
from lightning_green.exporters.prometheus import PrometheusExporter, PrometheusPushExporter

__all__ = ["Exporter", "PrometheusExporter", "PrometheusPushExporter"]
