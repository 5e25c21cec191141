//! Which matrix-product and convolution kernels a device runs: chosen once, when the device
//! opens, from the adapter's reported subgroup sizes and the user's `SHADERGAN_KERNELS`
//! switches. Every launcher asks [`Gpu::kernel_path`](super::Gpu::kernel_path); nothing else
//! looks at the adapter.

/// The kernels a device runs, with the reason they were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPath {
    /// The subgroup matmul (matmul_subgroup.wgsl, register-blocked, in groups of eight lanes);
    /// false: the portable kernels (matmul.wgsl's workgroup tiles, im2col).
    pub subgroup_matmul: bool,
    /// Convolutions as implicit GEMM on the subgroup matmul (no patch matrix).
    pub implicit_convs: bool,
    /// One line saying why.
    pub reason: &'static str,
}

/// The user's switches that shape the choice (`SHADERGAN_KERNELS`, see `KernelSwitches::parse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSwitches {
    /// Only kernels that run on any adapter: `portable`.
    pub portable: bool,
    /// Every operand from storage buffers, never texture copies: `storage-only`.
    pub storage_only: bool,
    /// Convolutions through explicit patch matrices (im2col / col2im): `patch-matrix`.
    pub patch_matrix: bool,
}

impl KernelSwitches {
    /// The words accepted in `SHADERGAN_KERNELS`, with what each does.
    pub const WORDS: [(&'static str, &'static str); 3] = [
        ("portable", "only kernels that run on any adapter (no subgroup operations)"),
        ("storage-only", "read every operand from storage buffers, never from texture copies"),
        ("patch-matrix", "run convolutions through explicit patch matrices, never as implicit GEMM"),
    ];

    /// Parses a comma-separated list of `WORDS` (empty: the automatic choice).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut switches = KernelSwitches::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "portable" => switches.portable = true,
                "storage-only" => switches.storage_only = true,
                "patch-matrix" => switches.patch_matrix = true,
                other => {
                    let known: Vec<String> = Self::WORDS.iter().map(|(w, what)| format!("  {w}: {what}")).collect();
                    return Err(format!(
                        "SHADERGAN_KERNELS: unknown word '{other}'; a comma-separated list of:\n{}",
                        known.join("\n")
                    ));
                }
            }
        }
        Ok(switches)
    }
}

/// The one place that picks kernels. `subgroups` is the (min, max) subgroup width when the
/// adapter has subgroup operations.
pub fn choose_kernel_path(subgroups: Option<(u32, u32)>, switches: KernelSwitches) -> KernelPath {
    let portable = |reason| KernelPath { subgroup_matmul: false, implicit_convs: false, reason };
    if switches.portable {
        return portable("SHADERGAN_KERNELS=portable");
    }
    let Some((min, max)) = subgroups else {
        return portable("the adapter has no subgroup operations: workgroup-tiled portable kernels");
    };
    if min < 8 || !min.is_multiple_of(8) || !max.is_multiple_of(8) {
        return portable("subgroups that are not multiples of 8 lanes cannot hold the matmul's groups of eight");
    }
    if switches.patch_matrix {
        return KernelPath {
            subgroup_matmul: true,
            implicit_convs: false,
            reason:
                "subgroups of 8k lanes: subgroup matmul; SHADERGAN_KERNELS=patch-matrix: convolutions by patch matrices",
        };
    }
    KernelPath {
        subgroup_matmul: true,
        implicit_convs: true,
        reason: "subgroups of 8k lanes: subgroup matmul, convolutions as implicit GEMM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_shape_gets_its_path() {
        let none = KernelSwitches::default();
        assert!(!choose_kernel_path(None, none).subgroup_matmul);
        assert!(!choose_kernel_path(Some((4, 4)), none).subgroup_matmul);
        assert!(!choose_kernel_path(Some((4, 32)), none).subgroup_matmul);
        for width in [(8, 8), (16, 16), (32, 32), (64, 64), (8, 32), (32, 64)] {
            let path = choose_kernel_path(Some(width), none);
            assert!(path.subgroup_matmul && path.implicit_convs, "{width:?}");
        }
        let patch = KernelSwitches { patch_matrix: true, ..none };
        let path = choose_kernel_path(Some((8, 8)), patch);
        assert!(path.subgroup_matmul && !path.implicit_convs);
        let portable = KernelSwitches { portable: true, ..none };
        assert!(!choose_kernel_path(Some((8, 8)), portable).subgroup_matmul);
    }

    #[test]
    fn switches_parse_and_unknown_words_are_named() {
        let s = KernelSwitches::parse(" portable, patch-matrix ").unwrap();
        assert!(s.portable && s.patch_matrix && !s.storage_only);
        assert_eq!(KernelSwitches::parse("").unwrap(), KernelSwitches::default());
        let err = KernelSwitches::parse("portable,fast").unwrap_err();
        assert!(err.contains("'fast'") && err.contains("storage-only"), "{err}");
    }
}
