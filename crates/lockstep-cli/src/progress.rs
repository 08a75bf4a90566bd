//! The progress display of a release: one bar per case on stderr, while `run --once` or
//! `serve` publishes. Only on a terminal; elsewhere the logs say the same.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lockstep_core::CaseId;
use lockstep_runtime::{ProgressObserver, ReleaseProgress};

/// An observer that draws the release's progress, or `None` when stderr is not a terminal.
pub(crate) fn observer() -> Option<ProgressObserver> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let multi = MultiProgress::new();
    let bars: Mutex<BTreeMap<CaseId, ProgressBar>> = Mutex::new(BTreeMap::new());
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} advisories public")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    Some(Arc::new(move |p: &ReleaseProgress| {
        let Ok(mut bars) = bars.lock() else {
            return;
        };
        let bar = bars.entry(p.case.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(p.total as u64));
            bar.set_style(style.clone());
            bar.set_prefix(format!("release {}", p.case));
            bar
        });
        bar.set_length(p.total as u64);
        bar.set_position(p.published as u64);
        if p.published >= p.total {
            bar.finish();
        }
    }))
}
