"""Logger, metrics and tracer, created once for the whole process (Powertools)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="hemera")
metrics = Metrics(namespace="Hemera")
tracer = Tracer(service="hemera")
