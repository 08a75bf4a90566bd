//! Every export of the demo case, and of cases the property tests generate, validates against
//! the official schemas (OSV 1.7, CSAF 2.0 with CSAF's mandatory tests, CVE JSON 5.1.1), and
//! says what the case says.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use lockstep_core::input::{FixStage, Verdict};
use lockstep_core::vuln::{PackageFix, Rating, Vulnerability};
use lockstep_core::{Command, Input};
use lockstep_export::{ExportError, Format, Options, export};
use proptest::prelude::*;
use serde_json::Value;

fn all(d: &Driver, format: Format) -> Vec<lockstep_export::Document> {
    export(&d.case, &d.events, format, None, &Options::default()).unwrap()
}

#[test]
fn demo_case_exports_validate() {
    let v = Validators::new();
    let d = demo_case();
    let mut report = Vec::new();
    for format in [Format::Osv, Format::Csaf, Format::Cve] {
        for doc in all(&d, format) {
            let errors = v.errors(format, &doc.json);
            report.push(format!(
                "{format} {}: {}",
                doc.file_name,
                if errors.is_empty() {
                    "valid".to_owned()
                } else {
                    errors.join("; ")
                }
            ));
            assert!(errors.is_empty(), "{format} {}: {errors:#?}", doc.file_name);
        }
    }
    // Nine advisories (Swift is not affected), nine CVE records, one CSAF document.
    assert_eq!(report.len(), 9 + 1 + 9, "{report:#?}");
    println!("{}", report.join("\n"));
}

#[test]
fn osv_records_name_their_siblings_and_ecosystems() {
    let d = demo_case();
    let osv = all(&d, Format::Osv);
    assert_eq!(osv.len(), 9);
    let go = osv
        .iter()
        .find(|o| o.json["database_specific"]["repository"] == "modelcontextprotocol/go-sdk")
        .unwrap();
    let p = &d.case.participants[&r("modelcontextprotocol/go-sdk")];
    assert_eq!(go.json["id"], p.advisory.ghsa.as_ref().unwrap().as_str());
    assert_eq!(
        go.json["aliases"],
        serde_json::json!([p.advisory.cve.as_ref().unwrap().as_str()])
    );
    // Eight siblings, each with its GHSA and its CVE; Swift's closed draft is not among them.
    let related = go.json["related"].as_array().unwrap();
    assert_eq!(related.len(), 16, "{related:?}");
    let swift = &d.case.participants[&r("modelcontextprotocol/swift-sdk")];
    assert!(!related.contains(&Value::from(swift.advisory.ghsa.as_ref().unwrap().as_str())));
    assert_eq!(go.json["affected"][0]["package"]["ecosystem"], "Go");
    assert_eq!(go.json["affected"][0]["ranges"][0]["type"], "SEMVER");
    assert_eq!(
        go.json["affected"][0]["ranges"][0]["events"],
        serde_json::json!([{ "introduced": "0" }, { "fixed": "1.9.0" }])
    );
    assert_eq!(
        go.json["published"],
        p.advisory.published_at.unwrap().to_string()
    );
    assert_eq!(go.json["credits"][0]["type"], "FINDER");
    let ecosystems: std::collections::BTreeSet<&str> = osv
        .iter()
        .flat_map(|o| o.json["affected"].as_array().unwrap().iter())
        .map(|a| a["package"]["ecosystem"].as_str().unwrap())
        .collect();
    assert_eq!(
        ecosystems.into_iter().collect::<Vec<_>>(),
        [
            "Go",
            "Maven",
            "NuGet",
            "Packagist",
            "PyPI",
            "RubyGems",
            "crates.io",
            "npm"
        ]
    );
    let python = osv
        .iter()
        .find(|o| o.json["database_specific"]["repository"] == "modelcontextprotocol/python-sdk")
        .unwrap();
    assert_eq!(python.json["affected"][0]["ranges"][0]["type"], "ECOSYSTEM");
}

