//! The due jobs of one queue and machine, in claim order: by priority, then
//! due time, then id.
//!
//! The jobs are grouped by (priority, due time). The jobs of one submission
//! share both, and job ids (UUIDv7) grow with the time they are made, so a
//! job joining its group almost always goes at the back: adding it is a
//! push onto a queue, and claiming the first is a pop from its front, with
//! no search of a tree keyed by all three. An id that arrives out of order
//! close to either end of its group is put in its place; one that would
//! shift many ids turns its group into a tree (seeded ids in deterministic
//! mode are random, so their groups are trees).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::model::Millis;
use crate::JobId;

/// Where a job waits in claim order: (priority, run_at, id).
pub(super) type ReadyKey = (i32, Millis, JobId);

/// How many ids an insertion out of order may move before its group turns
/// into a tree.
const MAX_SHIFT: usize = 64;

/// The due jobs of one queue and machine (see the module documentation).
/// No group is empty.
#[derive(Default)]
pub(super) struct ReadyJobs {
    groups: BTreeMap<(i32, Millis), Group>,
}

/// The ids of the jobs of one (priority, run_at), each once, in order.
enum Group {
    /// In a queue: ids arrive in order, or close to their place.
    Queue(VecDeque<JobId>),
    /// In a tree: an id arrived far from its place.
    Tree(BTreeSet<JobId>),
}

impl Group {
    fn first(&self) -> Option<JobId> {
        match self {
            Group::Queue(ids) => ids.front().copied(),
            Group::Tree(ids) => ids.first().copied(),
        }
    }

    fn pop_first(&mut self) -> Option<JobId> {
        match self {
            Group::Queue(ids) => ids.pop_front(),
            Group::Tree(ids) => ids.pop_first(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Group::Queue(ids) => ids.is_empty(),
            Group::Tree(ids) => ids.is_empty(),
        }
    }

    fn insert(&mut self, id: JobId) {
        let ids = match self {
            Group::Tree(ids) => {
                ids.insert(id);
                return;
            }
            Group::Queue(ids) => ids,
        };
        if ids.back().is_none_or(|&last| last < id) {
            ids.push_back(id);
            return;
        }
        match ids.binary_search(&id) {
            Ok(_) => {}
            // A queue moves the shorter side of an insertion.
            Err(at) if at.min(ids.len() - at) <= MAX_SHIFT => ids.insert(at, id),
            Err(_) => {
                let mut tree: BTreeSet<JobId> = ids.drain(..).collect();
                tree.insert(id);
                *self = Group::Tree(tree);
            }
        }
    }
}

impl ReadyJobs {
    /// Adds a job; one already there is left as it is.
    pub(super) fn insert(&mut self, (priority, run_at, id): ReadyKey) {
        self.groups
            .entry((priority, run_at))
            .or_insert_with(|| Group::Queue(VecDeque::new()))
            .insert(id);
    }

    /// The job claimed next, if any.
    pub(super) fn first(&self) -> Option<ReadyKey> {
        let (&(priority, run_at), group) = self.groups.first_key_value()?;
        group.first().map(|id| (priority, run_at, id))
    }

    /// Takes out the job claimed next.
    pub(super) fn pop_first(&mut self) -> Option<ReadyKey> {
        let mut entry = self.groups.first_entry()?;
        let (priority, run_at) = *entry.key();
        let id = entry.get_mut().pop_first();
        if entry.get().is_empty() {
            entry.remove();
        }
        id.map(|id| (priority, run_at, id))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn drain(ready: &mut ReadyJobs) -> Vec<ReadyKey> {
        std::iter::from_fn(|| {
            let first = ready.first();
            let popped = ready.pop_first();
            assert_eq!(first, popped, "first is what pop_first takes");
            popped
        })
        .collect()
    }

    #[test]
    fn ids_of_one_submission_come_out_in_the_order_they_went_in() {
        let mut ready = ReadyJobs::default();
        let ids: Vec<JobId> = (0..1000).map(|_| JobId::new()).collect();
        for &id in &ids {
            ready.insert((0, 7, id));
        }
        assert!(matches!(ready.groups[&(0, 7)], Group::Queue(_)));
        assert_eq!(drain(&mut ready), ids.iter().map(|&id| (0, 7, id)).collect::<Vec<_>>());
        assert!(ready.groups.is_empty(), "no group is left empty");
    }

    #[test]
    fn an_id_far_from_its_place_turns_its_group_into_a_tree_in_the_same_order() {
        let mut ready = ReadyJobs::default();
        let ids: Vec<JobId> = (0..500).map(|n| JobId::from_u128(n * 2 + 2)).collect();
        for &id in &ids {
            ready.insert((0, 7, id));
        }
        ready.insert((0, 7, JobId::from_u128(301)));
        assert!(matches!(ready.groups[&(0, 7)], Group::Tree(_)));
        ready.insert((0, 7, JobId::from_u128(1)));
        let mut all: Vec<u128> = ids.iter().map(|id| id.as_u128()).chain([301, 1]).collect();
        all.sort_unstable();
        let drained: Vec<u128> = drain(&mut ready).into_iter().map(|(_, _, id)| id.as_u128()).collect();
        assert_eq!(drained, all);
    }

    proptest! {
        /// Whatever the order of insertion, jobs come out as a set ordered
        /// by (priority, run_at, id) would give them.
        #[test]
        fn jobs_come_out_in_claim_order_each_once(
            keys in proptest::collection::vec((0..2i32, 0..2i64, 0..1000u128), 0..2000),
        ) {
            let mut ready = ReadyJobs::default();
            let mut set = BTreeSet::new();
            for &(priority, run_at, id) in &keys {
                let key = (priority, run_at, JobId::from_u128(id));
                ready.insert(key);
                set.insert(key);
                // Claims interleave with insertions.
                if id % 7 == 0 {
                    prop_assert_eq!(ready.pop_first(), set.pop_first());
                }
            }
            prop_assert_eq!(drain(&mut ready), set.into_iter().collect::<Vec<_>>());
        }
    }
}
