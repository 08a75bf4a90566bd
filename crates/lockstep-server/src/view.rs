//! The JSON a case is shown as: the same shape as `lockstep case show --json`.

use lockstep_core::Case;
use serde_json::{Value, json};

/// A case as `GET /api/cases/{id}` shows it.
pub(crate) fn case(case: &Case) -> Value {
    let plan = case.plan();
    let repos: Vec<Value> = case
        .scope()
        .map(|(r, p)| {
            json!({
                "repo": r,
                "assessment": p.assessment,
                "fix": p.fix,
                "lines": p.lines(),
                "ghsa_id": p.advisory.ghsa,
                "advisory_state": p.advisory.state,
                "published_elsewhere": p.advisory.published_elsewhere,
                "cve_id": p.advisory.cve,
                "private_fork": p.advisory.private_fork,
                "failures": p.attention,
                "last_error": p.last_error,
            })
        })
        .collect();
    json!({
        "case_id": case.id,
        "version": case.version,
        "summary": case.vulnerability.summary,
        "workflow": case.workflow.name,
        "opened_at": case.opened_at,
        "closed": case.closed.is_some(),
        "embargo": {
            "state": case.embargo.state,
            "until": case.embargo.until,
            "overdue": case.embargo.overdue,
            "exit": plan.embargo_exit,
        },
        "release": plan.release,
        "gate_open": plan.gate_open,
        "repos": repos,
        "blockers": plan.blockers,
        "alerts": plan.alerts,
        "preflight": plan.preflight,
    })
}