#[test]
fn csaf_says_who_is_affected_fixed_and_not_affected() {
    let d = demo_case();
    let csaf = &all(&d, Format::Csaf)[0].json;
    assert_eq!(csaf["document"]["category"], "csaf_vex");
    assert_eq!(csaf["document"]["tracking"]["status"], "final");
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "WHITE");
    let vulns = csaf["vulnerabilities"].as_array().unwrap();
    assert_eq!(vulns.len(), 9, "one entry per CVE");
    for v in vulns {
        let status = &v["product_status"];
        assert_eq!(status["known_not_affected"].as_array().unwrap().len(), 1);
        assert!(
            status["known_not_affected"][0]
                .as_str()
                .unwrap()
                .starts_with("modelcontextprotocol/swift-sdk:")
        );
        assert_eq!(
            v["threats"][0]["details"],
            "the SDK has no HTTP server transport"
        );
        assert!(!status["fixed"].as_array().unwrap().is_empty());
        assert!(
            v["remediations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["category"] == "vendor_fix"
                    && r["details"].as_str().unwrap().contains("1.9.0"))
        );
    }
    assert_eq!(
        csaf["document"]["acknowledgments"][0]["names"][0],
        "security-researcher"
    );
    // The history: opening, then each decision that changed the content, ending in the
    // publications.
    let history = csaf["document"]["tracking"]["revision_history"]
        .as_array()
        .unwrap();
    assert_eq!(history[0]["number"], "1");
    assert!(
        history.last().unwrap()["summary"]
            .as_str()
            .unwrap()
            .contains("published")
    );
    assert_eq!(
        csaf["document"]["tracking"]["version"],
        history.len().to_string()
    );
}

#[test]
fn an_embargoed_case_is_red_and_interim() {
    let v = Validators::new();
    let mut d = Driver::open(MCP_WORKFLOW, demo_vulnerability());
    d.assign_cves();
    let python = r("modelcontextprotocol/python-sdk");
    d.assess(&python, Verdict::Affected, "yes");
    d.fix(
        &python,
        FixStage::Released,
        vec![PackageFix {
            package: "mcp".into(),
            vulnerable_range: Some(">= 1.0.0, < 1.9.0".into()),
            patched_versions: "1.9.0".into(),
        }],
    );
    let csaf = &all(&d, Format::Csaf)[0].json;
    assert!(
        v.errors(Format::Csaf, csaf).is_empty(),
        "{:#?}",
        v.errors(Format::Csaf, csaf)
    );
    assert_eq!(csaf["document"]["distribution"]["tlp"]["label"], "RED");
    assert_eq!(csaf["document"]["tracking"]["status"], "interim");
    // The others are under investigation; nothing is published, so no OSV record has a date.
    let under: usize = csaf["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["product_status"].get("under_investigation").is_some())
        .count();
    assert_eq!(under, 9);
    for o in all(&d, Format::Osv) {
        assert!(o.json.get("published").is_none());
        assert!(v.errors(Format::Osv, &o.json).is_empty());
    }
}

#[test]
fn refusals_are_one_line_errors() {
    let d = demo_case();
    let swift = r("modelcontextprotocol/swift-sdk");
    assert_eq!(
        "xml".parse::<Format>().unwrap_err().to_string(),
        "unknown export format \"xml\": expected osv, csaf or cve"
    );
    let e = export(
        &d.case,
        &d.events,
        Format::Osv,
        Some(&swift),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::Nothing { .. }), "{e}");
    let e = export(
        &d.case,
        &d.events,
        Format::Csaf,
        Some(&swift),
        &Options::default(),
    )
    .unwrap_err();
    assert_eq!(e, ExportError::RepoNotApplicable);
    let e = export(
        &d.case,
        &d.events,
        Format::Cve,
        Some(&r("someone/else")),
        &Options::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ExportError::NotInCase { .. }), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn mandatory_tests_are_not_vacuous() {
    let d = demo_case();
    let good = all(&d, Format::Csaf).remove(0).json;
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        f(&mut doc);
        csaf_tests::mandatory(&doc)
    };
    assert!(csaf_tests::mandatory(&good).is_empty());
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "6.1.1",
            Box::new(|d: &mut Value| {
                d["vulnerabilities"][0]["product_status"]["fixed"]
                    .as_array_mut()
                    .unwrap()
                    .push("nowhere".into())
            }),
        ),
        (
            "6.1.6",
            Box::new(|d: &mut Value| {
                let id = d["vulnerabilities"][0]["product_status"]["known_not_affected"][0].clone();
                d["vulnerabilities"][0]["product_status"]["fixed"]
                    .as_array_mut()
                    .unwrap()
                    .push(id);
            }),
        ),
        (
            "6.1.27.9",
            Box::new(|d: &mut Value| {
                d["vulnerabilities"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("threats");
            }),
        ),
        (
            "6.1.27.10",
            Box::new(|d: &mut Value| {
                d["vulnerabilities"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("remediations");
            }),
        ),
        (
            "6.1.16",
            Box::new(|d: &mut Value| d["document"]["tracking"]["version"] = "99".into()),
        ),
        (
            "6.1.21",
            Box::new(|d: &mut Value| {
                d["document"]["tracking"]["revision_history"]
                    .as_array_mut()
                    .unwrap()
                    .remove(1);
            }),
        ),
        (
            "6.1.23",
            Box::new(|d: &mut Value| {
                d["vulnerabilities"][1]["cve"] = d["vulnerabilities"][0]["cve"].clone()
            }),
        ),
    ];
    for (test, f) in cases {
        let failures = mutate(&*f);
        assert!(
            failures.iter().any(|l| l.starts_with(test)),
            "{test} not detected: {failures:?}"
        );
    }
}

