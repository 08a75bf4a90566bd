//! Recording what the runtime (or a webhook) read of an advisory's global copy, and closing
//! the case itself once everything has propagated, where the workflow asks for it.

use super::Tx;
use crate::event::EventKind;
use crate::ids::RepoId;
use crate::input::Command;
use crate::model::RemoteState;
use crate::propagation::GlobalRead;
use crate::reject::Rejection;

impl Tx<'_> {
    /// Judges a read of `repo`'s global copy; records it when the judgement changed.
    pub(super) fn global_read(
        &mut self,
        repo: &RepoId,
        read: Option<GlobalRead>,
    ) -> Result<(), Rejection> {
        let Some(p) = self.case.participants.get(repo) else {
            return Err(Rejection::NotInCase { repo: repo.clone() });
        };
        if p.advisory.state != RemoteState::Published {
            return Ok(()); // only published advisories have global copies to follow
        }
        let copy = self.case.judge_global(repo, read.as_ref(), self.now);
        if p.global.as_ref() == Some(&copy) {
            return Ok(());
        }
        self.emit(EventKind::GlobalCopyObserved {
            repo: repo.clone(),
            copy,
        })?;
        if self.case.workflow.propagation.auto_close
            && self.case.closed.is_none()
            && self.case.propagated()
        {
            self.command(Command::Close {
                reason: "every advisory is published and has propagated (auto_close)".into(),
            })?;
        }
        Ok(())
    }
}
