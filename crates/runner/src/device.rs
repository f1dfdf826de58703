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

/// Whether `device` is one of the CPU backends. The event-driven engine and the neuron kernels
/// on host slices are for the CPU; on another device (a GPU under wgpu) the dense engine runs
/// burn's layers there and steps plain integrate-and-fire layers as device tensor operations.
pub fn is_cpu(device: &Device) -> bool {
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    if *device == Device::ndarray() {
        return true;
    }
    *device == Device::flex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_device_is_the_cpu_and_unknown_names_are_refused() {
        assert!(is_cpu(&select_device("flex").unwrap()));
        assert!(is_cpu(&select_device("cpu").unwrap()));
        let e = select_device("tpu").unwrap_err().to_string();
        assert!(e.contains("tpu") && e.contains("flex"), "{e}");
    }
}
