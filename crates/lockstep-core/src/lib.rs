//! Lockstep's lifecycle core: a pure, deterministic model of one coordinated-disclosure case
//! across several repositories.
//!
//! **Invariant:** this crate does no IO, reads no clock and draws no randomness. Time (`now`)
//! and ids come in as parameters; effects go out as data with deterministic idempotency keys;
//! state is a fold over events ([`Case::replay`]). Collections are `BTreeMap`/`BTreeSet`, so
//! iteration, and therefore every output, is deterministic.
//!
//! The lifecycle follows CERT/CC's Vultron: report management per repository
//! ([`machines::RmState`]), embargo management per case ([`machines::EmState`]), and the
//! public-awareness latches of the case state ([`model::Latches`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod effect;
pub mod engine;
pub mod event;
pub mod ids;
pub mod input;
pub mod machines;
pub mod model;
pub mod plan;
pub mod propagation;
pub mod reject;
pub mod release_tag;
pub mod schedule;
pub mod vuln;
pub mod workflow;

pub use auth::{Authority, Role};
pub use effect::{Action, Effect};
pub use engine::{Blocker, Deadline, Decision, Refusal};
pub use event::{Event, EventKind};
pub use ids::{CaseId, CveId, CweId, GhsaId, Login, RepoId, Timestamp};
pub use input::{Actor, Command, Input, Observation, OpenCase, Principal};
pub use model::Case;
pub use reject::Rejection;
pub use workflow::Workflow;
