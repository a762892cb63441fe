"""Cameras: known from capture's heartbeats (via the recorder) or from sessions created here."""

from fastapi import APIRouter

from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser
from services.api.context import Context
from services.api.schemas import CameraOut
from services.common.sessions import list_cameras

router = APIRouter(prefix="/cameras", tags=["cameras"], responses=AUTH_RESPONSES)


@router.get("", response_model=list[CameraOut], summary="Every known camera and when it last sent a frame")
def cameras(_principal: CurrentUser, context: Context) -> list[CameraOut]:
    with context.engine.connect() as connection:
        return [CameraOut.model_validate(camera) for camera in list_cameras(connection)]
