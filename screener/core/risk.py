"""Risk prompts: what a platform shows its user when an output is held or refused.

Plain words, in Chinese and English, naming the work and what happens next; no scores,
which mean nothing to an end user.
"""

from __future__ import annotations

from collections.abc import Mapping

from screener.core.policy import Decision
from screener.core.verdict import Verdict

_TEXT = {
    Decision.BLOCK: {
        "zh": "该图像与受保护作品《{title}》（权利人：{owner}）高度近似，可能侵犯他人著作权，"
        "不能发布。请修改提示词或重新生成。",
        "en": "This image closely resembles the protected work \u201c{title}\u201d (rights "
        "holder: {owner}) and may infringe its copyright, so it cannot be published. Please "
        "change the prompt or generate again.",
    },
    Decision.REVIEW: {
        "zh": "该图像与受保护作品《{title}》（权利人：{owner}）存在相似之处，发布前需经人工审核。",
        "en": "This image resembles the protected work \u201c{title}\u201d (rights holder: "
        "{owner}). It will be reviewed by a person before it can be published.",
    },
}


def holder_name(owner: str | None, names: Mapping[str, str]) -> str:
    """The rights holder as end users are told of it: its display name where one is set
    (see ``screener keys display-name``), else its account name."""
    return names.get(owner or "") or owner or "unknown"


def risk_prompt(verdict: Verdict, names: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The prompt for a review or block verdict (None for allow); ``names``: owners'
    display names."""
    top = verdict.top_match
    if top is None or verdict.decision == Decision.ALLOW.value:
        return None
    texts = _TEXT[Decision(verdict.decision)]
    owner = holder_name(top.owner, names or {})
    return {lang: text.format(title=top.title, owner=owner) for lang, text in texts.items()}


_PROMPT_TEXT = {
    "refuse": {
        "zh": "您的提示词指向受保护作品《{title}》（权利人：{owner}），生成的图像可能侵犯他人"
        "著作权，因此不予生成。请修改提示词。",
        "en": "Your prompt points to the protected work \u201c{title}\u201d (rights holder: "
        "{owner}); an image made from it may infringe its copyright, so it will not be "
        "generated. Please change the prompt.",
    },
    "warn": {
        "zh": "您的提示词可能涉及受保护作品《{title}》（权利人：{owner}）。生成的图像将经过相似性"
        "审查，与该作品近似的结果不能发布。",
        "en": "Your prompt may refer to the protected work \u201c{title}\u201d (rights holder: "
        "{owner}). Generated images will be screened, and any that resemble it cannot be "
        "published.",
    },
}


def prompt_risk(decision: str, title: str, owner: str) -> dict[str, str] | None:
    """The text for a warned or refused prompt (None for allow)."""
    texts = _PROMPT_TEXT.get(decision)
    if texts is None:
        return None
    owner = owner or "unknown"
    return {lang: text.format(title=title, owner=owner) for lang, text in texts.items()}
