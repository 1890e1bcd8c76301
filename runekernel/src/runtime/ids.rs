//! Job ids: UUIDv7 normally, a seeded sequence in deterministic mode.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::storage::JobId;

pub(crate) enum IdSource {
    Random,
    Seeded(Box<Mutex<StdRng>>),
}

impl IdSource {
    pub(crate) fn seeded(seed: u64) -> Self {
        IdSource::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    pub(crate) fn next(&self) -> JobId {
        match self {
            IdSource::Random => JobId::new(),
            IdSource::Seeded(rng) => {
                let mut rng = rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                // A version-4 UUID drawn from the seeded generator.
                let bits: u128 = rng.random();
                let bits = (bits & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
                JobId::from_u128(bits)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_ids_repeat_per_seed() {
        let a: Vec<JobId> = (0..3)
            .map({
                let s = IdSource::seeded(7);
                move |_| s.next()
            })
            .collect();
        let b: Vec<JobId> = (0..3)
            .map({
                let s = IdSource::seeded(7);
                move |_| s.next()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        assert_eq!(a[0].as_uuid().get_version_num(), 4);
    }
}
