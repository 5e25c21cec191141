//! No GPU needed: every shader parses and validates with naga, and every entry point binds a
//! uniform block plus storage buffers in the inputs-then-outputs convention.

use shadergan::gpu::shaders::{reflect, validate, Shader};
use shadergan::gpu::wgsl_enum::WgslEnum;

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

/// Every variant of a shared enum is named in its shader's own text (not only in the generated
/// prelude); `case` lists where the shader switches over the code.
fn assert_every_variant_named<E: WgslEnum>(shader: Shader, pattern: impl Fn(&str) -> String) {
    let text = shader.own_source();
    for v in E::ALL {
        let want = pattern(&v.wgsl_name());
        assert!(text.contains(&want), "{} has no `{want}` for {v:?}", shader.file_name());
    }
}

#[test]
fn every_shared_code_has_its_wgsl_case() {
    use shadergan::tensor::kernels::{BinaryOp, LossKind, ReduceOp, UnaryOp};
    use shadergan::tensor::matmul::{AOperand, BOperand};
    assert_every_variant_named::<UnaryOp>(Shader::Unary, |name| format!("case {name}:"));
    assert_every_variant_named::<BinaryOp>(Shader::Binary, |name| format!("case {name}:"));
    assert_every_variant_named::<LossKind>(Shader::Loss, |name| format!("KIND == {name}"));
    assert_every_variant_named::<ReduceOp>(Shader::Reduce, |name| name.to_string());
    // (The strided modes are the matmul's fallback branches and the overrides' defaults.)
    assert_every_variant_named::<AOperand>(Shader::MatmulSubgroup, |name| name.to_string());
    assert_every_variant_named::<BOperand>(Shader::MatmulSubgroup, |name| name.to_string());
}

#[test]
fn shaders_hold_no_bare_codes_where_names_exist() {
    // The codes of the shared enums are compared by name only: `OP == 3u`, `case 7u:` or
    // `B_MODE == 2u` would be a second copy of a number the Rust enum owns.
    for shader in Shader::ALL {
        let text = shader.own_source();
        for (line_no, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let bare = ["OP == ", "KIND == ", "A_MODE == ", "B_MODE == ", "p.op == "]
                .iter()
                .any(|lhs| code.split(lhs).skip(1).any(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
                || (code.trim_start().starts_with("case ")
                    && code.trim_start()[5..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(!bare, "{} line {}: a bare code: {line}", shader.file_name(), line_no + 1);
        }
    }
}
