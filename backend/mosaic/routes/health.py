import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..deps import MetricsDep, SettingsDep
from ..errors import AppError
from ..openapi import errors
from ..readiness import readiness_problems
from ..schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get("/readyz", responses=errors(503))
async def read_readiness(settings: SettingsDep) -> HealthPublic:
    folders = [settings.originals_dir, settings.resolved_cache_dir]
    problems = await asyncio.to_thread(readiness_problems, folders, settings.min_free_bytes)
    if problems:
        raise AppError(503, "not_ready", "; ".join(problems))
    return HealthPublic(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def read_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
