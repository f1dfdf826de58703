//! The experiment runner: spec → cached ANN training → conversion → simulation → tables.

/// The burn version this workspace pins (`=0.22.1` in the root Cargo.toml), as a literal.
macro_rules! burn_version {
    () => {
        "0.22.1"
    };
}

pub mod bench;
pub mod cache;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod exit_frontier;
pub mod export;
pub mod plan;
pub mod provenance;
pub mod report;
pub mod run;
pub mod spec;
pub mod task;
pub mod train;

/// `runner --version`: the crate version, the commit it was built from (`-dirty` when the
/// build saw uncommitted changes, `unknown` outside git) and the burn version.
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("RUNNER_GIT_HASH"), ", burn ", burn_version!(), ")");
