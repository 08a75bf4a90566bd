//! After publication, in `case show` and `plan`: each advisory's copy in GitHub's global
//! database, and the suggestion to close the case once everything has propagated.

use lockstep_core::RepoId;
use lockstep_core::propagation::GlobalCopy;
use lockstep_server::surface::CaseView;

use crate::output::paint;

/// An alert about a global copy, in words.
pub(crate) fn alert(repo: &RepoId, copy: &GlobalCopy) -> String {
    match copy {
        GlobalCopy::Lagging => {
            format!("{repo}: no reviewed copy in GitHub's global advisory database yet")
        }
        GlobalCopy::Differs { differences, .. } => format!(
            "{repo}: the global advisory database's copy differs: {}",
            differences.join("; ")
        ),
        GlobalCopy::Withdrawn { at } => {
            format!("{repo}: the global advisory database's copy was withdrawn at {at}")
        }
        GlobalCopy::Pending | GlobalCopy::NotReviewed | GlobalCopy::Reviewed { .. } => {
            format!("{repo}: global database: {copy:?}")
        }
    }
}

/// Prints one line per published advisory, and the closing suggestion when it applies.
pub(crate) fn print(view: &CaseView) {
    for l in &view.propagation {
        println!("{}: {}", l.repo, l.summary);
    }
    if !view.closed && view.propagated {
        println!(
            "{} every advisory is published and has propagated: `lockstep case close {} --reason ...` ends the case",
            paint("done", "32"),
            view.case_id
        );
    }
}
