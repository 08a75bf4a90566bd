//! The pages, server-rendered with maud (every interpolation is escaped): the case list, the
//! case page, sign-in, and the error pages. Every page works without JavaScript.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockstep_core::auth::{Authority, MaintainerSource, Role};
use lockstep_core::engine::BlockReason;
use lockstep_core::event::{EventKind, ExitReason};
use lockstep_core::input::{Actor, Principal};
use lockstep_core::machines::EmState;
use lockstep_core::model::{Assessment, Fix, RemoteState};
use lockstep_core::plan::{Alert, Plan};
use lockstep_core::{Case, Event, Login, RepoId, Timestamp};
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;

use super::graph;
use super::session::{FLASH, Flash, MaybeSession, Session};
use super::{Web, html as respond};
use crate::Shared;
use crate::api;
use crate::auth::Caller;
use crate::error::ApiError;

/// Most activity entries shown on the case page (newest first).
const ACTIVITY: usize = 200;

/// The snake_case name an enum has on the wire.
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ")
}

fn when(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t.millis())
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// "12 d 3 h left", "40 min left", or "passed".
fn left(now: Timestamp, until: Timestamp) -> String {
    let ms = until.millis() - now.millis();
    if ms <= 0 {
        return "passed".into();
    }
    let minutes = ms / 60_000;
    let (d, h, m) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    if d > 0 {
        format!("{d} d {h} h left")
    } else if h > 0 {
        format!("{h} h {m} min left")
    } else {
        format!("{m} min left")
    }
}

/// The page frame.
fn layout(title: &str, user: Option<(&Session, &Web)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Lockstep" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "Lockstep" }
                    @if let Some((s, web)) = user {
                        span.who { "Signed in as " strong #signed-in-as { (s.login) } }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(web.keys.csrf(&s.sid));
                            button #sign-out type="submit" { "Sign out" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

/// A page that says what went wrong, in one sentence.
pub(crate) fn error_page(status: StatusCode, text: &str) -> Response {
    respond(
        status,
        layout(
            "Error",
            None,
            html! { main { h1 { "Something went wrong" } p.error { (text) } p { a href="/" { "Back to the cases" } } } },
        ),
    )
}

/// The one answer for a case that does not exist and for a case the user may not read.
pub(crate) fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        layout(
            "Not found",
            None,
            html! { main { h1 { "Not found" } p { "There is no such case." } p { a href="/" { "Back to the cases" } } } },
        ),
    )
}

/// The answer for an error while reading a case: 404 when it does not exist, cannot be read
/// by this user, or its id is malformed (all alike); otherwise the error.
pub(crate) fn case_error(e: ApiError) -> Response {
    match e.status {
        StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => not_found(),
        status => {
            tracing::warn!(status = status.as_u16(), error = %e.message, "case page failed");
            error_page(status, &e.message)
        }
    }
}

pub(crate) fn not_configured() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is not configured on this server: set LOCKSTEP_GITHUB_CLIENT_ID, LOCKSTEP_GITHUB_CLIENT_SECRET and LOCKSTEP_PUBLIC_URL.",
    )
}

pub(crate) fn sign_in_error(status: StatusCode, why: &str) -> Response {
    respond(
        status,
        layout(
            "Sign-in failed",
            None,
            html! { main { h1 { "Sign-in failed" } p.error { (why) } p { a href="/login" { "Sign in with GitHub" } } } },
        ),
    )
}

fn sign_in_page(configured: bool) -> Response {
    respond(
        StatusCode::OK,
        layout(
            "Sign in",
            None,
            html! {
                main.signin {
                    h1 { "Lockstep" }
                    p { "Coordinated disclosure across repositories. Sign in to see the cases you take part in." }
                    @if configured {
                        a.button #sign-in href="/login" { "Sign in with GitHub" }
                    } @else {
                        p.error { "Sign-in is not configured on this server." }
                    }
                }
            },
        ),
    )
}

fn caller_of(session: &Session) -> Option<Caller> {
    session.login().map(Caller::Session)
}

/// Counts of the case list.
struct Counts {
    repos: usize,
    assessed: usize,
    affected: usize,
    fixed: usize,
    published: usize,
}

