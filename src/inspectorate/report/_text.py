"""Human-readable rendering of verdicts (the JSON form is ``Verdict.to_dict``)."""

from __future__ import annotations

from collections import OrderedDict

from inspectorate.commitment import Verdict


def verdict_text(verdict: Verdict, source: str = "", max_ids: int = 20) -> str:
    """Every violation, grouped by rule, with the record ids it flags."""
    head = "COMPLIANT" if verdict.compliant else "VIOLATION"
    lines = [
        f"{head}  commitment={verdict.commitment_id}  trace={source}  records={verdict.records}  "
        f"rules={len(verdict.rules_evaluated)}  confidence={verdict.confidence:.2f}"
    ]
    groups: OrderedDict[str, list] = OrderedDict()
    for v in verdict.violations:
        groups.setdefault(v.rule_id, []).append(v)
    for rule_id, violations in groups.items():
        lines.append(f"\n[{rule_id}] ({violations[0].kind}) {len(violations)} violation(s)")
        for v in violations:
            lines.append(f"  - {v.message}")
            total = v.count if v.count is not None else len(v.record_ids)
            if v.record_ids:
                shown = ", ".join(v.record_ids[:max_ids])
                more = f" ... (+{total - min(total, max_ids)} more)" if total > max_ids else ""
                lines.append(f"    records: {shown}{more}")
    for note in verdict.notes:  # dead rules and an unpinned tail: what the verdict did not cover
        lines.append(f"\nnote: {note}")
    if verdict.semantic_rules_judged:
        judged = "; ".join(f"{k} ({v})" for k, v in verdict.semantic_rules_judged.items())
        lines.append(f"\nsemantic rules judged: {judged}")
    if verdict.semantic_rules_not_evaluated:
        reasons = verdict.semantic_unjudged_reasons
        unjudged = "; ".join(
            f"{k} ({reasons.get(k, 'no judge')})" for k in verdict.semantic_rules_not_evaluated
        )
        lines.append(f"\nsemantic rules NOT judged: {unjudged}")
    accounting = (verdict.agent or {}).get("accounting")
    if accounting:
        cost = accounting["cost_usd"]
        lines.append(
            f"agent {verdict.agent['backend']}:{verdict.agent['model']}: {len(accounting['calls'])} call(s) "
            f"({accounting['cached_calls']} cached), {accounting['tokens']} tokens, "
            f"{'cost unknown (unpriced model)' if cost is None else f'${cost:.4f}'}, {accounting['latency_s']} s"
        )
    return "\n".join(lines)
