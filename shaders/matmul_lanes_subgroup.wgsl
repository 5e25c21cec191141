// matmul_subgroup.wgsl's lane exchange on subgroups (appended by the shader registry): a group
// of eight is eight consecutive lanes of one subgroup whose width is a multiple of 8, and a lane
// reads the others by shuffles from the group's first lane. (On lavapipe these measured faster
// than broadcasts from constant lanes, at 8 and at 16 lanes wide: BENCHMARKS.md.) Subgroups are
// taken to be runs of consecutive local_invocation_index, as drivers lay out a one-dimensional
// workgroup; the tests check the results at both lavapipe widths.

// The subgroup lane of this invocation's group's lane 0.
var<private> group_first: u32;

@compute @workgroup_size(8u * ROW_GROUPS, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
           @builtin(subgroup_invocation_id) sid: u32) {
    group_first = sid & ~7u;
    product(wid, t, sid & 7u);
}

// v in each lane of this invocation's group: lane l's value in [l].
fn group_values(v: vec4<f32>) -> array<vec4<f32>, 8> {
    return array(
        subgroupShuffle(v, group_first), subgroupShuffle(v, group_first + 1u),
        subgroupShuffle(v, group_first + 2u), subgroupShuffle(v, group_first + 3u),
        subgroupShuffle(v, group_first + 4u), subgroupShuffle(v, group_first + 5u),
        subgroupShuffle(v, group_first + 6u), subgroupShuffle(v, group_first + 7u),
    );
}

// v in lane `lane` (0..7) of this invocation's group.
fn group_value(v: vec4<f32>, lane: u32) -> vec4<f32> {
    return subgroupShuffle(v, group_first + lane);
}