fn counts(case: &Case) -> Counts {
    let mut c = Counts {
        repos: 0,
        assessed: 0,
        affected: 0,
        fixed: 0,
        published: 0,
    };
    for (_, p) in case.scope() {
        c.repos += 1;
        match p.assessment {
            Assessment::Affected { .. } => {
                c.assessed += 1;
                c.affected += 1;
            }
            Assessment::NotAffected { .. } => c.assessed += 1,
            _ => {}
        }
        if p.fix.is_released() {
            c.fixed += 1;
        }
        if p.advisory.state == RemoteState::Published {
            c.published += 1;
        }
    }
    c
}

fn status_of(case: &Case, plan: &Plan) -> &'static str {
    if case.closed.is_some() {
        "closed"
    } else if plan.release.is_some() {
        "releasing"
    } else if case.embargo.exit.is_none() && case.embargo.until.is_some() {
        "embargoed"
    } else {
        "open"
    }
}

/// `GET /`: the cases the user may read, or the sign-in page.
pub(crate) async fn index(
    State(app): State<Shared>,
    MaybeSession(session): MaybeSession,
) -> Response {
    let Some(session) = session else {
        return sign_in_page(app.web.config.is_some());
    };
    let Some(caller) = caller_of(&session) else {
        return sign_in_page(app.web.config.is_some());
    };
    let (cases, _) = match api::visible_page(&app, &caller, None, 1000).await {
        Ok(v) => v,
        Err(e) => return error_page(e.status, &e.message),
    };
    // Reports awaiting triage, for those who coordinate or maintain a repository of a
    // workflow (anyone else has none to see: the section is left out).
    let reports = match crate::reports::visible(&app, &caller, false).await {
        Ok(r) => Some(r),
        Err(e) if e.status == StatusCode::FORBIDDEN => None,
        Err(e) => return error_page(e.status, &e.message),
    };
    let now = match app.store.now().await {
        Ok(n) => n,
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        main {
            h1 { "Cases" }
            @if cases.is_empty() {
                p { "You take part in no case yet." }
            } @else {
                table.cases {
                    thead { tr {
                        th { "Case" } th { "Summary" } th { "Status" }
                        th title="assessed / affected / fixed / published, of the repositories in scope" { "Assessed · affected · fixed · published" }
                        th { "Embargo ends" } th { "Alerts" }
                    } }
                    tbody {
                        @for (summary, case) in &cases {
                            @let c = counts(case);
                            @let plan = case.plan();
                            @let alerts = plan.alerts.len();
                            @let status = status_of(case, &plan);
                            tr data-case=(summary.id.as_str()) {
                                td { a href={"/cases/" (summary.id.as_str())} { (summary.id.as_str()) } }
                                td { (case.vulnerability.summary) }
                                td { span class={"status " (status)} { (status) } }
                                td.counts { (c.assessed) " · " (c.affected) " · " (c.fixed) " · " (c.published) " of " (c.repos) }
                                td {
                                    @match (case.embargo.until, &case.embargo.exit) {
                                        (_, Some((at, _))) => { "ended " (when(*at)) }
                                        (Some(u), None) => { (when(u)) br; small { (left(now, u)) } }
                                        (None, None) => { "none" }
                                    }
                                }
                                td { @if alerts > 0 { span.alert-count { (alerts) } } @else { "—" } }
                            }
                        }
                    }
                }
            }
            @if let Some(reports) = &reports {
                section #reports {
                    h2 { "Reports awaiting triage" }
                    @if reports.is_empty() {
                        p { "No private vulnerability report awaits triage on your repositories." }
                    } @else {
                        table.reports {
                            thead { tr {
                                th { "Repository" } th { "Advisory" } th { "Summary" }
                                th { "Reporter" } th { "Received" }
                            } }
                            tbody {
                                @for r in reports {
                                    tr {
                                        td { (r.repo) } td { code { (r.ghsa_id) } }
                                        td { (r.summary) } td { (r.reporter) }
                                        td { (when(r.received_at)) }
                                    }
                                }
                            }
                        }
                        p.muted { "Triage with " code { "lockstep report show" } ", then "
                            code { "lockstep case open --from-report OWNER/REPO/GHSA-…" } ", "
                            code { "report merge" } " or " code { "report reject" } "." }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        layout("Cases", Some((&session, &app.web)), body),
    )
}

fn assessment(a: &Assessment) -> Markup {
    match a {
        Assessment::Unassessed => html! { span.muted { "not assessed" } },
        Assessment::Investigating { reason } => {
            html! { span.investigating { "investigating" } " " small { (reason) } }
        }
        Assessment::Affected { reason } => {
            html! { span.affected { "affected" } " " small { (reason) } }
        }
        Assessment::NotAffected { reason } => {
            html! { span.not-affected { "not affected" } " " small { (reason) } }
        }
    }
}

fn fix(f: &Fix) -> Markup {
    let (label, packages) = match f {
        Fix::None => return html! { span.muted { "none" } },
        Fix::Prepared { packages } => ("prepared", packages),
        Fix::Released { packages } => ("released", packages),
    };
    html! {
        span class=(label) { (label) }
        @for p in packages {
            br;
            small { (p.package) " " (p.patched_versions)
                @if let Some(r) = &p.vulnerable_range { " (" (r) ")" } }
        }
    }
}

fn blocker_text(reason: &BlockReason) -> String {
    match reason {
        BlockReason::Unassessed { flagged_by } if flagged_by.is_empty() => {
            "not assessed yet".into()
        }
        BlockReason::Unassessed { flagged_by } => format!(
            "not assessed yet; flagged because {} is affected",
            flagged_by
                .iter()
                .map(RepoId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        BlockReason::Investigating => "still investigating".into(),
        BlockReason::FixNotReleased {
            prepared: true,
            lines_waiting,
        } if lines_waiting.is_empty() => "fix prepared, not released".into(),
        BlockReason::FixNotReleased {
            prepared: true,
            lines_waiting,
        } => {
            format!(
                "fix prepared; lines still to release: {}",
                lines_waiting.join(", ")
            )
        }
        BlockReason::FixNotReleased {
            prepared: false, ..
        } => "affected, no fix yet".into(),
        BlockReason::WaitingFor { upstream } => {
            format!("publishes after {upstream}, which is blocked")
        }
    }
}

fn alert_text(a: &Alert) -> String {
    match a {
        Alert::EmbargoOverdue { until, .. } => format!(
            "The embargo's end ({}) passed; hold-all keeps it in force and every advisory private: revise the end or disclose.",
            when(*until)
        ),
        Alert::DeadlinePassedHolding { at } => format!(
            "The deadline passed at {}; every advisory stays private until the blockers clear.",
            when(*at)
        ),
        Alert::PublicWithoutFix { repos } => format!(
            "The vulnerability is public; no released fix yet in {}.",
            repos
                .iter()
                .map(RepoId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Alert::PublishedElsewhere { repo } => {
            format!("{repo}'s advisory was published outside Lockstep: treated as a leak.")
        }
        Alert::GlobalDatabase { repo, copy } => {
            format!(
                "{repo}: the copy in GitHub's global database needs a look ({}).",
                wire_debug(copy)
            )
        }
        Alert::FailureNeedsPerson { repo, key, error } => {
            format!("{repo}: {key} failed and needs a person: {error}")
        }
    }
}

fn wire_debug<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn exit_text(e: &ExitReason) -> String {
    match e {
        ExitReason::AllFixesReady => "every fix was released".into(),
        ExitReason::Deadline => "the deadline passed".into(),
        ExitReason::Disclosed { reason } => format!("disclosed by a coordinator: {reason}"),
        ExitReason::Leak { repo } => format!("{repo}'s advisory was published elsewhere"),
        ExitReason::Threat { threat } => format!("threat recorded: {}", wire(threat)),
        ExitReason::CaseClosed => "the case was closed".into(),
    }
}

fn authority_text(a: &Authority) -> String {
    match &a.role {
        Role::Coordinator => "coordinator".into(),
        Role::Maintainer {
            repo,
            via: MaintainerSource::Workflow,
        } => format!("maintainer of {repo}"),
        Role::Maintainer {
            repo,
            via: MaintainerSource::GithubPermission,
        } => format!("maintainer of {repo} (GitHub permission)"),
        Role::Automation => match a.authenticated_by {
            lockstep_core::input::AuthMethod::WebhookSignature => "GitHub webhook".into(),
            _ => "automation".into(),
        },
    }
}

/// What an event says, in a few words; `None` for the bookkeeping the activity leaves out.
fn describe(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::CaseOpened {
            scope,
            report: None,
            ..
        } => format!("opened the case with {} repositories", scope.len()),
        EventKind::CaseOpened {
            scope,
            report: Some(r),
            ..
        } => format!(
            "opened the case with {} repositories from {}'s report {} on {}",
            scope.len(),
            r.reporter,
            r.ghsa,
            r.repo
        ),
        EventKind::ReportMerged { origin, adopt, .. } => format!(
            "merged {}'s report {} on {}{}",
            origin.reporter,
            origin.ghsa,
            origin.repo,
            if *adopt {
                " as its advisory"
            } else {
                " as a duplicate"
            }
        ),
        EventKind::RepoAdded { repo } => format!("added {repo} to the case"),
        EventKind::RepoRemoved { repo, reason } => format!("removed {repo}: {reason}"),
        EventKind::RmMoved { .. } | EventKind::EffectRequested { .. } => return None,
        EventKind::Assessed {
            repo,
            verdict,
            reason,
        } => format!("assessed {repo}: {} — {reason}", wire(verdict)),
        EventKind::FlaggedForAssessment { repo, because } => {
            format!("flagged {repo} for assessment because {because} is affected")
        }
        EventKind::FixMarked {
            repo,
            stage,
            packages,
        } => format!(
            "marked {repo}'s fix {}: {}",
            wire(stage),
            packages
                .iter()
                .map(|p| format!("{} {}", p.package, p.patched_versions))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        EventKind::FixRevoked { repo, reason } => format!("revoked {repo}'s fix: {reason}"),
        EventKind::PreflightChecked { repo, findings } if findings.is_empty() => {
            format!("preflight found nothing to fix in {repo}")
        }
        EventKind::PreflightChecked { repo, findings } => {
            format!("preflight found {} problem(s) in {repo}", findings.len())
        }
        EventKind::LinesReleased { repo, tag, .. } => format!("{repo} released {tag}"),
        EventKind::EmMoved {
            to,
            until,
            reason,
            exit,
            ..
        } => {
            let mut s = format!("embargo {}", wire(to));
            if let Some(u) = until {
                s.push_str(&format!(", until {}", when(*u)));
            }
            if let Some(e) = exit {
                s.push_str(&format!(": {}", exit_text(e)));
            }
            if let Some(r) = reason {
                s.push_str(&format!(" ({r})"));
            }
            s
        }
        EventKind::EmbargoOverdue { until } => format!(
            "the embargo's end {} passed; it stays in force",
            when(*until)
        ),
        EventKind::ThreatRecorded { threat, reason } => {
            format!("recorded {}: {reason}", wire(threat))
        }
        EventKind::ReleaseStarted { mode } => format!("started the release ({})", wire(mode)),
        EventKind::EffectSucceeded { key, .. } => format!("done on GitHub: {key}"),
        EventKind::EffectFailed {
            key,
            retryable,
            error,
        } => format!(
            "GitHub write {key} failed{}: {error}",
            if *retryable {
                " (will retry)"
            } else {
                " for good"
            }
        ),
        EventKind::EffectSuperseded { key, reason } => format!("dropped {key}: {reason}"),
        EventKind::EffectRetried { key, reason } => format!("put {key} back in line: {reason}"),
        EventKind::CveAssigned { repo, cve } => format!("{repo} got {cve}"),
        EventKind::PrivateForkCreated { repo, fork } => {
            format!("{repo}'s private fork {fork} was created")
        }
        EventKind::PublishedElsewhere { repo, ghsa } => {
            format!("{repo}'s advisory {ghsa} was published outside Lockstep")
        }
        EventKind::CaseClosed { reason } => format!("closed the case: {reason}"),
        EventKind::EmbargoExtensionRequested { until, reason } => {
            format!("asked for more time, until {}: {reason}", when(*until))
        }
        EventKind::EmbargoExtensionAnswered { granted, reason } => format!(
            "{} the request for more time: {reason}",
            if *granted { "granted" } else { "declined" }
        ),
        EventKind::GlobalCopyObserved { repo, .. } => {
            format!("checked {repo}'s copy in GitHub's global database")
        }
        EventKind::AdvisoryAmended { repo, reason, .. } => {
            format!("amended {repo}'s published advisory: {reason}")
        }
    })
}

/// The embargo timeline: opened, extensions and requests, the current end, the cap, now.
fn timeline(case: &Case, events: &[Event], now: Timestamp) -> Markup {
    let opened = case.opened_at;
    let cap = case.embargo.hard_limit;
    let mut marks: Vec<(Timestamp, String, &'static str)> =
        vec![(opened, "opened".into(), "opened")];
    for e in events {
        match &e.kind {
            EventKind::EmMoved { until: Some(u), .. } => {
                marks.push((*u, format!("end set {}", when(e.at)), "end-set"))
            }
            EventKind::EmbargoExtensionRequested { until, .. } => marks.push((
                *until,
                format!("asked by {} on {}", e.by, when(e.at)),
                "request",
            )),
            _ => {}
        }
    }
    let end = case
        .embargo
        .exit
        .as_ref()
        .map(|(at, _)| *at)
        .or(case.embargo.until);
    let last = [cap, now, end.unwrap_or(now)]
        .into_iter()
        .max()
        .unwrap_or(now);
    let span = (last.millis() - opened.millis()).max(1);
    let x = |t: Timestamp| 20 + (t.millis() - opened.millis()).clamp(0, span) * 660 / span;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="700" height="70" viewBox="0 0 700 70" role="img" aria-label="Embargo timeline" {
            line x1="20" y1="35" x2="680" y2="35" class="axis" {}
            @if let Some(u) = end {
                rect x=(x(opened)) y="29" width=((x(u) - x(opened)).max(1)) height="12" class="embargo-span" {}
            }
            @for (t, label, class) in &marks {
                circle cx=(x(*t)) cy="35" r="4" class=(class) { title { (label) ": " (when(*t)) } }
            }
            line x1=(x(cap)) y1="15" x2=(x(cap)) y2="55" class="cap" { title { "max_days cap: " (when(cap)) } }
            text x=(x(cap)) y="12" class="cap-label" text-anchor="end" { "cap" }
            line x1=(x(now)) y1="15" x2=(x(now)) y2="55" class="now" { title { "now: " (when(now)) } }
            text x=(x(now)) y="66" class="now-label" text-anchor="middle" { "now" }
        }
        ul.timeline-list {
            li { "Opened " (when(opened)) }
            @for e in events {
                @match &e.kind {
                    EventKind::EmMoved { until: Some(u), reason, to: EmState::Active, .. } => {
                        li { "End set to " strong { (when(*u)) } " on " (when(e.at)) " by " (e.by)
                            @if let Some(r) = reason { " — " (r) } }
                    }
                    EventKind::EmbargoExtensionRequested { until, reason } => {
                        li.request { (e.by) " asked for " strong { (when(*until)) } " on " (when(e.at)) " — " (reason) }
                    }
                    EventKind::EmbargoExtensionAnswered { granted, reason } => {
                        li { (e.by) (if *granted { " granted" } else { " declined" }) " the request on " (when(e.at)) " — " (reason) }
                    }
                    _ => {}
                }
            }
            @match (&case.embargo.exit, case.embargo.until) {
                (Some((at, why)), _) => { li #embargo-state { "Ended " (when(*at)) ": " (exit_text(why)) } }
                (None, Some(u)) => { li #embargo-state { "In force until " strong { (when(u)) } " (" (left(now, u)) ")" } }
                (None, None) => { li #embargo-state { "No embargo in force" } }
            }
            li { "Cap (" (case.workflow.embargo.max_days) " days after opening): " (when(cap)) }
            li { "Now: " (when(now)) }
        }
    }
}

fn csrf_input(session: &Session, web: &Web) -> Markup {
    html! { input type="hidden" name="csrf" value=(web.keys.csrf(&session.sid)); }
}

/// The forms the user's authority allows.
fn actions(
    case: &Case,
    login: &Login,
    principal: &Principal,
    session: &Session,
    web: &Web,
) -> Markup {
    let coordinator = case.workflow.is_coordinator(login);
    let mine: Vec<&RepoId> = case
        .scope()
        .map(|(r, _)| r)
        .filter(|r| {
            coordinator
                || case
                    .maintainer_source(login, r, &principal.github_maintains)
                    .is_some()
        })
        .collect();
    let id = case.id.as_str();
    let csrf = csrf_input(session, web);
    let until = case
        .embargo
        .until
        .map(|u| u.to_string())
        .unwrap_or_default();
    let in_scope: BTreeSet<&RepoId> = case.scope().map(|(r, _)| r).collect();
    let addable: Vec<&RepoId> = case
        .workflow
        .repos
        .keys()
        .filter(|r| !in_scope.contains(r))
        .collect();
    let failing: Vec<&RepoId> = case
        .scope()
        .filter(|(_, p)| !p.attention.is_empty())
        .map(|(r, _)| r)
        .collect();
    if case.closed.is_some() {
        return html! { section #actions { h2 { "Actions" } p { "The case is closed." } } };
    }
    html! {
        section #actions {
            h2 { "Actions" }
            p.muted { @if coordinator { "You coordinate this case." } @else { "You maintain " (mine.len()) " of its repositories." } }
            @if !mine.is_empty() {
                div.forms {
                    form #form-assess method="post" action={"/cases/" (id) "/assess"} {
                        h3 { "Assess" }
                        (csrf)
                        label { "Repository " select name="repo" { @for r in &mine { option value=(r.as_str()) { (r.as_str()) } } } }
                        label { "Verdict " select name="verdict" {
                            option value="affected" { "affected" }
                            option value="not_affected" { "not affected" }
                            option value="investigating" { "investigating" }
                        } }
                        label { "Reason " input name="reason" required; }
                        button type="submit" { "Assess" }
                    }
                    form #form-fix method="post" action={"/cases/" (id) "/fix-ready"} {
                        h3 { "Mark a fix" }
                        (csrf)
                        label { "Repository " select name="repo" { @for r in &mine { option value=(r.as_str()) { (r.as_str()) } } } }
                        label { "Patched versions " input name="patched_versions" required placeholder="1.2.3"; }
                        label { "Vulnerable range " input name="vulnerable_range" placeholder="< 1.2.3"; }
                        label { "Stage " select name="stage" {
                            option value="released" { "released" }
                            option value="prepared" { "prepared (released by the matching GitHub release)" }
                        } }
                        button type="submit" { "Mark fix" }
                    }
                    form #form-revoke method="post" action={"/cases/" (id) "/fix-revoke"} {
                        h3 { "Withdraw a fix" }
                        (csrf)
                        label { "Repository " select name="repo" { @for r in &mine { option value=(r.as_str()) { (r.as_str()) } } } }
                        label { "Reason " input name="reason" required; }
                        button type="submit" { "Withdraw" }
                    }
                    @if case.embargo.exit.is_none() {
                        form #form-request method="post" action={"/cases/" (id) "/embargo-request"} {
                            h3 { "Ask for more time" }
                            (csrf)
                            label { "Until (RFC 3339) " input name="until" required value=(until); }
                            label { "Reason " input name="reason" required; }
                            button type="submit" { "Ask" }
                        }
                    }
                    @if !failing.is_empty() {
                        form #form-retry method="post" action={"/cases/" (id) "/retry"} {
                            h3 { "Retry failed GitHub writes" }
                            (csrf)
                            label { "Repository " select name="repo" { @for r in &failing { option value=(r.as_str()) { (r.as_str()) } } } }
                            label { "What was done " input name="reason" required; }
                            button type="submit" { "Retry" }
                        }
                    }
                }
            }
            @if coordinator {
                h3 { "Coordinator" }
                div.forms {
                    @if case.embargo.exit.is_none() {
                        form #form-embargo method="post" action={"/cases/" (id) "/embargo"} {
                            h3 { "Change the embargo" }
                            (csrf)
                            label { "Until (RFC 3339) " input name="until" required value=(until); }
                            label { "Reason " input name="reason" required; }
                            button type="submit" { "Set embargo" }
                        }
                        @if case.embargo.request.is_some() {
                            form #form-decline method="post" action={"/cases/" (id) "/embargo-decline"} {
                                h3 { "Decline the request for more time" }
                                (csrf)
                                label { "Reason " input name="reason" required; }
                                button type="submit" { "Decline" }
                            }
                        }
                        form #form-disclose method="post" action={"/cases/" (id) "/disclose-now"} {
                            h3 { "Disclose now" }
                            (csrf)
                            label { "Reason " input name="reason" required; }
                            button.danger type="submit" { "Disclose now" }
                        }
                    }
                    @if !addable.is_empty() {
                        form #form-scope-add method="post" action={"/cases/" (id) "/scope-add"} {
                            h3 { "Add a repository" }
                            (csrf)
                            label { "Repository " select name="repo" { @for r in &addable { option value=(r.as_str()) { (r.as_str()) } } } }
                            button type="submit" { "Add" }
                        }
                    }
                    form #form-scope-remove method="post" action={"/cases/" (id) "/scope-remove"} {
                        h3 { "Remove a repository" }
                        (csrf)
                        label { "Repository " select name="repo" { @for r in &in_scope { option value=(r.as_str()) { (r.as_str()) } } } }
                        label { "Reason " input name="reason" required; }
                        button type="submit" { "Remove" }
                    }
                    form #form-close method="post" action={"/cases/" (id) "/close"} {
                        h3 { "Close the case" }
                        (csrf)
                        label { "Reason " input name="reason" required; }
                        button.danger type="submit" { "Close" }
                    }
                }
            }
        }
    }
}

