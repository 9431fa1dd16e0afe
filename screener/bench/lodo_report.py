"""The leave-one-domain-out tables: per domain and category, from saved records.

Recall counts a copy found only when the fused score reaches the measured threshold and
the top work is the right one. The threshold is the score that ``fpr`` of the held-out
unrelated images (distractors and look-alikes, every edit) reach: per domain for the
domain rows, over all domains pooled for the "all" row. With N unrelated images, a rate
below 1/N means "above every one of them"; the report gives N beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from screener.bench import accuracy, accuracy_fit
from screener.bench.accuracy_run import goals
from screener.bench.common import machine
from screener.bench.mdsuite import domain_of, kind_of
from screener.core.policy import Policy, image_evidence

ALL = "all"  # every held-out domain pooled, one threshold over all their unrelated images
EACH = "each"  # every held-out domain pooled, each measured at its own threshold


def split_by_domain(
    records: Sequence[accuracy.Record], held_out: str
) -> tuple[list[accuracy.Record], list[accuracy.Record]]:
    """(records of every other domain, records of ``held_out``)."""
    rest = [r for r in records if domain_of(r.group) != held_out]
    mine = [r for r in records if domain_of(r.group) == held_out]
    return rest, mine


def strict_recall(records: Sequence[accuracy.Record], fpr: float) -> dict[str, Any]:
    """Recall with the right work named at the measured ``fpr``, overall and per category."""
    negatives = np.array([accuracy.rank(r) for r in records if r.truth is None], dtype=np.float64)
    threshold = accuracy.threshold_at(negatives, fpr)
    hits: dict[str, list[bool]] = {}
    for r in records:
        if r.truth is not None:
            hits.setdefault(r.category, []).append(
                r.top_work == r.truth and accuracy.rank(r) >= threshold
            )
    every = [h for found in hits.values() for h in found]
    return {
        "threshold": threshold if np.isfinite(threshold) else None,
        "negatives": int(negatives.size),
        "fpr_measured": float((negatives >= threshold).mean()) if negatives.size else None,
        "recall": float(np.mean(every)) if every else None,
        "per_category": {c: float(np.mean(h)) for c, h in sorted(hits.items())},
        "copies": {c: len(h) for c, h in sorted(hits.items())},
    }


def each_at_own_threshold(per_domain: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Recalls of several domains, each measured at its own threshold, pooled by count."""
    found: dict[str, float] = {}
    copies: dict[str, int] = {}
    for entry in per_domain:
        for category, n in entry["copies"].items():
            copies[category] = copies.get(category, 0) + n
            found[category] = found.get(category, 0.0) + n * entry["per_category"][category]
    total = sum(copies.values())
    return {
        "threshold": None,
        "negatives": sum(e["negatives"] for e in per_domain),
        "fpr_measured": None,
        "recall": sum(found.values()) / total if total else None,
        "per_category": {c: found[c] / copies[c] for c in sorted(copies)},
        "copies": copies,
    }


def fused_vs_best_each(per_domain: Sequence[dict[str, Any]], target_fpr: float) -> dict[str, Any]:
    """Fused against the best single signal with every domain at its own threshold (as
    the `each` column): per category, each score's recall at ``target_fpr`` pooled over
    the domains by their copies (a signal a domain never measured finds none of its
    copies there), then judged as one held-out set is (`accuracy_run.goals`)."""
    key = str(target_fpr)
    copies: dict[str, int] = {}
    found: dict[str, dict[str, float]] = {}
    names = sorted({n for entry in per_domain for n in entry["recall_by_score"]})
    for entry in per_domain:
        for category, n in entry["recall_right_work"][key]["copies"].items():
            copies[category] = copies.get(category, 0) + n
            row = found.setdefault(category, {})
            for name in names:
                recall = entry["recall_by_score"].get(name, {}).get(category)
                row[name] = row.get(name, 0.0) + n * (recall or 0.0)
    pooled = {
        name: {
            "at_fpr": {
                key: {
                    "per_category": {c: {"recall": found[c][name] / n} for c, n in copies.items()}
                }
            }
        }
        for name in names
    }
    result: dict[str, Any] = goals({"scores": pooled}, target_fpr)["fused_vs_best_single"]
    return result


def decisions(records: Sequence[accuracy.Record]) -> dict[str, Any]:
    """Blocked and flagged (review) shares: of the copies, and of the unrelated images by
    kind (look-alikes apart from other distractors)."""
    out: dict[str, Any] = {}
    for kind in ("copy", "lookalike", "distractor"):
        mine = [r for r in records if kind_of(r.group) == kind]
        n = len(mine)
        out[kind] = {
            "count": n,
            "blocked": sum(r.decision == "block" for r in mine) / n if n else None,
            "flagged": sum(r.decision == "review" for r in mine) / n if n else None,
        }
    return out


def _signals(records: Sequence[accuracy.Record]) -> list[str]:
    return [n for n in image_evidence() if any(r.values.get(n) is not None for r in records)]


def held_out_block(
    records: Sequence[accuracy.Record], scored: Sequence[accuracy.Record], target_fpr: float
) -> dict[str, Any]:
    """Every number for one held-out set: ``scored`` by its policy, ``records`` by the
    current default policy (the service's own decisions, rescored with today's policy)."""
    names = [*_signals(records), accuracy.FUSED]
    measured = accuracy.metrics(scored, names)
    for entry in measured["scores"].values():
        entry.pop("roc", None)
    key = str(target_fpr)
    return {
        "recall_right_work": {str(f): strict_recall(scored, f) for f in accuracy.FPRS},
        # Per score (fused and each single signal), recall per category at ``target_fpr``
        # measured on this set alone: what `fused_vs_best_each` pools over domains.
        "recall_by_score": {
            name: {c: v["recall"] for c, v in entry["at_fpr"][key]["per_category"].items()}
            for name, entry in measured["scores"].items()
        },
        "decisions_fitted_policy": decisions(scored),
        "decisions_default_policy": decisions(records),
        "fused_vs_best_single": goals(measured, target_fpr)["fused_vs_best_single"],
        "default_policy_recall_right_work": {
            str(f): strict_recall(records, f) for f in accuracy.FPRS
        },
        "top1_accuracy": measured["top1_accuracy"],
        "seconds_per_image": measured["seconds_per_image"],
        "counts": measured["counts"],
    }


