//! Vultron's report-management (RM) and embargo-management (EM) machines, as tables.
//!
//! The tables are the single source of truth: the engine moves only along their edges,
//! `docs/lifecycle.md` is checked against them by a test, and the property tests check every
//! transition in the event log against them.

use serde::{Deserialize, Serialize};

/// Report-management state of one participant (Vultron RM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmState {
    /// Start: the participant does not know about the report yet.
    Start,
    /// The report arrived and is not yet validated.
    Received,
    /// Found lacking or out of scope for this participant.
    Invalid,
    /// Validated, awaiting prioritisation.
    Valid,
    /// Actively worked.
    Accepted,
    /// Valid but not worked now (reversible).
    Deferred,
    /// No further work; terminal.
    Closed,
}

/// An RM input symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmSymbol {
    /// r
    Receive,
    /// v
    Validate,
    /// i
    Invalidate,
    /// a
    Accept,
    /// d
    Defer,
    /// c
    Close,
}

/// Vultron's eleven RM edges, exactly.
pub const RM_EDGES: [(RmState, RmSymbol, RmState); 11] = {
    use RmState::*;
    use RmSymbol::*;
    [
        (Start, Receive, Received),
        (Received, Validate, Valid),
        (Received, Invalidate, Invalid),
        (Invalid, Validate, Valid),
        (Valid, Accept, Accepted),
        (Valid, Defer, Deferred),
        (Accepted, Defer, Deferred),
        (Deferred, Accept, Accepted),
        (Accepted, Close, Closed),
        (Deferred, Close, Closed),
        (Invalid, Close, Closed),
    ]
};

impl RmState {
    /// Every state, in Vultron's order.
    pub const ALL: [RmState; 7] = [
        Self::Start,
        Self::Received,
        Self::Invalid,
        Self::Valid,
        Self::Accepted,
        Self::Deferred,
        Self::Closed,
    ];

    /// The state `symbol` leads to, if that edge exists.
    pub fn step(self, symbol: RmSymbol) -> Option<RmState> {
        RM_EDGES
            .iter()
            .find(|(from, s, _)| *from == self && *s == symbol)
            .map(|(_, _, to)| *to)
    }

    /// The shortest sequence of symbols that leads from `self` to `target` along the edges,
    /// or `None` if `target` is unreachable. Empty when `self == target`.
    pub fn path_to(self, target: RmState) -> Option<Vec<RmSymbol>> {
        // Breadth-first search over a seven-node graph; the tables are tiny.
        let mut frontier = vec![(self, Vec::new())];
        let mut seen = vec![self];
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for (state, path) in frontier {
                if state == target {
                    return Some(path);
                }
                for (from, symbol, to) in RM_EDGES {
                    if from == state && !seen.contains(&to) {
                        seen.push(to);
                        let mut p = path.clone();
                        p.push(symbol);
                        next.push((to, p));
                    }
                }
            }
            frontier = next;
        }
        None
    }

    /// Vultron's one-letter code.
    pub fn code(self) -> char {
        match self {
            Self::Start => 'S',
            Self::Received => 'R',
            Self::Invalid => 'I',
            Self::Valid => 'V',
            Self::Accepted => 'A',
            Self::Deferred => 'D',
            Self::Closed => 'C',
        }
    }
}

/// Embargo-management state of the case (Vultron EM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmState {
    /// No embargo agreed.
    None,
    /// A proposal is outstanding; it binds nobody.
    Proposed,
    /// An embargo is in force, with an end time.
    Active,
    /// In force, with a revision outstanding.
    Revise,
    /// The embargo has ended.
    Exited,
}

/// An EM input symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmSymbol {
    /// p
    Propose,
    /// r
    Reject,
    /// a
    Accept,
    /// t
    Terminate,
}

/// Vultron's ten EM edges, exactly.
pub const EM_EDGES: [(EmState, EmSymbol, EmState); 10] = {
    use EmState::*;
    use EmSymbol::*;
    [
        (None, Propose, Proposed),
        (Proposed, Propose, Proposed),
        (Proposed, Reject, None),
        (Proposed, Accept, Active),
        (Active, Propose, Revise),
        (Revise, Propose, Revise),
        (Revise, Accept, Active),
        (Revise, Reject, Active),
        (Active, Terminate, Exited),
        (Revise, Terminate, Exited),
    ]
};

