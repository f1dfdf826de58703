//! A registry of named kinds (neuron models, readouts, conversion methods): the built-ins,
//! plus kinds registered at run time by code outside the crates (tests, plug-ins).

use std::sync::{OnceLock, RwLock};

/// A kind a registry can hold: something with a name.
pub trait Named: Clone {
    /// The name specs use (`kind = "..."`).
    fn name(&self) -> &'static str;
}

/// Built-in kinds, then run-time registrations; usable as a `static`.
pub struct Registry<K: 'static> {
    builtins: fn() -> Vec<K>,
    entries: OnceLock<RwLock<Vec<K>>>,
}

impl<K: Named> Registry<K> {
    /// A registry holding `builtins()` (called on first use).
    pub const fn new(builtins: fn() -> Vec<K>) -> Self {
        Self { builtins, entries: OnceLock::new() }
    }

    fn entries(&self) -> &RwLock<Vec<K>> {
        self.entries.get_or_init(|| RwLock::new((self.builtins)()))
    }

    /// Adds `kind`, replacing a kind of the same name.
    pub fn register(&self, kind: K) {
        let mut all = self.entries().write().unwrap_or_else(|e| e.into_inner());
        all.retain(|k| k.name() != kind.name());
        all.push(kind);
    }

    /// Every kind, built-ins first.
    pub fn all(&self) -> Vec<K> {
        self.entries().read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The kind named `name`, or the comma-separated list of valid names.
    pub fn find(&self, name: &str) -> Result<K, String> {
        let all = self.all();
        all.iter()
            .find(|k| k.name() == name)
            .cloned()
            .ok_or_else(|| all.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))
    }
}

/// The `kind` string of a spec table ("" when missing or not a string).
pub fn kind_of(table: &toml::Table) -> &str {
    table.get("kind").and_then(toml::Value::as_str).unwrap_or("")
}

/// `table` without its `kind`.
pub fn params_of(table: &toml::Table) -> toml::Table {
    let mut params = table.clone();
    params.remove("kind");
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct K(&'static str, u32);

    impl Named for K {
        fn name(&self) -> &'static str {
            self.0
        }
    }

    static REG: Registry<K> = Registry::new(|| vec![K("a", 1), K("b", 1)]);

    #[test]
    fn builtins_then_registrations_replacing_by_name() {
        assert_eq!(REG.find("a"), Ok(K("a", 1)));
        REG.register(K("c", 1));
        REG.register(K("a", 2));
        assert_eq!(REG.find("a"), Ok(K("a", 2)));
        assert_eq!(REG.all().iter().map(|k| k.0).collect::<Vec<_>>(), vec!["b", "c", "a"]);
        assert_eq!(REG.find("z"), Err("b, c, a".to_string()));
    }
}
