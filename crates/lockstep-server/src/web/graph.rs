//! The dependency graph and its waves, drawn on the server as SVG: one column per wave (the
//! order the release publishes in), one box per repository coloured by where it stands, and
//! an arrow from each repository to those that publish after it (`publish_after`).

use std::collections::{BTreeMap, BTreeSet};

use lockstep_core::plan::{Plan, WaveState};
use lockstep_core::{Case, RepoId};
use maud::{Markup, html};

const BOX_W: i64 = 190;
const BOX_H: i64 = 26;
const COL_GAP: i64 = 60;
const ROW_GAP: i64 = 10;
const TOP: i64 = 30;
const LEFT: i64 = 10;

/// What a box says about its repository.
fn class_of(state: WaveState, blocked: bool) -> &'static str {
    match state {
        WaveState::Published => "node published",
        WaveState::Publishing => "node publishing",
        WaveState::Waiting if blocked => "node blocked",
        WaveState::Waiting => "node waiting",
    }
}

/// The SVG.
pub(crate) fn draw(case: &Case, plan: &Plan) -> Markup {
    let blocked: BTreeSet<&RepoId> = plan.blockers.iter().map(|b| &b.repo).collect();
    let mut columns: Vec<Vec<(RepoId, &'static str)>> = plan
        .waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|e| (e.repo.clone(), class_of(e.state, blocked.contains(&e.repo))))
                .collect()
        })
        .collect();
    if !plan.skipped.is_empty() {
        columns.push(
            plan.skipped
                .iter()
                .map(|r| (r.clone(), "node skipped"))
                .collect(),
        );
    }
    let mut at: BTreeMap<RepoId, (i64, i64)> = BTreeMap::new();
    for (c, col) in columns.iter().enumerate() {
        for (r, (repo, _)) in col.iter().enumerate() {
            let x = LEFT + i64::try_from(c).unwrap_or(0) * (BOX_W + COL_GAP);
            let y = TOP + i64::try_from(r).unwrap_or(0) * (BOX_H + ROW_GAP);
            at.insert(repo.clone(), (x, y));
        }
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    let width = LEFT * 2 + i64::try_from(columns.len()).unwrap_or(0).max(1) * (BOX_W + COL_GAP);
    let height = TOP + i64::try_from(rows).unwrap_or(0).max(1) * (BOX_H + ROW_GAP) + 10;
    let mut edges = Vec::new();
    for (repo, spec) in &case.workflow.repos {
        let Some(&(x2, y2)) = at.get(repo) else {
            continue;
        };
        for up in &spec.publish_after {
            if let Some(&(x1, y1)) = at.get(up) {
                edges.push((x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2));
            }
        }
    }
    let skipped_col = (!plan.skipped.is_empty()).then_some(columns.len() - 1);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img"
            aria-label="Dependency graph and release waves"
            width=(width) height=(height) viewBox={"0 0 " (width) " " (height)} {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"
                    markerHeight="6" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" {}
                }
            }
            @for c in 0..columns.len() {
                text x=(LEFT + i64::try_from(c).unwrap_or(0) * (BOX_W + COL_GAP)) y="18" class="wave-label" {
                    @if Some(c) == skipped_col { "not affected" } @else { "wave " (c + 1) }
                }
            }
            @for (x1, y1, x2, y2) in &edges {
                path d={"M " (x1) " " (y1) " C " (x1 + COL_GAP / 2) " " (y1) ", " (x2 - COL_GAP / 2) " " (y2) ", " (x2) " " (y2)}
                    class="edge" marker-end="url(#arrow)" {}
            }
            @for col in &columns {
                @for (repo, class) in col {
                    @if let Some(&(x, y)) = at.get(repo) {
                        g class=(class) data-repo=(repo.as_str()) {
                            title { (repo.as_str()) }
                            rect x=(x) y=(y) width=(BOX_W) height=(BOX_H) rx="4" {}
                            text x=(x + 8) y=(y + 17) { (short(repo.as_str())) }
                        }
                    }
                }
            }
        }
    }
}

/// A repository name that fits its box.
fn short(name: &str) -> String {
    const MAX: usize = 26;
    if name.chars().count() <= MAX {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(MAX - 1).collect();
        s.push('…');
        s
    }
}