// ----- property-generated cases ------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Assess(usize, u8),
    Fix(usize, bool, Vec<(usize, Option<String>, String)>),
    Cve(usize),
    Disclose,
    Amend(usize, Option<String>, String),
}

fn version() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
        "v[0-9]\\.[0-9]\\.[0-9]",
        "[0-9]\\.[0-9]",
        "[0-9]\\.[0-9]\\.[0-9]-rc\\.[0-9]",
    ]
}

fn range() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        version().prop_map(|v| Some(format!("< {v}"))),
        (version(), version()).prop_map(|(a, b)| Some(format!(">= {a}, < {b}"))),
        version().prop_map(|v| Some(format!("<= {v}"))),
        version().prop_map(|v| Some(format!("= {v}"))),
        "[a-z ]{1,12}".prop_map(Some),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..10, 0u8..3).prop_map(|(r, v)| Step::Assess(r, v)),
        (
            0usize..10,
            any::<bool>(),
            prop::collection::vec((0usize..10, range(), version()), 0..3)
        )
            .prop_map(|(r, released, lines)| Step::Fix(r, released, lines)),
        (0usize..10).prop_map(Step::Cve),
        Just(Step::Disclose),
        (0usize..10, range(), version()).prop_map(|(r, range, v)| Step::Amend(r, range, v)),
    ]
}

