//! OSV 1.7 records, one per advisory.

use lockstep_core::model::RemoteState;
use lockstep_core::vuln::Rating;
use lockstep_core::{Case, Event, RepoId};
use serde_json::{Map, Value, json};

use crate::range::{self, OsvEvent};
use crate::{ChangeKind, advisory_url, changes, has_advisory, osv_ecosystem, package_lines};

/// The OSV schema version the records declare.
pub const SCHEMA_VERSION: &str = "1.7.0";

/// `repo`'s advisory as an OSV record, or `None` when it has no open or published advisory.
pub fn record(case: &Case, events: &[Event], repo: &RepoId) -> Option<Value> {
    let p = case.participants.get(repo)?;
    if !p.in_scope || !has_advisory(p) {
        return None;
    }
    let ghsa = p.advisory.ghsa.as_ref()?;
    let published = p.advisory.state == RemoteState::Published;
    let spec = case.workflow.repos.get(repo)?;
    let v = &case.vulnerability;

    let mut o = Map::new();
    o.insert("schema_version".into(), json!(SCHEMA_VERSION));
    o.insert("id".into(), json!(ghsa.as_str()));
    o.insert(
        "modified".into(),
        json!(modified(case, events, repo).to_string()),
    );
    if let Some(at) = p.advisory.published_at {
        o.insert("published".into(), json!(at.to_string()));
    }
    if let Some(cve) = &p.advisory.cve {
        o.insert("aliases".into(), json!([cve.as_str()]));
    }
    // Siblings: a published record names only published siblings, as the published
    // descriptions link only public advisories.
    let mut related = Vec::new();
    for (r, s) in case.scope() {
        if r == repo
            || !has_advisory(s)
            || (published && s.advisory.state != RemoteState::Published)
        {
            continue;
        }
        if let Some(g) = &s.advisory.ghsa {
            related.push(json!(g.as_str()));
        }
        if let Some(c) = &s.advisory.cve {
            related.push(json!(c.as_str()));
        }
    }
    if !related.is_empty() {
        o.insert("related".into(), Value::Array(related));
    }
    o.insert("summary".into(), json!(v.summary));
    o.insert("details".into(), json!(v.description));
    if let Rating::Cvss(vector) = &v.rating {
        let kind = if vector.as_str().starts_with("CVSS:4.0/") {
            "CVSS_V4"
        } else {
            "CVSS_V3"
        };
        o.insert(
            "severity".into(),
            json!([{ "type": kind, "score": vector.as_str() }]),
        );
    }

    let mut affected = Vec::new();
    if let Some(ecosystem) = osv_ecosystem(spec.ecosystem) {
        let lines = package_lines(p);
        let semver_eco = crate::semver_ecosystem(spec.ecosystem);
        let names = crate::package_names(spec, &lines);
        for name in names {
            let mut ranges = Vec::new();
            let mut raw = Vec::new();
            let mine: Vec<_> = lines.iter().filter(|l| l.package == name).collect();
            let mut all_events: Vec<Vec<OsvEvent>> = Vec::new();
            if mine.is_empty() {
                all_events.push(vec![OsvEvent::Introduced("0".into())]);
            }
            for l in &mine {
                let (ev, _) = range::events(l.vulnerable_range, l.patched_version);
                if let Some(r) = l.vulnerable_range {
                    raw.push(r);
                }
                all_events.push(ev);
            }
            for ev in all_events {
                let ev: Vec<OsvEvent> = ev
                    .into_iter()
                    .map(|e| match (semver_eco, e) {
                        // OSV's SEMVER versions carry no `v` prefix (Go's do).
                        (true, OsvEvent::Introduced(v)) => OsvEvent::Introduced(strip_v(v)),
                        (true, OsvEvent::Fixed(v)) => OsvEvent::Fixed(strip_v(v)),
                        (true, OsvEvent::LastAffected(v)) => OsvEvent::LastAffected(strip_v(v)),
                        (false, e) => e,
                    })
                    .collect();
                let semver = semver_eco && ev.iter().all(|e| range::is_semver(e.parts().1));
                let events: Vec<Value> = ev
                    .iter()
                    .map(|e| {
                        let (k, v) = e.parts();
                        json!({ k: v })
                    })
                    .collect();
                ranges.push(json!({
                    "type": if semver { "SEMVER" } else { "ECOSYSTEM" },
                    "events": events,
                }));
            }
            let mut entry = json!({
                "package": { "ecosystem": ecosystem, "name": name },
                "ranges": ranges,
            });
            if !raw.is_empty() {
                entry["database_specific"] = json!({ "vulnerable_range": raw.join(" || ") });
            }
            affected.push(entry);
        }
    }
    if !affected.is_empty() {
        o.insert("affected".into(), Value::Array(affected));
    }

    let mut references = Vec::new();
    references.push(json!({ "type": "ADVISORY", "url": advisory_url(repo, ghsa.as_str()) }));
    if let Some(cve) = &p.advisory.cve {
        references.push(json!({
            "type": "ADVISORY",
            "url": format!("https://www.cve.org/CVERecord?id={cve}"),
        }));
    }
    references.push(json!({ "type": "PACKAGE", "url": format!("https://github.com/{repo}") }));
    o.insert("references".into(), Value::Array(references));
    if !v.credits.is_empty() {
        let credits: Vec<Value> = v
            .credits
            .iter()
            .map(|c| {
                json!({
                    "name": c.login.as_str(),
                    "contact": [format!("https://github.com/{}", c.login)],
                    "type": c.kind.as_str().to_ascii_uppercase(),
                })
            })
            .collect();
        o.insert("credits".into(), Value::Array(credits));
    }
    let cwes: Vec<&str> = v.cwes.iter().map(|c| c.as_str()).collect();
    o.insert(
        "database_specific".into(),
        json!({
            "severity": v.rating.severity().as_str().to_ascii_uppercase(),
            "cwe_ids": cwes,
            "lockstep_case": case.id.as_str(),
            "repository": repo.as_str(),
        }),
    );
    Some(Value::Object(o))
}

fn strip_v(v: String) -> String {
    match v.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.to_owned(),
        _ => v,
    }
}

/// The last time the record's content changed: the case's opening, this repository's
/// assessment, fix, CVE or publication, or a sibling's id, CVE or publication (its `related`).
pub fn modified(case: &Case, events: &[Event], repo: &RepoId) -> lockstep_core::Timestamp {
    changes(case, events)
        .iter()
        .filter(|c| match c.repo {
            None => true,
            Some(r) if r == repo => true,
            Some(_) => matches!(
                c.kind,
                ChangeKind::Advisory | ChangeKind::Cve | ChangeKind::Published
            ),
        })
        .map(|c| c.at)
        .max()
        .unwrap_or(case.opened_at)
}
