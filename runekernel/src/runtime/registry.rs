//! The machines a runtime runs, by name.

use std::sync::Arc;

use crate::machine::MachineDef;
use crate::registration::{ErasedMachine, Registration};

/// The registered machines, by name (foldhash: looked up for every job).
#[derive(Clone, Default)]
pub(crate) struct Registry {
    machines: foldhash::HashMap<String, Arc<dyn ErasedMachine>>,
    names: Vec<String>,
}

impl Registry {
    /// Adds a machine; the last registration of a name wins.
    pub(crate) fn add(&mut self, registration: Registration) {
        let name = registration.machine.definition().name().to_owned();
        if self.machines.insert(name.clone(), registration.machine).is_some() {
            tracing::warn!(machine = %name, "a machine was registered twice; the last registration is used");
        } else {
            self.names.push(name);
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn ErasedMachine>> {
        self.machines.get(name)
    }

    /// The registered machine names, in registration order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Every registered definition.
    pub(crate) fn definitions(&self) -> impl Iterator<Item = &MachineDef> {
        self.names
            .iter()
            .filter_map(|n| self.machines.get(n))
            .map(|m| m.definition())
    }
}