fn rating() -> impl Strategy<Value = Rating> {
    prop_oneof![
        Just(Rating::Severity(lockstep_core::vuln::Severity::Low)),
        Just(Rating::Severity(lockstep_core::vuln::Severity::Critical)),
        Just(Rating::Cvss(
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:L/A:N"
                .parse()
                .unwrap()
        )),
        Just(Rating::Cvss(
            "CVSS:3.0/AV:L/AC:H/PR:H/UI:N/S:C/C:N/I:N/A:L"
                .parse()
                .unwrap()
        )),
        Just(Rating::Cvss(
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N"
                .parse()
                .unwrap()
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_cases_export_valid_documents(
        steps in prop::collection::vec(step(), 0..25),
        rating in rating(),
        credits in prop::sample::subsequence(vec!["alice:finder", "bob:remediation_developer", "carol:coordinator"], 0..3),
        summary in "[A-Za-z][A-Za-z ,.:-]{0,60}",
    ) {
        let vuln = Vulnerability {
            rating,
            credits: credits.iter().map(|c| c.parse().unwrap()).collect(),
            summary,
            ..demo_vulnerability()
        };
        let mut d = Driver::open(MCP_WORKFLOW, vuln);
        let repos: Vec<_> = d.case.scope().map(|(r, _)| r.clone()).collect();
        let mut next_cve = 0;
        for s in steps {
            let input = match s {
                Step::Assess(i, v) => Input::Command(Command::Assess {
                    repo: repos[i].clone(),
                    verdict: [Verdict::Investigating, Verdict::Affected, Verdict::NotAffected][usize::from(v)],
                    reason: "looked".into(),
                }),
                Step::Fix(i, released, lines) => {
                    let packages = &d.case.workflow.repos[&repos[i]].packages;
                    let mut fixes: Vec<PackageFix> = lines.into_iter().map(|(p, range, patched)| PackageFix {
                        package: packages[p % packages.len()].clone(),
                        vulnerable_range: range,
                        patched_versions: patched,
                    }).collect();
                    fixes.sort();
                    fixes.dedup_by(|a, b| a.package == b.package);
                    Input::Command(Command::MarkFix {
                        repo: repos[i].clone(),
                        stage: if released { FixStage::Released } else { FixStage::Prepared },
                        packages: fixes,
                    })
                }
                Step::Cve(i) => {
                    next_cve += 1;
                    Input::Observation(lockstep_core::Observation::CveAssigned {
                        repo: repos[i].clone(),
                        cve: format!("CVE-2026-{}", 50_000 + next_cve).parse().unwrap(),
                    })
                }
                Step::Disclose => Input::Command(Command::DiscloseNow { reason: "public".into() }),
                Step::Amend(i, range, patched) => Input::Command(Command::Amend {
                    repo: repos[i].clone(),
                    packages: vec![],
                    vulnerable_range: range,
                    patched_versions: Some(patched),
                    reason: "incomplete".into(),
                }),
            };
            // Inputs the engine refuses change nothing; that is their test, not this one's.
            let _ = d.act(input);
        }
        let v = Validators::new();
        for format in [Format::Osv, Format::Csaf, Format::Cve] {
            let docs = match export(&d.case, &d.events, format, None, &Options::default()) {
                Ok(docs) => docs,
                Err(ExportError::Empty { .. }) => continue,
                Err(e) => panic!("{format}: {e}"),
            };
            for doc in docs {
                let errors = v.errors(format, &doc.json);
                prop_assert!(errors.is_empty(), "{} {}: {:#?}\n{}", format, doc.file_name, errors, serde_json::to_string_pretty(&doc.json).unwrap());
            }
        }
    }
}

#[test]
fn the_validators_reject_broken_documents() {
    let v = Validators::new();
    let d = demo_case();
    let mut osv = all(&d, Format::Osv).remove(0).json;
    osv["affected"][0]["ranges"][0]["type"] = "BOGUS".into();
    assert!(!v.errors(Format::Osv, &osv).is_empty());
    let mut osv = all(&d, Format::Osv).remove(0).json;
    osv["modified"] = "yesterday".into();
    assert!(
        !v.errors(Format::Osv, &osv).is_empty(),
        "formats are checked"
    );
    let mut csaf = all(&d, Format::Csaf).remove(0).json;
    csaf["document"].as_object_mut().unwrap().remove("tracking");
    assert!(!v.errors(Format::Csaf, &csaf).is_empty());
    let mut csaf = all(&d, Format::Csaf).remove(0).json;
    csaf["document"]["distribution"]["tlp"]["label"] = "CLEAR".into();
    assert!(
        !v.errors(Format::Csaf, &csaf).is_empty(),
        "CSAF 2.0 predates TLP CLEAR"
    );
    // The CVSS schemas are resolved locally: a broken score fails.
    let vuln = Vulnerability {
        rating: Rating::Cvss(
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
                .parse()
                .unwrap(),
        ),
        ..demo_vulnerability()
    };
    let mut d2 = Driver::open(MCP_WORKFLOW, vuln);
    let python = r("modelcontextprotocol/python-sdk");
    d2.assess(&python, Verdict::Affected, "yes");
    let mut csaf = all(&d2, Format::Csaf).remove(0).json;
    let i = csaf["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .position(|v| v.get("scores").is_some())
        .unwrap();
    assert!(
        v.errors(Format::Csaf, &csaf).is_empty(),
        "{:?}",
        v.errors(Format::Csaf, &csaf)
    );
    csaf["vulnerabilities"][i]["scores"][0]["cvss_v3"]["baseSeverity"] = "SEVERE".into();
    assert!(
        !v.csaf.is_valid(&csaf),
        "the CVSS 3.1 schema itself refuses it"
    );
    let mut cve = all(&d, Format::Cve).remove(0).json;
    cve["cveMetadata"]["cveId"] = "CVE-26-1".into();
    assert!(!v.errors(Format::Cve, &cve).is_empty());
}

#[test]
fn an_amendment_shows_in_every_export() {
    let v = Validators::new();
    let mut d = demo_case();
    let go = r("modelcontextprotocol/go-sdk");
    let osv_before = export(
        &d.case,
        &d.events,
        Format::Osv,
        Some(&go),
        &Options::default(),
    )
    .unwrap()
    .remove(0)
    .json;
    let revisions_before =
        all(&d, Format::Csaf)[0].json["document"]["tracking"]["revision_history"]
            .as_array()
            .unwrap()
            .len();
    d.act(Input::Command(Command::Amend {
        repo: go.clone(),
        packages: vec![],
        vulnerable_range: Some("< 1.9.1".into()),
        patched_versions: Some("1.9.1".into()),
        reason: "the SSE transport was not fixed in 1.9.0".into(),
    }))
    .unwrap();
    let osv = export(
        &d.case,
        &d.events,
        Format::Osv,
        Some(&go),
        &Options::default(),
    )
    .unwrap()
    .remove(0)
    .json;
    assert!(osv["modified"].as_str().unwrap() > osv_before["modified"].as_str().unwrap());
    assert_eq!(osv["published"], osv_before["published"]);
    assert_eq!(
        osv["affected"][0]["ranges"][0]["events"][1]["fixed"],
        "1.9.1"
    );
    let csaf = all(&d, Format::Csaf).remove(0).json;
    let history = csaf["document"]["tracking"]["revision_history"]
        .as_array()
        .unwrap();
    assert_eq!(history.len(), revisions_before + 1);
    assert!(
        history.last().unwrap()["summary"]
            .as_str()
            .unwrap()
            .contains("amended: the SSE transport")
    );
    assert_eq!(csaf["document"]["tracking"]["status"], "final");
    for format in [Format::Osv, Format::Csaf, Format::Cve] {
        for doc in all(&d, format) {
            assert!(
                v.errors(format, &doc.json).is_empty(),
                "{format} {}",
                doc.file_name
            );
        }
    }
}
