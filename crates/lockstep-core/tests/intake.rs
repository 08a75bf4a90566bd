//! Intake: a case opened from a private vulnerability report adopts the reporter's advisory,
//! credits and includes the reporter; reports are merged or rejected under the written policy,
//! by those with authority.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use lockstep_core::effect::Action;
use lockstep_core::engine::intake::{Report, ReportAction, ReportState, authorize_report};
use lockstep_core::machines::{RmState, RmSymbol};
use lockstep_core::model::RemoteState;
use lockstep_core::vuln::CreditType;
use lockstep_core::*;

const RULES: &str = r#"
[triage]
[[triage.out_of_scope]]
id = "stdio-dos"
summary = "One stdio peer can crash, hang or exhaust the other; file it as a regular issue"
guidance = "File a regular issue."
"#;

fn workflow_with(extra: &str) -> Workflow {
    Workflow::parse("fixture.toml", &format!("{WORKFLOW}{extra}")).unwrap()
}

fn report_ghsa() -> GhsaId {
    "GHSA-rrrr-pppp-0001".parse().unwrap()
}

fn report_on(repo: &str) -> Report {
    Report::received(
        r(repo),
        report_ghsa(),
        "Host header not validated".into(),
        "The reporter's text.".into(),
        None,
        BTreeSet::new(),
        vec![],
        "rita".parse().unwrap(),
        t(0),
    )
}

fn open_from(report: &Report, wf: Workflow) -> (Case, Ledger) {
    let (mut case, d) = Case::open_from_report(
        &user("alice"),
        OpenCase {
            case_id: "LS-1".parse().unwrap(),
            workflow: wf,
            scope: BTreeSet::new(),
            vulnerability: report.vulnerability(),
            embargo_until: None,
        },
        report.origin(),
        t(0),
    )
    .unwrap();
    let ledger = settle_decision(&mut case, &d, t(0));
    (case, ledger)
}

#[test]
fn opening_from_a_report_adopts_its_advisory_in_one_write_after_the_siblings() {
    let report = report_on("org/extra");
    let (case, ledger) = open_from(&report, workflow_with(RULES));
    // Never a draft in the report's repository: its advisory is adopted.
    assert!(
        ledger
            .effects
            .iter()
            .all(|e| !(e.repo == r("org/extra") && e.action.name() == "open-draft"))
    );
    assert_eq!(ledger.count("open-draft"), 2);
    assert_eq!(ledger.count("adopt-report"), 1);
    // The adoption comes after both siblings exist, and carries every link, the marker and
    // the collaborators in the same write.
    let adopt_at = ledger
        .effects
        .iter()
        .position(|e| e.action.name() == "adopt-report")
        .unwrap();
    let opens: Vec<usize> = ledger
        .effects
        .iter()
        .enumerate()
        .filter(|(_, e)| e.action.name() == "open-draft")
        .map(|(i, _)| i)
        .collect();
    assert!(opens.iter().all(|i| *i < adopt_at));
    let Action::AdoptReport {
        ghsa,
        content,
        marker,
        links,
        collaborators,
    } = &ledger.effects[adopt_at].action
    else {
        panic!()
    };
    assert_eq!(*ghsa, report_ghsa());
    assert_eq!(links.len(), 2);
    assert!(content.description.ends_with(marker.as_str()));
    assert!(content.description.starts_with("The reporter's text."));
    assert!(collaborators.contains(&"alice".parse().unwrap()));
    assert!(collaborators.contains(&"carol".parse().unwrap()));
    assert!(
        !collaborators.contains(&"rita".parse().unwrap()),
        "the reporter wrote it"
    );
    // N-1 link updates for the siblings, carrying their collaborators (the reporter among
    // them); no separate collaborator write.
    assert_eq!(ledger.count("link-siblings"), 2);
    assert_eq!(ledger.count("add-collaborators"), 0);
    for e in &ledger.effects {
        if let Action::LinkSiblings { collaborators, .. } = &e.action {
            assert!(
                collaborators.contains(&"rita".parse().unwrap()),
                "{}",
                e.repo
            );
        }
    }
    // The reporter is credited, and the reporter's advisory keeps its id.
    let rita: Login = "rita".parse().unwrap();
    assert!(
        case.vulnerability
            .credits
            .iter()
            .any(|c| c.login == rita && c.kind == CreditType::Reporter)
    );
    let p = &case.participants[&r("org/extra")];
    assert_eq!(p.advisory.ghsa, Some(report_ghsa()));
    assert_eq!(p.advisory.state, RemoteState::Draft);
    assert_eq!(p.rm, RmState::Valid);
    for (repo, p) in case.scope() {
        assert_eq!(p.advisory.linked.len(), 2, "{repo}");
        assert!(p.advisory.collaborators_set, "{repo}");
    }
}

