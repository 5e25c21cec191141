// matmul_subgroup.wgsl's lane exchange on subgroups (appended by the shader registry): a group
// of eight is eight consecutive lanes of one subgroup whose width is a multiple of 8, and a lane
// reads the others by shuffles from the group's first lane. (On lavapipe these measured faster
// than broadcasts from constant lanes, at 8 and at 16 lanes wide: BENCHMARKS.md.) Subgroups are
// taken to be runs of consecutive local_invocation_index, as drivers lay out a one-dimensional
// workgroup; the tests check the results at both lavapipe widths.

// The subgroup lane of this invocation's group's lane 0.
var<private> group_first: u32;
// This invocation's group is the second of its pair (PAIRED_GROUPS).
var<private> second_of_pair: bool;

// Every group of a workgroup reads the same columns of B. With PAIRED_GROUPS, set where
// subgroups are at least 16 wide and a workgroup holds pairs of groups (groups 2i and 2i + 1:
// lanes sid and sid ^ 8 of one subgroup), the two groups of a pair each gather one of a block's
// two panels and take the other from their partner by shuffles, which cost far less than the
// gathers they replace on lavapipe (BENCHMARKS.md).
override PAIRED_GROUPS: bool = false;

@compute @workgroup_size(8u * ROW_GROUPS, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32,
           @builtin(subgroup_invocation_id) sid: u32) {
    group_first = sid & ~7u;
    second_of_pair = (sid & 8u) != 0u;
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

// B's panels at kb .. kb + 3 and kb + 4 .. kb + 7 for this lane's columns (load_b_panel).
fn load_b_panels(pl: Plan, kb: u32) -> array<array<vec4<f32>, 8>, 2> {
    if (!PAIRED_GROUPS) {
        return own_b_panels(pl, kb);
    }
    let mine = load_b_panel(pl, kb + select(0u, 4u, second_of_pair));
    let theirs = array(
        subgroupShuffleXor(mine[0], 8u), subgroupShuffleXor(mine[1], 8u), subgroupShuffleXor(mine[2], 8u),
        subgroupShuffleXor(mine[3], 8u), subgroupShuffleXor(mine[4], 8u), subgroupShuffleXor(mine[5], 8u),
        subgroupShuffleXor(mine[6], 8u), subgroupShuffleXor(mine[7], 8u),
    );
    return array(select_panel(mine, theirs, second_of_pair), select_panel(theirs, mine, second_of_pair));
}

// `when_false` or `when_true`, as `pick` says.
fn select_panel(when_false: array<vec4<f32>, 8>, when_true: array<vec4<f32>, 8>, pick: bool) -> array<vec4<f32>, 8> {
    return array(
        select(when_false[0], when_true[0], pick), select(when_false[1], when_true[1], pick),
        select(when_false[2], when_true[2], pick), select(when_false[3], when_true[3], pick),
        select(when_false[4], when_true[4], pick), select(when_false[5], when_true[5], pick),
        select(when_false[6], when_true[6], pick), select(when_false[7], when_true[7], pick),
    );
}
