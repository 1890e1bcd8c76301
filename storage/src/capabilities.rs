//! [`Capabilities`]: what the runtime may exploit of a backend, beyond what
//! every backend must do.

/// What the runtime may exploit of a [`Storage`](crate::Storage) backend.
/// The default, nothing, is correct for any backend; a backend that gains
/// from one says so in [`Storage::capabilities`](crate::Storage::capabilities).
///
/// ```
/// use runekernel_storage::Capabilities;
///
/// let caps = Capabilities::new().batched_commits();
/// assert!(caps.batches_commits && !caps.cheap_claims);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`commit_batch`](crate::Storage::commit_batch) of many commits costs
    /// less per commit than a call per commit (one round trip or
    /// transaction for many): the runtime collects the commits of all its
    /// workers into batches.
    pub batches_commits: bool,
    /// Claiming one job costs little more than its share of a large claim
    /// (no round trip, no transaction, as in memory): a worker that
    /// finishes a job claims its next one itself, on its own thread,
    /// rather than wait for a batch one task claims and hands out.
    pub cheap_claims: bool,
    /// Claims sent while another is being answered run alongside it, each
    /// costing about its jobs' share (a server, a connection per claim):
    /// the runtime sends a claim for whatever room is free as soon as one
    /// may go. Without it, a claim for less than half the jobs a runtime
    /// may hold first waits a moment for more room, so a backend whose
    /// every claim has a large fixed cost sees fewer, larger claims.
    pub concurrent_claims: bool,
}

impl Capabilities {
    /// Nothing beyond the contract.
    #[must_use]
    pub const fn new() -> Self {
        Capabilities {
            batches_commits: false,
            cheap_claims: false,
            concurrent_claims: false,
        }
    }

    /// With [`batches_commits`](Self::batches_commits).
    #[must_use]
    pub const fn batched_commits(self) -> Self {
        Capabilities {
            batches_commits: true,
            ..self
        }
    }

    /// With [`cheap_claims`](Self::cheap_claims).
    #[must_use]
    pub const fn cheap_claims(self) -> Self {
        Capabilities {
            cheap_claims: true,
            ..self
        }
    }

    /// With [`concurrent_claims`](Self::concurrent_claims).
    #[must_use]
    pub const fn concurrent_claims(self) -> Self {
        Capabilities {
            concurrent_claims: true,
            ..self
        }
    }
}