#[test]
fn a_ten_repository_case_from_a_report_stays_within_4n_minus_1_writes() {
    let mut wf = String::from(
        "name = \"ten\"\ncoordinators = [\"alice\"]\n[embargo]\ndefault_days = 30\nmax_days = 60\ndeadline_policy = \"hold-all\"\n",
    );
    for i in 0..10 {
        wf.push_str(&format!(
            "[[repo]]\nname = \"org/r{i}\"\necosystem = \"npm\"\npackages = [\"p{i}\"]\n"
        ));
    }
    let report = report_on("org/r4");
    let (mut case, mut ledger) = open_from(&report, Workflow::parse("ten.toml", &wf).unwrap());
    for i in 0..10 {
        let repo = format!("org/r{i}");
        run(
            &mut case,
            &user("alice"),
            released(&repo, &format!("p{i}")),
            t(1),
            &mut ledger,
        );
    }
    let writes = ledger.effects.len();
    assert!(ledger.published().len() == 10);
    assert!(writes < 4 * 10, "{writes} writes, more than 4N - 1");
}

#[test]
fn reporter_collaborates_false_keeps_the_reporter_off_sibling_drafts() {
    let report = report_on("org/extra");
    let (_, ledger) = open_from(
        &report,
        workflow_with("[triage]\nreporter_collaborates = false\n"),
    );
    for e in &ledger.effects {
        let logins = match &e.action {
            Action::LinkSiblings { collaborators, .. }
            | Action::AdoptReport { collaborators, .. } => collaborators.clone(),
            Action::AddCollaborators { logins, .. } => logins.clone(),
            _ => continue,
        };
        assert!(!logins.contains(&"rita".parse().unwrap()));
    }
}

#[test]
fn the_report_repository_stays_in_scope_and_must_be_in_the_workflow() {
    let report = report_on("org/extra");
    let (mut case, _) = Case::open_from_report(
        &user("alice"),
        OpenCase {
            case_id: "LS-1".parse().unwrap(),
            workflow: workflow_with(""),
            scope: BTreeSet::from([r("org/core")]),
            vulnerability: report.vulnerability(),
            embargo_until: None,
        },
        report.origin(),
        t(0),
    )
    .unwrap();
    assert!(case.participants[&r("org/extra")].in_scope);
    let refused = case.handle(
        &user("alice"),
        Input::Command(Command::RemoveRepo {
            repo: r("org/extra"),
            reason: "no".into(),
        }),
        t(1),
    );
    assert!(matches!(refused, Err(Rejection::Contradiction { .. })));
    let outside = report_on("other/repo");
    let err = Case::open_from_report(
        &user("alice"),
        OpenCase {
            case_id: "LS-2".parse().unwrap(),
            workflow: workflow_with(""),
            scope: BTreeSet::new(),
            vulnerability: outside.vulnerability(),
            embargo_until: None,
        },
        outside.origin(),
        t(0),
    )
    .unwrap_err();
    assert!(matches!(err, Rejection::NotInWorkflow { .. }));
}

#[test]
fn a_merged_report_is_adopted_where_the_case_has_no_advisory_else_closed() {
    // A case on org/core only; a second report on org/plugin is adopted into it.
    let (mut case, d) = open_with("hold-all", &["org/core", "org/extra"]);
    let mut ledger = Ledger::default();
    ledger.record(&d);
    let mut pending: Vec<Effect> = d.effects().cloned().collect();
    settle(&mut case, &mut pending, t(0));
    let merge = |repo: &str, ghsa: &str, who: &str| {
        Input::Command(Command::MergeReport {
            repo: r(repo),
            ghsa: ghsa.parse().unwrap(),
            reporter: who.parse().unwrap(),
            reason: Some("same flaw".into()),
        })
    };
    let d = run(
        &mut case,
        &user("alice"),
        merge("org/plugin", "GHSA-aaaa-bbbb-0002", "sam"),
        t(1),
        &mut ledger,
    );
    assert!(d.effects().all(|e| e.action.name() != "open-draft"));
    let p = &case.participants[&r("org/plugin")];
    assert_eq!(
        p.advisory.ghsa,
        Some("GHSA-aaaa-bbbb-0002".parse().unwrap())
    );
    assert_eq!(p.rm, RmState::Valid);
    // A second report on org/core, which has its advisory: closed as a duplicate.
    run(
        &mut case,
        &user("alice"),
        merge("org/core", "GHSA-aaaa-bbbb-0003", "tom"),
        t(2),
        &mut ledger,
    );
    assert_eq!(ledger.count("close-report"), 1);
    assert_eq!(
        case.participants[&r("org/core")].advisory.ghsa,
        Some(ghsa_for(&r("org/core")))
    );
    for who in ["sam", "tom"] {
        let login: Login = who.parse().unwrap();
        assert!(case.vulnerability.credits.iter().any(|c| c.login == login));
    }
    // The same report twice is refused, and a maintainer may not merge.
    assert!(
        case.handle(
            &user("alice"),
            merge("org/core", "GHSA-aaaa-bbbb-0003", "tom"),
            t(3)
        )
        .is_err()
    );
    assert!(
        case.handle(
            &user("bob"),
            merge("org/core", "GHSA-aaaa-bbbb-0004", "ula"),
            t(3)
        )
        .unwrap_err()
        .is_not_authorized()
    );
}

