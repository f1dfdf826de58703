//! The experiment runner: spec → cached ANN training → conversion → simulation → tables.

pub mod bench;
pub mod cache;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod plan;
pub mod provenance;
pub mod report;
pub mod run;
pub mod spec;
pub mod train;