def report(
    fit_records: Sequence[accuracy.Record],
    report_records: Sequence[accuracy.Record],
    template: Policy,
    *,
    target_fpr: float,
    review_fpr: float,
    config: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    domains = sorted({domain_of(r.group) for r in fit_records})
    held: dict[str, Any] = {}
    pooled: list[accuracy.Record] = []
    for domain in domains:
        rest, _ = split_by_domain(fit_records, domain)
        _, mine = split_by_domain(report_records, domain)
        policy = accuracy_fit.fit(rest, template, target_fpr=target_fpr, review_fpr=review_fpr)
        scored = accuracy.rescore(mine, policy)
        pooled += scored
        held[domain] = {
            "fitted_on": sorted({domain_of(r.group) for r in rest}),
            "policy": policy.version,
            **held_out_block(accuracy.rescore(mine, template), scored, target_fpr),
        }
    held[ALL] = held_out_block(accuracy.rescore(report_records, template), pooled, target_fpr)
    held[EACH] = {
        "recall_right_work": {
            str(f): each_at_own_threshold([held[d]["recall_right_work"][str(f)] for d in domains])
            for f in accuracy.FPRS
        },
        "fused_vs_best_single": fused_vs_best_each([held[d] for d in domains], target_fpr),
    }
    shipping = accuracy_fit.fit(fit_records, template, target_fpr=target_fpr, review_fpr=review_fpr)
    shipping = replace(shipping, fitted_with=dict(config.get("models") or {}))
    return {
        "benchmark": "accuracy-lodo",
        "command": command,
        "machine": machine(),
        "config": {**config, "target_fpr": target_fpr, "review_fpr": review_fpr},
        "baseline_policy": template.version,
        "held_out": held,
        "shipping_policy": shipping.to_dict(),
        # Not held out: the shipping policy scored on the report suite of the very domains
        # it was fitted on (other works and edits). Its honest numbers are ``held_out``.
        "shipping_policy_on_report_suite": strict_recall(
            accuracy.rescore(report_records, shipping), target_fpr
        ),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(rep: dict[str, Any]) -> str:
    """The tables a README shows: recall per domain x category, decisions, fusion."""
    held = rep["held_out"]
    columns = [*[d for d in held if d not in (ALL, EACH)], EACH, ALL]
    categories = sorted(held[ALL]["recall_right_work"]["0.001"]["per_category"])
    lines = [f"Command: `{rep['command']}`", ""]
    for fpr in ("0.001", "0.01"):
        lines += [
            f"Held-out recall (right work named) at a measured {float(fpr):.1%} FPR "
            "(each domain scored by the policy fitted on the other domains):",
            "",
            "| category | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for category in categories:
            cells = [
                _pct(held[c]["recall_right_work"][fpr]["per_category"].get(category))
                for c in columns
            ]
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
        overall = [_pct(held[c]["recall_right_work"][fpr]["recall"]) for c in columns]
        lines.append("| **overall** | " + " | ".join(f"**{v}**" for v in overall) + " |")
        negatives = [str(held[c]["recall_right_work"][fpr]["negatives"]) for c in columns]
        lines += [
            "| unrelated images | " + " | ".join(negatives) + " |",
            "",
            f"`{EACH}`: all domains, each at its own measured threshold; `{ALL}`: one "
            "threshold over all domains' unrelated images (each domain scored by its own "
            "held-out policy).",
            "",
        ]
    lines += [
        "Decisions on the held-out domain (blocked / flagged for review):",
        "",
        "| set | policy | copies | look-alikes | other distractors |",
        "|---|---|---:|---:|---:|",
    ]
    for c in [d for d in columns if d != EACH]:
        for key, label in (
            ("decisions_fitted_policy", "fitted, LODO"),
            ("decisions_default_policy", "current default"),
        ):
            d = held[c][key]
            cells = [
                f"{_pct(d[k]['blocked'])} / {_pct(d[k]['flagged'])} (n={d[k]['count']})"
                for k in ("copy", "lookalike", "distractor")
            ]
            lines.append(f"| {c} | {label} | " + " | ".join(cells) + " |")
    for column, how in (
        (EACH, "each domain at its own threshold, pooled"),
        (ALL, "one threshold over all domains"),
    ):
        if "fused_vs_best_single" in held[column]:
            lines += ["", *_fusion_table(held[column]["fused_vs_best_single"], how)]
    return "\n".join(lines) + "\n"


def _fusion_table(per_category: dict[str, Any], how: str) -> list[str]:
    lines = [
        f"Fused against the best single signal at 0.1 % FPR, held out, {how} (recall of "
        "the true work's score, right work not required, as for single signals):",
        "",
        "| category | fused | best single | its recall | fused >= best |",
        "|---|---:|---|---:|---|",
    ]
    for category, entry in sorted(per_category.items()):
        verdict = "yes" if entry["fused_at_least_best"] else "**no**"
        lines.append(
            f"| {category} | {_pct(entry['fused'])} | {entry['best_single']} | "
            f"{_pct(entry['best_single_recall'])} | {verdict} |"
        )
    return lines