#[test]
fn a_rejection_under_a_rule_records_it_and_moves_received_invalid_closed() {
    let wf = workflow_with(RULES);
    let report = report_on("org/core");
    let out = report
        .reject(&user("bob"), &[&wf], "stdio only", Some("stdio-dos"), t(1))
        .unwrap();
    assert_eq!(out.report.state, ReportState::Rejected);
    assert_eq!(out.report.rm, RmState::Closed);
    assert_eq!(
        out.rm_moves,
        vec![
            (RmState::Received, RmSymbol::Invalidate, RmState::Invalid),
            (RmState::Invalid, RmSymbol::Close, RmState::Closed),
        ]
    );
    assert!(out.close_on_github);
    let decision = out.report.decision.as_ref().unwrap();
    assert_eq!(
        decision.rule.as_ref().unwrap().guidance,
        "File a regular issue."
    );
    // Already decided; an unknown rule; no reason.
    assert!(
        out.report
            .reject(&user("alice"), &[&wf], "again", None, t(2))
            .is_err()
    );
    assert!(matches!(
        report.reject(&user("alice"), &[&wf], "x", Some("nope"), t(2)),
        Err(Rejection::Invalid { field: "rule", .. })
    ));
    assert!(
        report
            .reject(&user("alice"), &[&wf], " ", None, t(2))
            .is_err()
    );
    // Accepting moves Received → Valid.
    let accepted = report
        .accept(&user("alice"), &wf, &"LS-9".parse().unwrap(), t(1))
        .unwrap();
    assert_eq!(accepted.report.rm, RmState::Valid);
    assert_eq!(accepted.report.state, ReportState::Accepted);
    assert!(!accepted.close_on_github);
}

#[test]
fn the_authority_table() {
    let wf = workflow_with("");
    let core = r("org/core");
    let plugin = r("org/plugin");
    let mut gh_admin = user("gina");
    gh_admin.github_maintains.insert(plugin.clone());
    use ReportAction::*;
    // (who, repo, action, allowed)
    let table: Vec<(Principal, &RepoId, ReportAction, bool)> = vec![
        (user("alice"), &core, View, true),
        (user("alice"), &core, Reject, true),
        (user("alice"), &core, Accept, true),
        (user("alice"), &core, Merge, true),
        // bob is org/core's named maintainer.
        (user("bob"), &core, View, true),
        (user("bob"), &core, Reject, true),
        (user("bob"), &core, Accept, false),
        (user("bob"), &core, Merge, false),
        // carol maintains org/extra, not org/core.
        (user("carol"), &core, View, false),
        (user("carol"), &core, Reject, false),
        // org/plugin names nobody: GitHub's permission decides.
        (gh_admin.clone(), &plugin, View, true),
        (gh_admin.clone(), &plugin, Reject, true),
        (gh_admin.clone(), &plugin, Accept, false),
        (gh_admin, &core, View, false),
        (user("mallory"), &core, View, false),
        (user("mallory"), &plugin, Reject, false),
        (Principal::automation(), &core, Reject, false),
    ];
    for (who, repo, action, allowed) in table {
        let got = authorize_report(&who, repo, &[&wf], action);
        assert_eq!(
            got.is_ok(),
            allowed,
            "{:?} {repo} {action:?}: {got:?}",
            who.actor
        );
        if let Err(e) = got {
            assert!(e.is_not_authorized(), "{e}");
        }
    }
    // A repository of no workflow is bad input, not a refusal.
    let err = authorize_report(&user("alice"), &r("x/y"), &[&wf], View).unwrap_err();
    assert!(!err.is_not_authorized());
}
