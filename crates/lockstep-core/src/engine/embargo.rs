//! The embargo's deadline, per the workflow's `deadline_policy`.
//!
//! Under `publish-ready` the deadline ends the embargo (EM → Exited) and the release publishes
//! what is fixed. Under `hold-all` it does not: the embargo stays in force, marked overdue (an
//! `embargo_overdue` event and an alert in the plan), so that the coordinator can still revise
//! its end (Active → Revise → Active) within `max_days`. Only the gate opening, a disclosure
//! order, a leak, a threat or closing the case ends it.

use super::Tx;
use crate::event::{EventKind, ExitReason};
use crate::reject::Rejection;
use crate::workflow::DeadlinePolicy;

impl Tx<'_> {
    /// Applies the deadline if it passed by `now`.
    pub(super) fn fire_deadline(&mut self) -> Result<(), Rejection> {
        let e = &self.case.embargo;
        let Some(until) = e.until.filter(|u| e.state.in_force() && self.now >= *u) else {
            return Ok(());
        };
        match self.case.workflow.embargo.deadline_policy {
            DeadlinePolicy::PublishReady => self.end_embargo(ExitReason::Deadline),
            DeadlinePolicy::HoldAll if e.overdue.is_none() => {
                self.emit(EventKind::EmbargoOverdue { until })
            }
            DeadlinePolicy::HoldAll => Ok(()),
        }
    }
}
