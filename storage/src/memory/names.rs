//! The names a shard of [`InMemoryStorage`](super::InMemoryStorage) shares
//! among its jobs: machine, state and worker names, each stored once.

use std::sync::Arc;

use foldhash::HashSet;

/// A shard's interned names. They come from machine definitions and from
/// the workers of the runtimes that use the store, so the set stays small;
/// it is never pruned. Hashed with foldhash: a name is looked up at every
/// state change.
#[derive(Default)]
pub(super) struct Names(HashSet<Arc<str>>);

impl Names {
    /// The shared copy of `name`.
    pub(super) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.get(name) {
            return Arc::clone(known);
        }
        let name: Arc<str> = Arc::from(name);
        self.0.insert(Arc::clone(&name));
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_stored_once() {
        let mut names = Names::default();
        let a = names.intern("Start");
        let b = names.intern(&String::from("Start"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &names.intern("Done")));
    }
}
