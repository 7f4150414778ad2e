//! Request decoding and validation never panic, whatever the bytes: the
//! body decoders (JSON, YAML), then every kind's normalise/default/validate,
//! patches against the decoded object, selectors and paths.
#![no_main]

use apiserver::registry::Registry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    apiserver::fuzzing::exercise(registry(), data);
});

fn registry() -> &'static Registry {
    static REGISTRY: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}
