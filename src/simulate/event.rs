//! One System Log event before rendering: a compact, copyable record. The
//! generator makes these, queues them by time, and the renderer turns each
//! into one JSON line only when it is due, so nothing large is ever buffered.

use std::cmp::Ordering;

use rand::rngs::SmallRng;
use rand::Rng;

use super::world::{Agent, Factor, Net};

/// The Okta event types the simulator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventType {
    /// Primary authentication (password). Okta's `authenticationStep` 0.
    SessionStart,
    /// Result of the second factor. `authenticationStep` 1.
    AuthViaMfa,
    /// Okta sent an Okta Verify push to the user's phone.
    PushSend,
    /// The user tapped "No, it's not me" on a push.
    DenyPush,
    /// The user signed out.
    SessionEnd,
    /// Okta ThreatInsight judged the request a high threat before the user
    /// was identified (`security.threat.detected`, outcome `DENY` when it
    /// blocked the request; no username: Okta's ThreatInsight System Log
    /// help page says these events "do not include a username").
    ThreatDetected,
}

/// `outcome.reason` values used for failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    InvalidCredentials,
    VerificationError,
    LockedOut,
    UserRejectedPush,
    /// The directory agent behind delegated authentication is unreachable:
    /// every password check fails, whoever types it.
    AgentUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidCredentials => "INVALID_CREDENTIALS",
            Reason::VerificationError => "VERIFICATION_ERROR",
            Reason::LockedOut => "LOCKED_OUT",
            Reason::UserRejectedPush => "USER_REJECTED_OKTA_VERIFY_PUSH",
            Reason::AgentUnavailable => "Unable to connect to the delegated authentication agent",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Success,
    Failure(Reason),
    /// `DENY`: ThreatInsight terminated the request.
    Deny,
}

/// Who Okta says acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Actor {
    /// An existing user (index into the world's users).
    User(u32),
    /// A real user who mistyped their own username: Okta cannot resolve it,
    /// so it logs the attempted string with id `unknown`.
    Typo { user: u32, variant: u8 },
    /// A username that never existed, e.g. from a breached combo list. The
    /// u64 deterministically spells the address.
    Unknown(u64),
}

/// Everything an event shares with the others of one sign-in flow: who,
/// from where, with what, and the session/transaction ids (seeds for the
/// rendered ids; `session` 0 means "no session yet", as after a failed
/// password).
#[derive(Clone, Copy, Debug)]
pub(super) struct Flow {
    pub actor: Actor,
    pub net: Net,
    pub agent: &'static Agent,
    pub factor: Factor,
    pub session: u64,
    pub txn: u64,
}

impl Flow {
    /// A new flow with fresh session and transaction ids.
    pub fn new(
        rng: &mut SmallRng,
        actor: Actor,
        net: Net,
        agent: &'static Agent,
        factor: Factor,
    ) -> Flow {
        Flow {
            actor,
            net,
            agent,
            factor,
            session: rng.random_range(1..u64::MAX),
            txn: rng.random(),
        }
    }

    /// One event of this flow, with a fresh event id.
    pub fn ev(&self, rng: &mut SmallRng, t_ms: i64, kind: EventType, outcome: Outcome) -> Ev {
        Ev {
            t_ms,
            kind,
            outcome,
            flow: *self,
            id: rng.random(),
        }
    }
}

/// A queued event; `id` seeds both the Okta uuid and the EventBridge id.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ev {
    /// Milliseconds since the Unix epoch (`published`).
    pub t_ms: i64,
    pub kind: EventType,
    pub outcome: Outcome,
    pub flow: Flow,
    pub id: u128,
}

impl Ev {
    pub fn is_session_start(&self) -> bool {
        self.kind == EventType::SessionStart
    }
}

/// A queued event plus a sequence number, ordered by (time, sequence) so
/// that events with the same millisecond still come out in a fixed order.
pub(super) struct Pending {
    pub seq: u64,
    pub ev: Ev,
}

impl Pending {
    fn key(&self) -> (i64, u64) {
        (self.ev.t_ms, self.seq)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}
