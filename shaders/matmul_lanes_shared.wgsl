// matmul_subgroup.wgsl's lane exchange for adapters without subgroup operations (appended by
// the shader registry instead of matmul_lanes_subgroup.wgsl): each lane writes its value to
// workgroup memory and reads its group's eight between two barriers. Every call happens in
// uniform control flow (the product's loops run the same trip counts in every invocation of a
// workgroup), as barriers require.

// One value per invocation (workgroups hold at most 32: 8 * ROW_GROUPS).
var<workgroup> exchange: array<vec4<f32>, 32>;
var<private> invocation: u32;

@compute @workgroup_size(8u * ROW_GROUPS, 1, 1)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    invocation = t;
    product(wid, t, t & 7u);
}

// v in each lane of this invocation's group: lane l's value in [l].
fn group_values(v: vec4<f32>) -> array<vec4<f32>, 8> {
    // The previous exchange's reads finish before this one's writes.
    workgroupBarrier();
    exchange[invocation] = v;
    workgroupBarrier();
    let first = invocation & ~7u;
    return array(
        exchange[first], exchange[first + 1u], exchange[first + 2u], exchange[first + 3u],
        exchange[first + 4u], exchange[first + 5u], exchange[first + 6u], exchange[first + 7u],
    );
}

// v in lane `lane` (0..7) of this invocation's group.
fn group_value(v: vec4<f32>, lane: u32) -> vec4<f32> {
    workgroupBarrier();
    exchange[invocation] = v;
    workgroupBarrier();
    return exchange[(invocation & ~7u) + lane];
}

// B's panels at kb .. kb + 3 and kb + 4 .. kb + 7 for this lane's columns (load_b_panel). Every
// group gathers both: sharing them through workgroup memory costs two more barriers per block,
// which measured slower on lavapipe than the gathers they save.
fn load_b_panels(pl: Plan, kb: u32) -> array<array<vec4<f32>, 8>, 2> {
    return own_b_panels(pl, kb);
}