impl EmState {
    /// Every state, in Vultron's order.
    pub const ALL: [EmState; 5] = [
        Self::None,
        Self::Proposed,
        Self::Active,
        Self::Revise,
        Self::Exited,
    ];

    /// The state `symbol` leads to, if that edge exists.
    pub fn step(self, symbol: EmSymbol) -> Option<EmState> {
        EM_EDGES
            .iter()
            .find(|(from, s, _)| *from == self && *s == symbol)
            .map(|(_, _, to)| *to)
    }

    /// Whether an embargo is in force (Active or Revise).
    pub fn in_force(self) -> bool {
        matches!(self, Self::Active | Self::Revise)
    }

    /// Vultron's one-letter code.
    pub fn code(self) -> char {
        match self {
            Self::None => 'N',
            Self::Proposed => 'P',
            Self::Active => 'A',
            Self::Revise => 'R',
            Self::Exited => 'X',
        }
    }
}

/// Renders `docs/lifecycle.md` from the tables above; a test keeps the file in step.
pub fn lifecycle_markdown() -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Lifecycle\n\n\
         <!-- Generated from crates/lockstep-core/src/machines.rs by `LOCKSTEP_BLESS=1 cargo test -p lockstep-core lifecycle_doc`; do not edit by hand. -->\n\n\
         Lockstep follows CERT/CC's Vultron protocol: report management (RM) per repository, embargo management (EM) per case, and the case-wide public-awareness latches of the case state (P, X, A).\n\
         The engine moves only along the edges below, and records each edge as one event (`rm_moved`, `em_moved`), so the event log itself shows the Vultron history.\n"
    );
    let _ = writeln!(
        s,
        "## Report management, per repository\n\n| Code | State |\n| --- | --- |"
    );
    for st in RmState::ALL {
        let _ = writeln!(s, "| {} | {:?} |", st.code(), st);
    }
    let _ = writeln!(
        s,
        "\nThe eleven edges (closing straight from Valid is forbidden; Closed is terminal):\n\n| From | Symbol | To |\n| --- | --- | --- |"
    );
    for (from, sym, to) in RM_EDGES {
        let _ = writeln!(
            s,
            "| {from:?} ({}) | {sym:?} | {to:?} ({}) |",
            from.code(),
            to.code()
        );
    }
    let _ = writeln!(
        s,
        "\nHow Lockstep's actions move a repository (each arrow is one or more of the edges above, taken one by one):\n\n\
         | Action | RM target |\n| --- | --- |\n\
         | Case opened, or repository added | Received |\n\
         | Assessed investigating | Valid (from Received or Invalid) |\n\
         | Assessed affected, or a fix marked | Accepted |\n\
         | Assessed not affected | Invalid (from Received), Deferred (from Valid or Accepted) |\n\
         | Repository removed, case closed | Closed |\n\n\
         A repository that is removed and added again starts a new generation at Start; its effect keys change with it.\n"
    );
    let _ = writeln!(
        s,
        "## Embargo management, per case\n\n| Code | State | In force |\n| --- | --- | --- |"
    );
    for st in EmState::ALL {
        let _ = writeln!(
            s,
            "| {} | {:?} | {} |",
            st.code(),
            st,
            if st.in_force() { "yes" } else { "no" }
        );
    }
    let _ = writeln!(
        s,
        "\nThe ten edges:\n\n| From | Symbol | To |\n| --- | --- | --- |"
    );
    for (from, sym, to) in EM_EDGES {
        let _ = writeln!(
            s,
            "| {from:?} ({}) | {sym:?} | {to:?} ({}) |",
            from.code(),
            to.code()
        );
    }
    let _ = writeln!(
        s,
        "\nThe engine is the single writer of the embargo:\n\n\
         - Opening a case proposes the workflow's default (or `--embargo-until`) and accepts it at once (None → Proposed → Active).\n\
         - A coordinator's change is a revision proposed and accepted at once (Active → Revise → Active); the old terms hold until it is accepted. No end time may lie more than the workflow's `max_days` after opening.\n\
         - The embargo terminates (→ Exited) when every affected repository's fix is released (the gate opens), at its deadline under `publish-ready`, on a disclosure order, when an advisory of the case is published by someone else (a leak), when public awareness or a public exploit is recorded, when attacks are observed (unless the workflow sets `end_on_attacks = false`), or when the case closes.\n\
         - Under `hold-all` the deadline does not end the embargo: it stays in force, marked overdue (an `embargo_overdue` event, an alert in `lockstep plan` and `case show`), and every advisory holds. The coordinator may still revise its end (Active → Revise → Active) within `max_days`, which clears the mark; only the gate, a disclosure order, a leak, a threat or closing the case ends it.\n\
         - An active embargo always has an end time, and never coexists with public awareness.\n\n\
         ## Release\n\n\
         Termination does not oblige anyone to publish; the release decides what publishes:\n\n\
         | Trigger | Release mode | What publishes |\n| --- | --- | --- |\n\
         | Every in-scope repository assessed, every affected one with its fix released | gate | every affected repository, in topological waves of `publish_after` |\n\
         | Deadline under `publish-ready` | deadline-publish-ready | affected repositories with a released fix whose affected upstreams have one too |\n\
         | Deadline under `hold-all` | none | nothing: the embargo stays in force, overdue, publication holds until the gate opens (or a disclosure), and the case shows an alert |\n\
         | Leak, disclosure order, public awareness or exploit, attacks (by default) | forced | every affected repository with a released fix |\n\n\
         A wave publishes when every repository of the earlier waves is confirmed published. Not-affected repositories are skipped and their drafts closed. The first publication latches public awareness (P); from then on any repository whose fix is released publishes, but still after its `publish_after` upstreams: that order is dropped only when the vulnerability is public beyond Lockstep's own release (a leak, a disclosure order, a reported threat).\n"
    );
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rm_has_exactly_vultrons_edges() {
        use RmState::*;
        let mut n = 0;
        for from in RmState::ALL {
            for sym in [
                RmSymbol::Receive,
                RmSymbol::Validate,
                RmSymbol::Invalidate,
                RmSymbol::Accept,
                RmSymbol::Defer,
                RmSymbol::Close,
            ] {
                n += usize::from(from.step(sym).is_some());
            }
        }
        assert_eq!(n, 11);
        // The same edges as lifecycle-anchors §2.2, written out independently of the table.
        let expected = [
            (Start, RmSymbol::Receive, Received),
            (Received, RmSymbol::Validate, Valid),
            (Received, RmSymbol::Invalidate, Invalid),
            (Invalid, RmSymbol::Validate, Valid),
            (Invalid, RmSymbol::Close, Closed),
            (Valid, RmSymbol::Accept, Accepted),
            (Valid, RmSymbol::Defer, Deferred),
            (Accepted, RmSymbol::Defer, Deferred),
            (Accepted, RmSymbol::Close, Closed),
            (Deferred, RmSymbol::Accept, Accepted),
            (Deferred, RmSymbol::Close, Closed),
        ];
        for (from, sym, to) in expected {
            assert_eq!(from.step(sym), Some(to), "{from:?} -{sym:?}->");
        }
        // Closing straight from Valid is forbidden; Closed is terminal.
        assert_eq!(Valid.step(RmSymbol::Close), None);
        assert_eq!(Valid.path_to(Closed).unwrap().len(), 2);
        assert!(Closed.path_to(Accepted).is_none());
        assert_eq!(
            Received.path_to(Accepted).unwrap(),
            [RmSymbol::Validate, RmSymbol::Accept]
        );
    }

    #[test]
    fn em_has_exactly_vultrons_edges_and_exit_is_final() {
        let syms = [
            EmSymbol::Propose,
            EmSymbol::Reject,
            EmSymbol::Accept,
            EmSymbol::Terminate,
        ];
        let n: usize = EmState::ALL
            .iter()
            .map(|s| syms.iter().filter(|y| s.step(**y).is_some()).count())
            .sum();
        assert_eq!(n, 10);
        use EmState::{Active, Exited, Proposed, Revise};
        let expected = [
            (EmState::None, EmSymbol::Propose, Proposed),
            (Proposed, EmSymbol::Propose, Proposed),
            (Proposed, EmSymbol::Reject, EmState::None),
            (Proposed, EmSymbol::Accept, Active),
            (Active, EmSymbol::Propose, Revise),
            (Active, EmSymbol::Terminate, Exited),
            (Revise, EmSymbol::Propose, Revise),
            (Revise, EmSymbol::Accept, Active),
            (Revise, EmSymbol::Reject, Active),
            (Revise, EmSymbol::Terminate, Exited),
        ];
        for (from, sym, to) in expected {
            assert_eq!(from.step(sym), Some(to), "{from:?} -{sym:?}->");
        }
        assert!(syms.iter().all(|y| Exited.step(*y).is_none()));
        assert!(EmState::None.step(EmSymbol::Accept).is_none());
    }
}
