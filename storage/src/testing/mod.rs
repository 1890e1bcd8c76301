//! The backend conformance suite: one call runs every check against a
//! backend, and every built-in backend runs it.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use runekernel_storage::{testing, InMemoryStorage};
//!
//! // Each check gets a fresh, empty store from the factory.
//! testing::conformance(|| async { InMemoryStorage::new() }).await;
//! # });
//! ```
//!
//! Each check is also a public function (see [`CHECKS`]) for running one at a
//! time. A failed check panics with its name and what went wrong, as test
//! assertions do.

mod claim;
mod commit;
mod insert;
mod lease;
#[cfg(feature = "postgres")]
pub mod postgres;
mod queues;
mod read;
mod retention;
mod shared;
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Storage;

pub use shared::changes_by_another_process_count;
pub use support::{claim_from, claim_request, finish, held, move_on, new_job, to};

/// One conformance check: takes a fresh, empty store.
pub type Check = fn(Arc<dyn Storage>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! checks {
    ($($module:ident::$name:ident),* $(,)?) => {
        /// Every check, by name.
        pub const CHECKS: &[(&str, Check)] = &[
            $((stringify!($name), |s| Box::pin($module::$name(s))),)*
        ];
    };
}

checks![
    insert::insert_then_get,
    insert::duplicate_id_is_rejected,
    insert::numbers_no_store_can_keep_are_refused,
    insert::idempotency_key_returns_the_first_job,
    insert::batch_insert_is_atomic,
    insert::batch_insert_honours_keys_within_the_batch,
    insert::large_and_unicode_payloads_round_trip,
    insert::a_submission_names_who_asked,
    read::list_filters_and_paginates,
    read::list_newest_first_pages_backward,
    read::counts_group_by_machine_state_and_status,
    read::history_is_gap_free,
    read::prune_deletes_only_old_finished_jobs,
    read::only_a_finished_job_is_deleted,
    retention::prune_batch_takes_one_state_and_at_most_its_limit,
    retention::a_duty_has_one_holder_at_a_time,
    read::events_announce_inserts_and_commits,
    claim::claim_orders_by_priority_run_at_and_id,
    claim::claim_skips_future_and_foreign_jobs,
    claim::a_job_due_by_its_writers_clock_waits_for_the_claimers,
    claim::an_expired_lease_seen_by_a_claimer_behind_is_not_lost,
    claim::an_unreadable_payload_fails_its_job_alone,
    claim::claim_issues_increasing_tokens_and_counts_attempts,
    claim::concurrent_claimers_never_share_a_job,
    claim::claim_job_takes_one_job_whenever_it_is_due,
    commit::commit_is_compare_and_set,
    commit::commit_moves_state_and_appends_history,
    commit::commit_into_updates_the_callers_record,
    commit::commit_can_keep_the_lease,
    commit::lease_less_commit_of_running_job_is_rejected,
    commit::commit_batch_applies_each_on_its_own_terms,
    commit::text_with_nul_characters_is_stored,
    commit::each_outcome_writes_what_it_names,
    commit::a_failed_job_reopens,
    lease::expired_lease_is_reclaimed_and_fenced,
    lease::heartbeat_extends_the_lease,
    lease::heartbeat_batch_extends_each_lease_on_its_own_terms,
    lease::an_extended_lease_runs_out_at_its_last_expiry,
    lease::release_hands_the_job_back,
    lease::cancel_pending_running_and_finished,
    lease::a_cancel_request_keeps_its_reason_until_the_job_finishes,
    queues::a_claim_takes_only_its_queue,
    queues::a_paused_queue_is_not_claimed_until_resumed,
    queues::a_job_of_a_paused_queue_is_claimed_by_id,
    queues::listings_and_counts_name_the_queue,
];

/// Runs every check, each on a fresh store from `make`.
///
/// # Panics
/// When a check fails, naming it.
pub async fn conformance<S, F, Fut>(make: F)
where
    S: Storage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    for (name, check) in CHECKS {
        let storage: Arc<dyn Storage> = Arc::new(make().await);
        let run = tokio::spawn(check(storage));
        if let Err(error) = run.await {
            let reason = error
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                })
                .unwrap_or_else(|| "cancelled".to_owned());
            panic!("storage conformance check `{name}` failed: {reason}");
        }
    }
}
