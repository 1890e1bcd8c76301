//! Worker slots: how many steps run at once. A runtime has one pool of
//! slots, its [`workers`](crate::RuntimeBuilder::workers); a queue served
//! with a limit of its own ([`queue`](crate::RuntimeBuilder::queue)) has a
//! second pool, and a step of that queue holds a slot of each. Slots are
//! always taken queue first, then runtime, so no two takers each hold what
//! the other waits for.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots a queue's steps take: the runtime's, and the queue's own.
#[derive(Clone)]
pub(crate) struct Slots {
    runtime: Arc<Semaphore>,
    queue: Option<Arc<Semaphore>>,
}

/// Slots taken from [`Slots`]: as many of the queue's (if it has a limit)
/// as of the runtime's.
pub(crate) struct SlotPermits {
    runtime: OwnedSemaphorePermit,
    queue: Option<OwnedSemaphorePermit>,
}

impl Slots {
    /// The runtime's `runtime` slots, and `queue_limit` more of the
    /// queue's own, if it has a limit.
    pub(crate) fn new(runtime: Arc<Semaphore>, queue_limit: Option<usize>) -> Self {
        Slots {
            runtime,
            queue: queue_limit.map(|n| Arc::new(Semaphore::new(n))),
        }
    }

    /// How many slots are free: the fewer of the two pools'.
    pub(crate) fn available(&self) -> usize {
        let runtime = self.runtime.available_permits();
        self.queue
            .as_ref()
            .map_or(runtime, |queue| queue.available_permits().min(runtime))
    }

    /// `n` slots if they are free now.
    pub(crate) fn try_take(&self, n: usize) -> Option<SlotPermits> {
        let n = u32::try_from(n).ok()?;
        let queue = match &self.queue {
            Some(queue) => Some(Arc::clone(queue).try_acquire_many_owned(n).ok()?),
            None => None,
        };
        let runtime = Arc::clone(&self.runtime).try_acquire_many_owned(n).ok()?;
        Some(SlotPermits { runtime, queue })
    }

    /// `n` slots, once they are free; `None` if the pools are closed or
    /// `n` is more than a pool holds.
    pub(crate) async fn take(&self, n: usize) -> Option<SlotPermits> {
        let n = u32::try_from(n).ok()?;
        let queue = match &self.queue {
            Some(queue) => Some(Arc::clone(queue).acquire_many_owned(n).await.ok()?),
            None => None,
        };
        let runtime = Arc::clone(&self.runtime).acquire_many_owned(n).await.ok()?;
        Some(SlotPermits { runtime, queue })
    }
}

impl SlotPermits {
    /// How many slots these are.
    pub(crate) fn count(&self) -> usize {
        self.runtime.num_permits()
    }

    /// One of these slots, on its own; `None` when none is left.
    pub(crate) fn split_one(&mut self) -> Option<SlotPermits> {
        let runtime = self.runtime.split(1)?;
        let queue = match &mut self.queue {
            Some(queue) => Some(queue.split(1)?),
            None => None,
        };
        Some(SlotPermits { runtime, queue })
    }
}

/// The slot a running job's steps hold: held while a step runs, given back
/// while its commit is written.
pub(crate) struct WorkerSlot {
    slots: Slots,
    permit: Option<SlotPermits>,
}

impl WorkerSlot {
    /// A slot taken from `slots`.
    pub(crate) fn new(slots: Slots, permit: SlotPermits) -> Self {
        WorkerSlot {
            slots,
            permit: Some(permit),
        }
    }

    /// Whether the slot is held (not given back during a commit).
    pub(crate) fn is_held(&self) -> bool {
        self.permit.is_some()
    }

    /// Gives the slot back, if there is one, until
    /// [`reacquire`](Self::reacquire).
    pub(crate) fn release(slot: &mut Option<WorkerSlot>) {
        if let Some(slot) = slot {
            slot.permit = None;
        }
    }

    /// Takes a slot again before the next step; `false` if the runtime's
    /// slots are gone.
    pub(crate) async fn reacquire(slot: &mut Option<WorkerSlot>) -> bool {
        let Some(slot) = slot else { return true };
        if slot.permit.is_none() {
            match slot.slots.take(1).await {
                Some(permit) => slot.permit = Some(permit),
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_with_a_limit_takes_a_slot_of_each_pool() {
        let runtime = Arc::new(Semaphore::new(3));
        let limited = Slots::new(Arc::clone(&runtime), Some(1));
        let open = Slots::new(Arc::clone(&runtime), None);
        assert_eq!(limited.available(), 1);
        let mut taken = limited.try_take(1).expect("one slot is free");
        assert!(limited.try_take(1).is_none(), "the queue's limit is reached");
        assert_eq!(open.available(), 2, "the runtime's pool lends the rest to other queues");
        let one = taken.split_one().expect("one slot");
        assert_eq!((one.count(), taken.count()), (1, 0));
        drop(one);
        assert_eq!((limited.available(), open.available()), (1, 3));
    }

    #[test]
    fn no_queue_slot_is_kept_when_the_runtime_has_none() {
        let runtime = Arc::new(Semaphore::new(0));
        let limited = Slots::new(Arc::clone(&runtime), Some(2));
        assert!(limited.try_take(1).is_none());
        runtime.add_permits(1);
        assert_eq!(limited.available(), 1, "the failed take gave the queue's slot back");
    }
}
