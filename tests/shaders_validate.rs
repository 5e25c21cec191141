//! No GPU needed: every shader parses and validates with naga, and every entry point binds a
//! uniform block plus storage buffers in the inputs-then-outputs convention.

use shadergan::gpu::shaders::{reflect, validate, Shader};

#[test]
fn every_shader_parses_and_validates() {
    for shader in Shader::ALL {
        if let Err(e) = validate(shader) {
            panic!("{} does not validate:\n{e}", shader.file_name());
        }
    }
}

#[test]
fn every_entry_point_follows_the_binding_convention() {
    for shader in Shader::ALL {
        let (module, _) = validate(shader).unwrap();
        for ep in &module.entry_points {
            let b = reflect(shader, &ep.name).unwrap();
            assert_eq!(b.uniform, Some(0), "{}::{} has no parameter block at binding 0", shader.file_name(), ep.name);
            assert!(!b.outputs.is_empty(), "{}::{} writes nothing", shader.file_name(), ep.name);
            let mut all: Vec<u32> = b.inputs.iter().chain(&b.outputs).copied().collect();
            all.sort_unstable();
            let expected: Vec<u32> = (1..=all.len() as u32).collect();
            assert_eq!(all, expected, "{}::{} bindings are not contiguous from 1", shader.file_name(), ep.name);
        }
    }
}

#[test]
fn shader_files_on_disk_are_all_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> =
        Shader::ALL.iter().flat_map(|s| s.file_names()).map(|name| name.to_string()).collect();
    registered.sort();
    registered.dedup();
    assert_eq!(on_disk, registered);
}
