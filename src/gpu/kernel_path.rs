//! Which matrix-product and convolution kernels a device runs: chosen once, when the device
//! opens, from the adapter's reported subgroup sizes and the user's `SHADERGAN_KERNELS`
//! switches. Every launcher asks [`Gpu::kernel_path`](super::Gpu::kernel_path); nothing else
//! looks at the adapter.

use crate::tensor::matmul_modes::GroupLanes;

/// The kernels a device runs, with the reason they were chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelPath {
    /// The subgroup matmul (matmul_subgroup.wgsl) with this way of exchanging values in a
    /// group of eight lanes, or None for the portable kernels (matmul.wgsl, im2col).
    pub group_lanes: Option<GroupLanes>,
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
    /// The shuffle lane exchange whatever the subgroup width (the path of wide and
    /// varying-width GPUs, runnable on lavapipe): `shuffle`.
    pub shuffle: bool,
}

impl KernelSwitches {
    /// The words accepted in `SHADERGAN_KERNELS`, with what each does.
    pub const WORDS: [(&'static str, &'static str); 4] = [
        ("portable", "only kernels that run on any adapter (no subgroup operations)"),
        ("storage-only", "read every operand from storage buffers, never from texture copies"),
        ("patch-matrix", "run convolutions through explicit patch matrices, never as implicit GEMM"),
        ("shuffle", "exchange lanes by shuffles whatever the subgroup width"),
    ];

    /// Parses a comma-separated list of `WORDS` (empty: the automatic choice).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut switches = KernelSwitches::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "portable" => switches.portable = true,
                "storage-only" => switches.storage_only = true,
                "patch-matrix" => switches.patch_matrix = true,
                "shuffle" => switches.shuffle = true,
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

/// The one place that picks kernels. `subgroups` is (min, max) width when the adapter has
/// subgroup operations.
pub fn choose_kernel_path(subgroups: Option<(u32, u32)>, switches: KernelSwitches) -> KernelPath {
    let portable = |reason| KernelPath { group_lanes: None, implicit_convs: false, reason };
    if switches.portable {
        return portable("SHADERGAN_KERNELS=portable");
    }
    let Some((min, max)) = subgroups else {
        return portable("the adapter has no subgroup operations: workgroup-tiled portable kernels");
    };
    if min < 8 || !min.is_multiple_of(8) || !max.is_multiple_of(8) {
        return portable("subgroups that are not multiples of 8 cannot hold the matmul's groups of eight lanes");
    }
    let (group_lanes, reason) = if switches.shuffle {
        (GroupLanes::Shuffle, "SHADERGAN_KERNELS=shuffle: subgroup matmul, lanes exchanged by shuffles")
    } else if (min, max) == (8, 8) {
        (GroupLanes::Broadcast, "8-wide subgroups are the matmul's groups: constant-lane broadcasts")
    } else if (min, max) == (16, 16) {
        (GroupLanes::Halves, "16-wide subgroups hold two groups: two constant-lane broadcasts and a select")
    } else {
        (GroupLanes::Shuffle, "subgroups wider than 16 or of varying width: lanes exchanged by shuffles")
    };
    KernelPath { group_lanes: Some(group_lanes), implicit_convs: !switches.patch_matrix, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_shape_gets_its_path() {
        let none = KernelSwitches::default();
        assert_eq!(choose_kernel_path(None, none).group_lanes, None);
        assert_eq!(choose_kernel_path(Some((4, 4)), none).group_lanes, None);
        assert_eq!(choose_kernel_path(Some((8, 8)), none).group_lanes, Some(GroupLanes::Broadcast));
        assert_eq!(choose_kernel_path(Some((16, 16)), none).group_lanes, Some(GroupLanes::Halves));
        for wide in [(32, 32), (64, 64), (8, 32), (32, 64)] {
            assert_eq!(choose_kernel_path(Some(wide), none).group_lanes, Some(GroupLanes::Shuffle), "{wide:?}");
        }
        assert!(choose_kernel_path(Some((32, 32)), none).implicit_convs);
        let patch = KernelSwitches { patch_matrix: true, ..none };
        assert!(!choose_kernel_path(Some((8, 8)), patch).implicit_convs);
        let shuffle = KernelSwitches { shuffle: true, ..none };
        assert_eq!(choose_kernel_path(Some((8, 8)), shuffle).group_lanes, Some(GroupLanes::Shuffle));
        let portable = KernelSwitches { portable: true, ..none };
        assert_eq!(choose_kernel_path(Some((8, 8)), portable).group_lanes, None);
    }

    #[test]
    fn switches_parse_and_unknown_words_are_named() {
        let s = KernelSwitches::parse(" portable, patch-matrix ").unwrap();
        assert!(s.portable && s.patch_matrix && !s.shuffle && !s.storage_only);
        assert_eq!(KernelSwitches::parse("").unwrap(), KernelSwitches::default());
        let err = KernelSwitches::parse("portable,fast").unwrap_err();
        assert!(err.contains("'fast'") && err.contains("storage-only"), "{err}");
    }
}