/// `GET /cases/{id}`.
pub(crate) async fn case(
    State(app): State<Shared>,
    MaybeSession(session): MaybeSession,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = session else {
        // Back here after sign-in (the case id is not embargoed text).
        let mut r = StatusCode::SEE_OTHER.into_response();
        let next =
            serde_urlencoded::to_string([("next", format!("/cases/{id}"))]).unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(&format!("/login?{next}")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    };
    let Some(login) = session.login() else {
        return sign_in_page(true);
    };
    let caller = Caller::Session(login.clone());
    let case = match api::readable(&app, &caller, &id).await {
        Ok(c) => c,
        Err(e) => return case_error(e),
    };
    let flash: Option<Flash> = app.web.keys.get(&headers, FLASH);
    let page = match render_case(&app, &session, &login, &caller, &case, flash.as_ref()).await {
        Ok(p) => p,
        Err(e) => return error_page(e.status, &e.message),
    };
    let mut r = respond(StatusCode::OK, page);
    if flash.is_some() {
        r.headers_mut()
            .append(header::SET_COOKIE, app.web.keys.clear(FLASH));
    }
    r
}

/// The case page's markup.
pub(crate) async fn render_case(
    app: &Shared,
    session: &Session,
    login: &Login,
    caller: &Caller,
    case: &Case,
    flash: Option<&Flash>,
) -> Result<Markup, ApiError> {
    let principal = app.identities.for_case(caller, case, &case.repos()).await?;
    let now = app.store.now().await.map_err(ApiError::store)?;
    let events = app.store.events(&case.id).await.map_err(ApiError::store)?;
    let authorities = app
        .store
        .authorities(&case.id)
        .await
        .map_err(ApiError::store)?;
    let plan = case.plan();
    let web = &app.web.config;
    let github = web
        .as_ref()
        .map_or("https://github.com", |c| c.web_url.as_str());
    let authority_of = |seq: u64| {
        // Entries are in order; the one whose range holds `seq`.
        let i = authorities.partition_point(|(_, to, _)| *to < seq);
        authorities
            .get(i)
            .filter(|(from, to, _)| *from <= seq && seq <= *to)
            .map(|(_, _, a)| authority_text(a))
    };
    let c = counts(case);
    let status = status_of(case, &plan);
    let body = html! {
        main #case data-version=(case.version) data-case=(case.id.as_str()) {
            @if let Some(f) = flash {
                p #flash class=(if f.ok { "flash ok" } else { "flash error" }) role="status" { (f.text) }
            }
            section #head data-live {
                h1 #summary { (case.vulnerability.summary) }
                p.meta {
                    code { (case.id.as_str()) } " · workflow " (case.workflow.name)
                    " · " span #status class={"status " (status)} { (status) }
                    " · " (c.assessed) " of " (c.repos) " assessed, " (c.affected) " affected, "
                    (c.fixed) " fixed, " span #published-count { (c.published) } " published"
                }
            }
            section #alerts data-live {
                @if !plan.alerts.is_empty() || !plan.preflight.is_empty() {
                    h2 { "Needs a person" }
                    ul.alerts {
                        @for a in &plan.alerts { li.alert { (alert_text(a)) } }
                        @for f in &plan.preflight {
                            li class=(if f.blocker { "alert" } else { "warning" }) { (f.repo) ": " (f.text) }
                        }
                    }
                }
            }
            section #blockers data-live {
                h2 { "What holds the release" }
                @if plan.blockers.is_empty() {
                    p #no-blockers { @if plan.release.is_some() { "Nothing: the release has started." } @else { "Nothing holds the release." } }
                } @else {
                    ul { @for b in &plan.blockers { li { strong { (b.repo) } ": " (blocker_text(&b.reason)) } } }
                }
            }
            section #matrix data-live {
                h2 { "Repositories" }
                table.matrix {
                    thead { tr { th { "Repository" } th { "Assessment" } th { "Fix" } th { "Advisory" } th { "CVE" } th { "Collaborators" } } }
                    tbody {
                        @for (repo, p) in case.scope() {
                            tr data-repo=(repo.as_str()) {
                                td { (repo) }
                                td { (assessment(&p.assessment)) }
                                td { (fix(&p.fix)) }
                                td.advisory {
                                    @if let Some(g) = &p.advisory.ghsa {
                                        a href={(github) "/" (repo) "/security/advisories/" (g)} rel="noreferrer" { (g) } br;
                                    }
                                    span class={"advisory-state " (wire(&p.advisory.state))} { (wire(&p.advisory.state)) }
                                    @if p.advisory.published_elsewhere { " (published elsewhere)" }
                                    @for (key, error) in &p.attention { br; small.error { (key) ": " (error) } }
                                    @if let Some(e) = &p.last_error { br; small.warning { (e) } }
                                }
                                td { @if let Some(cve) = &p.advisory.cve { (cve) } @else { "—" } }
                                td {
                                    @match case.workflow.repos.get(repo).and_then(|s| s.maintainers.as_ref()) {
                                        Some(ms) => { (ms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                                        None => { small.muted { "GitHub admins and maintainers" } }
                                    }
                                    @if let Some(f) = &p.advisory.private_fork { br; small { "fork " (f) } }
                                }
                            }
                        }
                    }
                }
            }
            section #graph data-live {
                h2 { "Dependency graph and waves" }
                (graph::draw(case, &plan))
            }
            section #timeline data-live {
                h2 { "Embargo" }
                (timeline(case, &events, now))
            }
            (actions(case, login, &principal, session, &app.web))
            section #activity data-live {
                h2 { "Activity" }
                ol.activity {
                    @for e in events.iter().rev().filter(|e| describe(&e.kind).is_some()).take(ACTIVITY) {
                        li {
                            time { (when(e.at)) } " "
                            strong { (match &e.by { Actor::User(l) => l.to_string(), Actor::Automation => "Lockstep".to_owned() }) }
                            @if let Some(a) = authority_of(e.seq) { " " span.authority { "(" (a) ")" } }
                            " " (describe(&e.kind).unwrap_or_default())
                        }
                    }
                }
            }
        }
    };
    Ok(layout(
        &format!("Case {}", case.id.as_str()),
        Some((session, &app.web)),
        body,
    ))
}
