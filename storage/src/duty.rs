//! [`Duties`]: who holds each named duty (see
//! [`Storage::try_duty`](crate::Storage::try_duty)), for the backends that
//! keep them in Rust.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::{add_ms, Millis};

/// A duty's holder and when its hold runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hold {
    pub(crate) owner: String,
    pub(crate) until: Millis,
}

impl Hold {
    /// Whether `owner` may take the duty at `now` from this hold.
    pub(crate) fn yields_to(&self, owner: &str, now: Millis) -> bool {
        self.owner == owner || self.until <= now
    }
}

/// Every duty's hold, by name.
#[derive(Debug, Default)]
pub(crate) struct Duties(HashMap<String, Hold>);

impl Duties {
    /// Takes or renews `duty` for `owner` until `now + ttl_ms`, unless
    /// another owner's hold runs past `now`; returns whether `owner` holds
    /// it.
    pub(crate) fn try_take(&mut self, duty: &str, owner: &str, now: Millis, ttl_ms: u64) -> bool {
        if self.0.get(duty).is_some_and(|hold| !hold.yields_to(owner, now)) {
            return false;
        }
        let hold = Hold {
            owner: owner.to_owned(),
            until: add_ms(now, ttl_ms),
        };
        self.0.insert(duty.to_owned(), hold);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duty_has_one_holder_until_its_hold_runs_out() {
        let mut duties = Duties::default();
        assert!(duties.try_take("prune", "a", 0, 100));
        assert!(!duties.try_take("prune", "b", 50, 100), "a holds it");
        assert!(duties.try_take("prune", "a", 60, 100), "a renews it to 160");
        assert!(!duties.try_take("prune", "b", 159, 100));
        assert!(duties.try_take("prune", "b", 160, 100), "a's hold ran out");
        assert!(duties.try_take("other", "a", 160, 100), "duties are apart");
    }
}
