//! The names a shard of [`InMemoryStorage`](super::InMemoryStorage) shares
//! among its jobs: machine, queue, state and worker names, each stored once and
//! referred to by number. A job or history entry holds a 4-byte [`Name`],
//! not a shared pointer: storing or dropping one touches no reference
//! count, which the cores committing steps of a shard's jobs would
//! otherwise pass back and forth at every commit.

use std::num::NonZeroU32;
use std::sync::Arc;

use crate::error::StorageError;

/// A name interned in one shard's [`Names`]: its place in the table, plus
/// one, so that an `Option<Name>` takes 4 bytes too.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Name(NonZeroU32);

impl Name {
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// A shard's interned names. They come from machine definitions and from
/// the workers of the runtimes that use the store, so the set stays small;
/// it is never pruned. Hashed with foldhash: a name is looked up at every
/// state change.
#[derive(Default)]
pub(super) struct Names {
    numbers: foldhash::HashMap<Arc<str>, Name>,
    names: Vec<Arc<str>>,
}

impl Names {
    /// The number of `name`, interned if it is new.
    ///
    /// # Errors
    /// [`StorageError::Backend`] once a shard holds 2^32 distinct names.
    pub(super) fn intern(&mut self, name: &str) -> Result<Name, StorageError> {
        if let Some(&known) = self.numbers.get(name) {
            return Ok(known);
        }
        let number = u32::try_from(self.names.len() + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .map(Name)
            .ok_or_else(|| StorageError::backend("an in-memory store shard ran out of room for distinct names"))?;
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.numbers.insert(name, number);
        Ok(number)
    }

    /// The name numbered `name` (interned here: a shard's jobs only hold
    /// its own names).
    pub(super) fn get(&self, name: Name) -> &str {
        self.names.get(name.index()).map_or("", |name| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_stored_once_and_read_back() {
        let mut names = Names::default();
        let a = names.intern("Start").unwrap();
        assert_eq!(a, names.intern(&String::from("Start")).unwrap());
        let done = names.intern("Done").unwrap();
        assert_ne!(a, done);
        assert_eq!((names.get(a), names.get(done)), ("Start", "Done"));
        assert_eq!(names.names.len(), 2);
    }
}
