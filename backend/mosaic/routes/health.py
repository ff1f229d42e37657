from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import MetricsDep
from ..schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get("/metrics", response_class=Response)
async def read_metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
