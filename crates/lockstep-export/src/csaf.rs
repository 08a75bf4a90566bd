//! A CSAF 2.0 VEX document for the whole case.
//!
//! One vulnerability entry per advisory (keyed by its CVE once assigned, by its GHSA id
//! before); in each, the repository's own products are known affected, fixed or under
//! investigation, and the products of every repository assessed not affected are known not
//! affected, with the maintainer's reason as the impact statement. The revision history is
//! the event log's changes to this content, one revision per committed decision.
//!
//! The document keeps to the mandatory tests of CSAF 2.0 §6.1 that concern what Lockstep
//! writes: every product id defined once and every reference defined (6.1.1, 6.1.2), no
//! contradicting product status (6.1.6), CVSS scores computed from their vectors (6.1.8–10),
//! each CVE once (6.1.23), a consecutive, sorted revision history ending at the document's
//! version (6.1.14, 6.1.16, 6.1.21, 6.1.22), no pre-release versions outside drafts (6.1.17–19),
//! no ranges in `product_version` (6.1.31), remediations with products (6.1.29), and the VEX
//! profile's tests (6.1.27.3–6.1.27.10): a product tree, vulnerabilities with ids, notes and a
//! status, an impact statement for each product not affected and an action statement for each
//! one affected. The tests' own implementation lives in this crate's tests.

use std::collections::BTreeMap;

use lockstep_core::model::{Assessment, Participant, RemoteState};
use lockstep_core::vuln::{Ecosystem, Rating};
use lockstep_core::{Case, Event, RepoId};
use serde_json::{Value, json};

use crate::range;
use crate::{advisory_url, all_published, changes, cvss_score, package_lines};

/// The document's file name, after CSAF §5.1: the tracking id in lower case, every character
/// outside `[a-z0-9+\-]` replaced by `_`.
pub fn file_name(tracking_id: &str) -> String {
    let id: String = tracking_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '+' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{id}.json")
}

/// One product of the tree.
struct Product {
    id: String,
    name: String,
    /// `product_version`, `product_version_range` or `None` (the package itself).
    category: Option<&'static str>,
    branch_name: String,
}

/// One repository's products.
#[derive(Default)]
struct RepoProducts {
    /// The packages as such (no version): for repositories without a fix line, or not
    /// affected.
    packages: Vec<String>,
    /// Vulnerable ranges, with the line's remediation text.
    vulnerable: Vec<(String, Option<String>)>,
    /// Patched versions.
    fixed: Vec<String>,
}

fn purl_type(e: Ecosystem) -> &'static str {
    match e {
        Ecosystem::Npm => "npm",
        Ecosystem::Pip => "pypi",
        Ecosystem::Maven => "maven",
        Ecosystem::Nuget => "nuget",
        Ecosystem::Go => "golang",
        Ecosystem::Rust => "cargo",
        Ecosystem::Rubygems => "gem",
        Ecosystem::Composer => "composer",
        Ecosystem::Swift => "swift",
        Ecosystem::Erlang => "hex",
        Ecosystem::Pub => "pub",
        Ecosystem::Actions => "github",
        Ecosystem::Other => "generic",
    }
}

/// A range in the `vers` syntax (`vers:npm/>=1.0.0|<1.24.0`), or the text as written when it
/// does not parse.
fn vers(e: Ecosystem, vulnerable_range: Option<&str>, patched: Option<&str>) -> String {
    let t = purl_type(e);
    let bounds = match vulnerable_range {
        Some(r) => match range::parse(r) {
            Some(b) => b,
            None => return r.to_owned(),
        },
        None => range::Bounds::default(),
    };
    let mut c = Vec::new();
    if let Some(x) = bounds.exact {
        c.push(x);
    }
    if let Some(x) = bounds.introduced {
        c.push(format!(">={x}"));
    }
    match (bounds.below, bounds.last_affected, patched) {
        (Some(y), _, _) => c.push(format!("<{y}")),
        (None, Some(y), _) => c.push(format!("<={y}")),
        (None, None, Some(p)) if c.is_empty() || vulnerable_range.is_none() => {
            c.push(format!("<{p}"))
        }
        _ => {}
    }
    if c.is_empty() {
        format!("vers:{t}/*")
    } else {
        format!("vers:{t}/{}", c.join("|"))
    }
}

fn not_affected(p: &Participant) -> Option<&str> {
    match &p.assessment {
        Assessment::NotAffected { reason } => Some(reason),
        _ => None,
    }
}

