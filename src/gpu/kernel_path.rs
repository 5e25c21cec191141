//! Which matrix-product and convolution kernels a device runs: chosen once, when the device
//! opens, from the adapter's reported subgroup sizes and the user's `SHADERGAN_KERNELS`
//! switches. Every launcher asks [`Gpu::kernel_path`](super::Gpu::kernel_path); nothing else
//! looks at the adapter.

use super::Shader;

/// The kernels a device runs, with the reason they were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPath {
    /// The register-blocked matmul (matmul_subgroup.wgsl, in groups of eight lanes) with its
    /// lane exchange: `Shader::MatmulSubgroup` (shuffles) or `Shader::MatmulShared` (workgroup
    /// memory); None: the portable kernels (matmul.wgsl, im2col).
    pub blocked_matmul: Option<Shader>,
    /// Convolutions as implicit GEMM on the subgroup matmul (no patch matrix).
    pub implicit_convs: bool,
    /// Pairs of groups of eight lanes in one subgroup share B's loads (matmul_lanes_subgroup.wgsl's
    /// PAIRED_GROUPS): subgroups at least 16 wide.
    pub paired_groups: bool,
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
    /// The workgroup-memory lane exchange even where subgroups exist (the path of adapters
    /// without them, runnable on lavapipe): `no-subgroups`.
    pub no_subgroups: bool,
}

impl KernelSwitches {
    /// The words accepted in `SHADERGAN_KERNELS`, with what each does.
    pub const WORDS: [(&'static str, &'static str); 4] = [
        ("portable", "only the simplest kernels: matmul.wgsl and patch matrices"),
        ("storage-only", "read every operand from storage buffers, never from texture copies"),
        ("patch-matrix", "run convolutions through explicit patch matrices, never as implicit GEMM"),
        ("no-subgroups", "exchange lane values through workgroup memory, as adapters without subgroups do"),
    ];

    /// Parses a comma-separated list of `WORDS` (empty: the automatic choice).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut switches = KernelSwitches::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "portable" => switches.portable = true,
                "storage-only" => switches.storage_only = true,
                "patch-matrix" => switches.patch_matrix = true,
                "no-subgroups" => switches.no_subgroups = true,
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
    if switches.portable {
        return KernelPath {
            blocked_matmul: None,
            implicit_convs: false,
            paired_groups: false,
            reason: "SHADERGAN_KERNELS=portable",
        };
    }
    let groups_of_eight = |(min, max): (u32, u32)| min >= 8 && min.is_multiple_of(8) && max.is_multiple_of(8);
    let (shader, reason) = match subgroups {
        _ if switches.no_subgroups => (
            Shader::MatmulShared,
            "SHADERGAN_KERNELS=no-subgroups: register-blocked matmul, lanes through workgroup memory",
        ),
        Some((min, max)) if groups_of_eight((min, max)) && min >= 16 => (
            Shader::MatmulSubgroup,
            "subgroups of 16k lanes: register-blocked matmul, lanes by shuffles, pairs of groups share B's loads",
        ),
        Some(widths) if groups_of_eight(widths) => {
            (Shader::MatmulSubgroup, "subgroups of 8k lanes: register-blocked matmul, lanes by shuffles")
        }
        Some(_) => (
            Shader::MatmulShared,
            "subgroups not a multiple of 8 lanes: register-blocked matmul, lanes through workgroup memory",
        ),
        None => {
            (Shader::MatmulShared, "no subgroup operations: register-blocked matmul, lanes through workgroup memory")
        }
    };
    // A subgroup that may be 8 wide holds one group: no pair to share with.
    let paired_groups = shader == Shader::MatmulSubgroup && subgroups.is_some_and(|(min, _)| min >= 16);
    KernelPath { blocked_matmul: Some(shader), implicit_convs: !switches.patch_matrix, paired_groups, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_shape_gets_its_path() {
        let none = KernelSwitches::default();
        let blocked = |subgroups, switches| choose_kernel_path(subgroups, switches).blocked_matmul;
        for width in [(8, 8), (16, 16), (32, 32), (64, 64), (8, 32), (32, 64)] {
            assert_eq!(blocked(Some(width), none), Some(Shader::MatmulSubgroup), "{width:?}");
            let path = choose_kernel_path(Some(width), none);
            assert!(path.implicit_convs, "{width:?}");
            assert_eq!(path.paired_groups, width.0 >= 16, "{width:?}");
        }
        let shared = KernelSwitches { no_subgroups: true, ..none };
        assert!(!choose_kernel_path(Some((16, 16)), shared).paired_groups);
        for shape in [None, Some((4, 4)), Some((4, 32))] {
            assert_eq!(blocked(shape, none), Some(Shader::MatmulShared), "{shape:?}");
            assert!(choose_kernel_path(shape, none).implicit_convs, "{shape:?}");
        }
        let no_subgroups = KernelSwitches { no_subgroups: true, ..none };
        assert_eq!(blocked(Some((8, 8)), no_subgroups), Some(Shader::MatmulShared));
        let patch = KernelSwitches { patch_matrix: true, ..none };
        let path = choose_kernel_path(Some((8, 8)), patch);
        assert!(path.blocked_matmul.is_some() && !path.implicit_convs);
        let portable = KernelSwitches { portable: true, ..none };
        assert_eq!(choose_kernel_path(Some((8, 8)), portable), choose_kernel_path(None, portable));
        assert_eq!(blocked(Some((8, 8)), portable), None);
    }

    #[test]
    fn switches_parse_and_unknown_words_are_named() {
        let s = KernelSwitches::parse(" portable, patch-matrix ").unwrap();
        assert!(s.portable && s.patch_matrix && !s.storage_only && !s.no_subgroups);
        assert_eq!(KernelSwitches::parse("").unwrap(), KernelSwitches::default());
        let err = KernelSwitches::parse("portable,fast").unwrap_err();
        assert!(err.contains("'fast'") && err.contains("storage-only"), "{err}");
    }
}
