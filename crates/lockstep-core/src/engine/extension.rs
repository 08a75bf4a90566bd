//! Embargo extension requests: a participant asks the coordinators for a later end; a
//! coordinator grants it (by setting the embargo) or declines it with a reason.
//!
//! The request is recorded as an event and kept on the case's embargo until it is answered,
//! so that `case show` and `plan` show it. It changes nothing else: only a coordinator moves
//! the embargo.

use std::collections::BTreeSet;

use super::{Tx, reason_of};
use crate::auth::MaintainerSource;
use crate::event::EventKind;
use crate::ids::{Login, RepoId, Timestamp};
use crate::machines::EmState;
use crate::model::Case;
use crate::reject::Rejection;

/// The first repository in scope that `login` maintains, and why: who may ask for more time.
pub(crate) fn maintained_repo(
    case: &Case,
    login: &Login,
    github_maintains: &BTreeSet<RepoId>,
) -> Option<(RepoId, MaintainerSource)> {
    case.scope().find_map(|(repo, _)| {
        case.maintainer_source(login, repo, github_maintains)
            .map(|via| (repo.clone(), via))
    })
}

impl Tx<'_> {
    /// Records a request for the embargo to end at `until` instead. It must be later than the
    /// current end and within the workflow's limit; a newer request replaces a pending one.
    pub(super) fn request_embargo(
        &mut self,
        until: Timestamp,
        reason: String,
    ) -> Result<(), Rejection> {
        let reason = reason_of("reason", &reason)?;
        let e = &self.case.embargo;
        if e.state == EmState::Exited || self.case.forced() || !e.state.in_force() {
            return Err(Rejection::EmbargoEnded);
        }
        if until <= self.now {
            return Err(Rejection::EmbargoInPast {
                until,
                now: self.now,
            });
        }
        if let Some(current) = e.until
            && until <= current
        {
            return Err(Rejection::Invalid {
                field: "until",
                why: format!("a request must ask for an end after the current one ({current})"),
            });
        }
        if until > e.hard_limit {
            return Err(Rejection::EmbargoTooLong {
                until,
                max_days: self.case.workflow.embargo.max_days,
                limit: e.hard_limit,
            });
        }
        if e.request
            .as_ref()
            .is_some_and(|r| r.until == until && r.reason == reason && r.by == self.by)
        {
            return Ok(());
        }
        self.emit(EventKind::EmbargoExtensionRequested { until, reason })
    }

    /// Declines the pending request.
    pub(super) fn decline_embargo(&mut self, reason: String) -> Result<(), Rejection> {
        let reason = reason_of("reason", &reason)?;
        if self.case.embargo.request.is_none() {
            return Err(Rejection::NoEmbargoRequest);
        }
        self.emit(EventKind::EmbargoExtensionAnswered {
            granted: false,
            reason,
        })
    }

    /// A coordinator set the embargo: that answers a pending request.
    pub(super) fn grant_embargo_request(&mut self, reason: String) -> Result<(), Rejection> {
        if self.case.embargo.request.is_none() {
            return Ok(());
        }
        self.emit(EventKind::EmbargoExtensionAnswered {
            granted: true,
            reason,
        })
    }
}