/// The CSAF VEX document of the case.
pub fn document(case: &Case, events: &[Event]) -> Value {
    // ----- the product tree --------------------------------------------------------------
    // vendor (owner) -> product family (repository) -> product name (package) -> versions.
    let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeMap<String, Vec<Product>>>> = BTreeMap::new();
    let mut products: BTreeMap<&RepoId, RepoProducts> = BTreeMap::new();
    for (repo, p) in case.scope() {
        let Some(spec) = case.workflow.repos.get(repo) else {
            continue;
        };
        let family = tree
            .entry(repo.owner())
            .or_default()
            .entry(repo.name())
            .or_default();
        let mut mine = RepoProducts::default();
        let lines = if not_affected(p).is_some() {
            Vec::new()
        } else {
            package_lines(p)
        };
        let mut names: Vec<String> = crate::package_names(spec, &lines)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            names.push(repo.name().to_owned());
        }
        for name in &names {
            let entries = family.entry(name.clone()).or_default();
            let mine_lines: Vec<_> = lines.iter().filter(|l| l.package == name).collect();
            if mine_lines.is_empty() {
                let id = format!("{repo}:{name}");
                entries.push(Product {
                    id: id.clone(),
                    name: name.clone(),
                    category: None,
                    branch_name: name.clone(),
                });
                mine.packages.push(id);
                continue;
            }
            for l in mine_lines {
                let v = vers(spec.ecosystem, l.vulnerable_range, l.patched_version);
                let id = format!("{repo}:{name}@{v}");
                if !entries.iter().any(|e| e.id == id) {
                    entries.push(Product {
                        id: id.clone(),
                        name: format!(
                            "{name} {}",
                            l.vulnerable_range.map_or_else(
                                || l.patched_version
                                    .map_or("(all versions)".to_owned(), |p| format!("< {p}")),
                                str::to_owned
                            )
                        ),
                        category: Some("product_version_range"),
                        branch_name: v,
                    });
                }
                let fix_text = l
                    .patched_version
                    .map(|p| format!("Upgrade {name} to {p} or later."));
                if !mine.vulnerable.iter().any(|(i, _)| i == &id) {
                    mine.vulnerable.push((id, fix_text));
                }
                if let Some(patched) = l.patched_version {
                    let id = format!("{repo}:{name}@{patched}");
                    if !entries.iter().any(|e| e.id == id) {
                        entries.push(Product {
                            id: id.clone(),
                            name: format!("{name} {patched}"),
                            category: Some("product_version"),
                            branch_name: patched.to_owned(),
                        });
                    }
                    if p.fix.is_released() && !mine.fixed.contains(&id) {
                        mine.fixed.push(id);
                    }
                }
            }
        }
        products.insert(repo, mine);
    }
    let product_tree = json!({ "branches": tree.iter().map(|(vendor, families)| json!({
        "category": "vendor",
        "name": vendor,
        "branches": families.iter().map(|(family, packages)| json!({
            "category": "product_family",
            "name": family,
            "branches": packages.iter().map(|(package, entries)| {
                match entries.as_slice() {
                    [only] if only.category.is_none() => json!({
                        "category": "product_name",
                        "name": package,
                        "product": { "name": only.name, "product_id": only.id },
                    }),
                    _ => json!({
                        "category": "product_name",
                        "name": package,
                        "branches": entries.iter().map(|e| json!({
                            "category": e.category.unwrap_or("product_version_range"),
                            "name": e.branch_name,
                            "product": { "name": e.name, "product_id": e.id },
                        })).collect::<Vec<_>>(),
                    }),
                }
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })).collect::<Vec<_>>() });

    // ----- vulnerabilities ---------------------------------------------------------------
    let v = &case.vulnerability;
    let not_affected_repos: Vec<(&RepoId, &str)> = case
        .scope()
        .filter_map(|(r, p)| not_affected(p).map(|why| (r, why)))
        .collect();
    // One entry per advisory, merged by CVE (each CVE appears once, §6.1.23).
    let mut entries: BTreeMap<String, Vec<&RepoId>> = BTreeMap::new();
    for (repo, p) in case.scope() {
        if not_affected(p).is_some() {
            continue;
        }
        let key = match (&p.advisory.cve, &p.advisory.ghsa) {
            (Some(c), _) => c.to_string(),
            (None, Some(g)) => g.to_string(),
            (None, None) => repo.to_string(),
        };
        entries.entry(key).or_default().push(repo);
    }
    let mut vulnerabilities = Vec::new();
    for repos in entries.values() {
        vulnerabilities.push(vulnerability(case, repos, &products, &not_affected_repos));
    }
    if vulnerabilities.is_empty() {
        // Every repository is not affected: one entry for the case says so.
        vulnerabilities.push(vulnerability(case, &[], &products, &not_affected_repos));
    }

    // ----- the document ------------------------------------------------------------------
    let public = case.latches.public.is_some();
    let final_ = all_published(case);
    let revisions = revision_history(case, events);
    let first = revisions.first().map_or_else(
        || case.opened_at.to_string(),
        |r| r["date"].as_str().unwrap_or_default().to_owned(),
    );
    let last = revisions.last().map_or_else(
        || first.clone(),
        |r| r["date"].as_str().unwrap_or_default().to_owned(),
    );
    let version = revisions.len().max(1).to_string();
    let mut references = Vec::new();
    for (repo, p) in case.scope() {
        if let (Some(g), RemoteState::Published) = (&p.advisory.ghsa, p.advisory.state) {
            references.push(json!({
                "category": "external",
                "summary": format!("GitHub security advisory {g} ({repo})"),
                "url": advisory_url(repo, g.as_str()),
            }));
        }
    }
    let namespace = case.workflow.repos.keys().next().map_or_else(
        || "https://github.com".to_owned(),
        |r| format!("https://github.com/{}", r.owner()),
    );
    let mut document = json!({
        "category": "csaf_vex",
        "csaf_version": "2.0",
        "lang": "en",
        "title": nonempty(&v.summary, "Coordinated vulnerability disclosure"),
        "publisher": {
            "category": "coordinator",
            "name": format!("Lockstep, workflow {}", case.workflow.name),
            "namespace": namespace,
        },
        "distribution": {
            "text": if public {
                "Public: every advisory of the case this document describes as published is public."
            } else {
                "Embargoed: for the case's coordinators and maintainers only, until its advisories are published."
            },
            "tlp": { "label": if public { "WHITE" } else { "RED" }, "url": "https://www.first.org/tlp/" },
        },
        "notes": [
            { "category": "summary", "title": "Summary", "text": nonempty(&v.summary, "(none)") },
        ],
        "tracking": {
            "id": case.id.as_str(),
            "status": if final_ { "final" } else { "interim" },
            "version": version,
            "initial_release_date": first,
            "current_release_date": last,
            "revision_history": revisions,
            "generator": { "engine": { "name": "Lockstep", "version": env!("CARGO_PKG_VERSION") } },
        },
    });
    if !references.is_empty() {
        document["references"] = Value::Array(references);
    }
    if !v.credits.is_empty() {
        document["acknowledgments"] = Value::Array(
            v.credits
                .iter()
                .map(|c| {
                    json!({
                        "names": [c.login.as_str()],
                        "summary": c.kind.as_str().replace('_', " "),
                        "urls": [format!("https://github.com/{}", c.login)],
                    })
                })
                .collect(),
        );
    }
    json!({
        "document": document,
        "product_tree": product_tree,
        "vulnerabilities": vulnerabilities,
    })
}

fn nonempty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.trim().is_empty() { fallback } else { s }
}

fn vulnerability(
    case: &Case,
    repos: &[&RepoId],
    products: &BTreeMap<&RepoId, RepoProducts>,
    not_affected_repos: &[(&RepoId, &str)],
) -> Value {
    let v = &case.vulnerability;
    let mut known_affected = Vec::new();
    let mut fixed = Vec::new();
    let mut under_investigation = Vec::new();
    let mut remediations = Vec::new();
    let mut ids = Vec::new();
    let mut cve = None;
    let mut references = Vec::new();
    let mut release_date = None;
    for repo in repos {
        let Some(p) = case.participants.get(*repo) else {
            continue;
        };
        let Some(mine) = products.get(repo) else {
            continue;
        };
        if let Some(c) = &p.advisory.cve {
            cve = Some(c.to_string());
        }
        if let Some(g) = &p.advisory.ghsa {
            ids.push(json!({ "system_name": "GitHub Security Advisory", "text": g.as_str() }));
            references.push(json!({
                "category": "external",
                "summary": format!("GitHub security advisory {g} ({repo})"),
                "url": advisory_url(repo, g.as_str()),
            }));
        }
        if p.advisory.state == RemoteState::Published {
            release_date = release_date.max(p.advisory.published_at);
        }
        let affected =
            matches!(p.assessment, Assessment::Affected { .. }) || !p.fix.packages().is_empty();
        if !affected {
            under_investigation.extend(mine.packages.iter().cloned());
            under_investigation.extend(mine.vulnerable.iter().map(|(id, _)| id.clone()));
            continue;
        }
        known_affected.extend(mine.packages.iter().cloned());
        if !mine.packages.is_empty() {
            remediations.push(json!({
                "category": "none_available",
                "details": "No fixed version is released yet.",
                "product_ids": mine.packages,
            }));
        }
        for (id, text) in &mine.vulnerable {
            known_affected.push(id.clone());
            let rem = match (p.fix.is_released(), text) {
                (true, Some(t)) => {
                    json!({ "category": "vendor_fix", "details": t, "product_ids": [id] })
                }
                (false, Some(_)) => json!({
                    "category": "none_available",
                    "details": "A fix is prepared and not yet released.",
                    "product_ids": [id],
                }),
                (_, None) => json!({
                    "category": "none_available",
                    "details": "No patched version is named yet.",
                    "product_ids": [id],
                }),
            };
            remediations.push(rem);
        }
        fixed.extend(mine.fixed.iter().cloned());
    }
    if cve.is_none() && ids.is_empty() {
        let text = match repos.first() {
            Some(r) => format!("{}/{r}", case.id),
            None => case.id.to_string(),
        };
        ids.push(json!({ "system_name": "Lockstep case", "text": text }));
    }
    let mut known_not_affected = Vec::new();
    let mut threats = Vec::new();
    for (repo, why) in not_affected_repos {
        if let Some(mine) = products.get(repo) {
            if mine.packages.is_empty() {
                continue;
            }
            known_not_affected.extend(mine.packages.iter().cloned());
            threats.push(json!({
                "category": "impact",
                "details": nonempty(why, "Assessed not affected by its maintainer."),
                "product_ids": mine.packages,
            }));
        }
    }
    let mut status = serde_json::Map::new();
    for (k, list) in [
        ("known_affected", &known_affected),
        ("fixed", &fixed),
        ("known_not_affected", &known_not_affected),
        ("under_investigation", &under_investigation),
    ] {
        if !list.is_empty() {
            status.insert(k.into(), json!(list));
        }
    }
    let mut notes = vec![
        json!({ "category": "description", "title": "Description", "text": nonempty(&v.description, "(none)") }),
        json!({ "category": "summary", "title": "Summary", "text": nonempty(&v.summary, "(none)") }),
    ];
    if !v.cwes.is_empty() {
        let list: Vec<&str> = v.cwes.iter().map(|c| c.as_str()).collect();
        notes.push(json!({ "category": "other", "title": "Weaknesses", "text": list.join(", ") }));
    }
    let mut out = json!({
        "title": match repos {
            [] => v.summary.clone(),
            _ => format!("{} ({})", v.summary, repos.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
        },
        "notes": notes,
        "product_status": status,
    });
    if out["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
        out["title"] = json!(case.id.as_str());
    }
    if let Some(c) = cve {
        out["cve"] = json!(c);
    }
    if !ids.is_empty() {
        out["ids"] = json!(ids);
    }
    if !remediations.is_empty() {
        out["remediations"] = json!(remediations);
    }
    if !threats.is_empty() {
        out["threats"] = json!(threats);
    }
    if !references.is_empty() {
        out["references"] = json!(references);
    }
    if let Some(at) = release_date {
        out["release_date"] = json!(at.to_string());
    }
    match &v.rating {
        Rating::Cvss(vector)
            if !known_affected.is_empty() && !vector.as_str().starts_with("CVSS:4.0/") =>
        {
            if let Some((score, severity)) = cvss_score(vector.as_str()) {
                let version = if vector.as_str().starts_with("CVSS:3.0/") {
                    "3.0"
                } else {
                    "3.1"
                };
                out["scores"] = json!([{
                    "products": known_affected,
                    "cvss_v3": {
                        "version": version,
                        "vectorString": vector.as_str(),
                        "baseScore": score,
                        "baseSeverity": severity,
                    },
                }]);
            }
        }
        Rating::Cvss(vector) => {
            // CSAF 2.0 knows CVSS 2 and 3 only: a 4.0 vector goes in a note.
            if let Some(notes) = out["notes"].as_array_mut() {
                notes
                    .push(json!({ "category": "other", "title": "CVSS", "text": vector.as_str() }));
            }
        }
        Rating::Severity(s) => {
            if let Some(notes) = out["notes"].as_array_mut() {
                notes.push(json!({ "category": "other", "title": "Severity", "text": s.as_str() }));
            }
        }
    }
    out
}

/// The revision history: one revision per committed decision that changed the content, in
/// order, numbered from 1, with dates that never go backwards.
pub fn revision_history(case: &Case, events: &[Event]) -> Vec<Value> {
    let mut groups: Vec<(lockstep_core::Timestamp, Vec<String>)> = Vec::new();
    for c in changes(case, events) {
        match groups.last_mut() {
            Some((at, texts)) if *at == c.at => texts.push(c.text),
            _ => groups.push((c.at, vec![c.text])),
        }
    }
    let mut latest = case.opened_at;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (at, texts))| {
            latest = latest.max(at);
            let mut summary = texts.join("; ");
            if summary.chars().count() > 2000 {
                summary = summary.chars().take(1990).collect::<String>() + " (…)";
            }
            json!({ "number": (i + 1).to_string(), "date": latest.to_string(), "summary": summary })
        })
        .collect()
}
