//! The key layout. Every key sorts bytewise in the order the backend scans:
//! integers are big-endian with the sign bit flipped, ids are their 16
//! big-endian bytes (which sort like `JobId`).
//!
//! | column family | key | value |
//! |---|---|---|
//! | `jobs` | id | the `JobRecord`, JSON |
//! | `history` | id, seq | the `HistoryEntry`, JSON |
//! | `scheduled` | run_at, id | machine (pending jobs, by due time) |
//! | `ready` | queue and machine (each length-prefixed), priority, run_at, id | empty (due jobs, in claim order) |
//! | `leases` | expires_at, id | empty (running jobs, by lease expiry) |
//! | `keys` | idempotency key | id |
//! | `meta` | name | a counter, a duty's hold, a paused queue (empty), the `ready` layout |

use crate::JobId;

pub(super) const JOBS: &str = "jobs";
pub(super) const HISTORY: &str = "history";
pub(super) const SCHEDULED: &str = "scheduled";
pub(super) const READY: &str = "ready";
pub(super) const LEASES: &str = "leases";
pub(super) const KEYS: &str = "keys";
pub(super) const META: &str = "meta";
pub(super) const ALL: [&str; 7] = [JOBS, HISTORY, SCHEDULED, READY, LEASES, KEYS, META];

pub(super) const NEXT_TOKEN: &[u8] = b"next_lease_token";

/// The key, in [`META`], of the layout of the `ready` keys: absent in a
/// database whose `ready` keys name no queue.
pub(super) const READY_LAYOUT: &[u8] = b"ready_layout";
/// The `ready` layout this build writes: queue, then machine.
pub(super) const READY_BY_QUEUE: &[u8] = b"queue,machine";

/// The prefix, in [`META`], of the keys of paused queues.
pub(super) const PAUSED: &[u8] = b"paused:";

/// The key, in [`META`], that marks queue `name` paused.
pub(super) fn paused(name: &str) -> Vec<u8> {
    [PAUSED, name.as_bytes()].concat()
}

/// The key, in [`META`], of the hold on duty `name`.
pub(super) fn duty(name: &str) -> Vec<u8> {
    [b"duty:".as_slice(), name.as_bytes()].concat()
}

pub(super) fn id(id: JobId) -> [u8; 16] {
    id.as_u128().to_be_bytes()
}

pub(super) fn read_id(bytes: &[u8]) -> Option<JobId> {
    let bytes: [u8; 16] = bytes.get(bytes.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(JobId::from_u128(u128::from_be_bytes(bytes)))
}

fn i64_key(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn i64_of(bytes: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

fn i32_key(v: i32) -> [u8; 4] {
    ((v as u32) ^ (1 << 31)).to_be_bytes()
}

pub(super) fn history(job: JobId, seq: u64) -> Vec<u8> {
    [&id(job)[..], &seq.to_be_bytes()].concat()
}

/// (time, id) keys of `scheduled` and `leases`.
pub(super) fn timed(at: i64, job: JobId) -> Vec<u8> {
    [&i64_key(at)[..], &id(job)].concat()
}

/// The time and id of a `scheduled` or `leases` key.
pub(super) fn read_timed(key: &[u8]) -> Option<(i64, JobId)> {
    Some((i64_of(key)?, read_id(key)?))
}

/// A name, length-prefixed, so that no name's key is a prefix of
/// another's.
fn name(name: &str) -> Vec<u8> {
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    [&len.to_be_bytes()[..], name.as_bytes()].concat()
}

/// The prefix of the `ready` keys of the jobs of `machine` in `queue`.
pub(super) fn ready_prefix(queue: &str, machine: &str) -> Vec<u8> {
    [name(queue), name(machine)].concat()
}

pub(super) fn ready(queue: &str, machine: &str, priority: i32, run_at: i64, job: JobId) -> Vec<u8> {
    [
        &ready_prefix(queue, machine)[..],
        &i32_key(priority),
        &i64_key(run_at),
        &id(job),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_values() {
        let a = ready("q", "m", -1, 500, JobId::from_u128(9));
        let b = ready("q", "m", 0, -5, JobId::from_u128(1));
        let c = ready("q", "m", 0, 7, JobId::from_u128(1));
        let d = ready("q", "m", 0, 7, JobId::from_u128(2));
        assert!(a < b && b < c && c < d);
        assert!(timed(-3, JobId::from_u128(5)) < timed(2, JobId::from_u128(1)));
        assert_eq!(
            read_timed(&timed(-3, JobId::from_u128(5))),
            Some((-3, JobId::from_u128(5)))
        );
        let id = JobId::from_u128(0);
        assert!(ready("q", "ab", 0, 0, id).starts_with(&ready_prefix("q", "ab")));
        assert!(!ready("q", "abc", 0, 0, id).starts_with(&ready_prefix("q", "ab")));
        assert!(!ready("qa", "b", 0, 0, id).starts_with(&ready_prefix("q", "ab")));
    }
}
