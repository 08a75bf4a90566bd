//! CVE JSON 5 records, one per CVE: the CNA container in a full record, for organisations
//! that are their own CNA (or to check what GitHub, the default assigner, will publish).

use lockstep_core::model::RemoteState;
use lockstep_core::vuln::Rating;
use lockstep_core::{Case, Event, RepoId};
use serde_json::{Map, Value, json};

use crate::{Options, advisory_url, cvss_score, has_advisory, package_lines};

/// The record format version the records declare.
pub const DATA_VERSION: &str = "5.1";

/// The CVE record of `repo`'s advisory, or `None` when it has no CVE or no open or published
/// advisory.
pub fn record(case: &Case, events: &[Event], repo: &RepoId, options: &Options) -> Option<Value> {
    let p = case.participants.get(repo)?;
    if !p.in_scope || !has_advisory(p) {
        return None;
    }
    let cve = p.advisory.cve.as_ref()?;
    let ghsa = p.advisory.ghsa.as_ref()?;
    let spec = case.workflow.repos.get(repo)?;
    let v = &case.vulnerability;
    let updated = crate::osv::modified(case, events, repo).to_string();

    // Affected: per package, the vulnerable range as GitHub writes it; a package with no fix
    // line is affected in every version.
    let lines = package_lines(p);
    let mut affected = Vec::new();
    let names = crate::package_names(spec, &lines);
    for name in names {
        let mut versions = Vec::new();
        for l in lines.iter().filter(|l| l.package == name) {
            let text = match (l.vulnerable_range, l.patched_version) {
                (Some(r), _) => r.to_owned(),
                (None, Some(fixed)) => format!("< {fixed}"),
                (None, None) => "all versions".to_owned(),
            };
            versions.push(json!({ "version": text, "status": "affected" }));
            if let Some(fixed) = l.patched_version {
                versions.push(json!({ "version": fixed, "status": "unaffected" }));
            }
        }
        let mut entry = json!({
            "vendor": repo.owner(),
            "product": name,
            "packageName": name,
            "repo": format!("https://github.com/{repo}"),
        });
        if versions.is_empty() {
            entry["defaultStatus"] = json!("affected");
        } else {
            entry["versions"] = Value::Array(versions);
        }
        if let Some(url) = collection_url(spec.ecosystem) {
            entry["collectionURL"] = json!(url);
        }
        affected.push(entry);
    }

    let mut cna = Map::new();
    cna.insert(
        "providerMetadata".into(),
        json!({
            "orgId": options.cna_org_id,
            "shortName": options.cna_short_name,
            "dateUpdated": updated,
        }),
    );
    cna.insert("title".into(), json!(truncate(&v.summary, 256)));
    cna.insert(
        "descriptions".into(),
        json!([{ "lang": "en", "value": truncate(&v.description, 4096) }]),
    );
    cna.insert("affected".into(), Value::Array(affected));
    if !v.cwes.is_empty() {
        let d: Vec<Value> = v
            .cwes
            .iter()
            .map(|c| json!({ "lang": "en", "description": c.as_str(), "cweId": c.as_str(), "type": "CWE" }))
            .collect();
        cna.insert("problemTypes".into(), json!([{ "descriptions": d }]));
    }
    let metric = match &v.rating {
        Rating::Cvss(vector) => {
            let s = vector.as_str();
            cvss_score(s).map(|(score, severity)| {
                let (key, version) = if s.starts_with("CVSS:4.0/") {
                    ("cvssV4_0", "4.0")
                } else if s.starts_with("CVSS:3.0/") {
                    ("cvssV3_0", "3.0")
                } else {
                    ("cvssV3_1", "3.1")
                };
                json!({ key: {
                    "version": version,
                    "vectorString": s,
                    "baseScore": score,
                    "baseSeverity": severity,
                }})
            })
        }
        Rating::Severity(sev) => Some(json!({
            "other": { "type": "textual", "content": { "text": sev.as_str() } }
        })),
    };
    if let Some(m) = metric {
        cna.insert("metrics".into(), json!([m]));
    }
    let mut references = vec![json!({
        "url": advisory_url(repo, ghsa.as_str()),
        "name": ghsa.as_str(),
        "tags": ["vendor-advisory"],
    })];
    for (r, s) in case.scope() {
        // Only public siblings, as in the published descriptions.
        if let (true, RemoteState::Published, Some(g)) =
            (r != repo, s.advisory.state, &s.advisory.ghsa)
        {
            references.push(json!({ "url": advisory_url(r, g.as_str()), "name": g.as_str(), "tags": ["related"] }));
        }
    }
    cna.insert("references".into(), Value::Array(references));
    if !v.credits.is_empty() {
        let credits: Vec<Value> = v
            .credits
            .iter()
            .map(|c| json!({ "lang": "en", "value": c.login.as_str(), "type": c.kind.as_str().replace('_', " ") }))
            .collect();
        cna.insert("credits".into(), Value::Array(credits));
    }
    cna.insert(
        "source".into(),
        json!({ "advisory": ghsa.as_str(), "discovery": "UNKNOWN" }),
    );
    if let Some(at) = p.advisory.published_at {
        cna.insert("datePublic".into(), json!(at.to_string()));
    }

    let mut meta = json!({
        "cveId": cve.as_str(),
        "assignerOrgId": options.cna_org_id,
        "assignerShortName": options.cna_short_name,
        "state": "PUBLISHED",
        "dateUpdated": updated,
    });
    if let Some(at) = p.advisory.published_at {
        meta["datePublished"] = json!(at.to_string());
    }
    Some(json!({
        "dataType": "CVE_RECORD",
        "dataVersion": DATA_VERSION,
        "cveMetadata": meta,
        "containers": { "cna": Value::Object(cna) },
    }))
}

fn collection_url(e: lockstep_core::vuln::Ecosystem) -> Option<&'static str> {
    use lockstep_core::vuln::Ecosystem as E;
    Some(match e {
        E::Npm => "https://www.npmjs.com",
        E::Pip => "https://pypi.org",
        E::Maven => "https://repo.maven.apache.org/maven2",
        E::Nuget => "https://nuget.org/packages",
        E::Go => "https://pkg.go.dev",
        E::Rust => "https://crates.io",
        E::Rubygems => "https://rubygems.org",
        E::Composer => "https://packagist.org",
        E::Erlang => "https://hex.pm",
        E::Pub => "https://pub.dev",
        E::Swift | E::Actions | E::Other => return None,
    })
}

fn truncate(s: &str, max: usize) -> String {
    let t: String = s.chars().take(max).collect();
    if t.trim().is_empty() {
        "(none)".to_owned()
    } else {
        t
    }
}
