//! Backend selection, in one place.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Backends this build can use.
pub fn available_devices() -> Vec<&'static str> {
    let mut v = vec!["flex"];
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    v
}

/// The device for a `--device` name (`flex` = burn's CPU backend with simd + rayon).
pub fn select_device(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        other => bail!(
            "unknown or not compiled-in device `{other}`; this build has: {} (ndarray and wgpu need \
             `--features ndarray` / `--features wgpu`)",
            available_devices().join(", ")
        ),
    }
}
