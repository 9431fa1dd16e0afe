"""Prompt checks before generation: which registered works a prompt names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from screener.service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors
from screener.service.schemas import PromptOut, PromptRequest

router = APIRouter(prefix="/v1", tags=["prompts"])


@router.post(
    "/prompt",
    response_model=PromptOut,
    responses=errors(*AUTH_ERRORS, 422),
    summary="Screen a prompt before generating",
)
async def check_prompt(key: Key, rt: TheRuntime, body: PromptRequest) -> Any:
    """The works the prompt names however it is spelled (spacing, look-alike letters,
    leetspeak, pinyin or romaji, typos) or describes with two of their related terms,
    each with the terms found and how; a decision (allow, warn or refuse) and for warn
    and refuse a risk prompt for the end user. Audited like a check."""
    rt.desk.authorise_check(key)
    outcome = await run_in_threadpool(rt.desk.check_prompt, key, body.prompt, body.user_ref)
    return outcome.to_dict()
