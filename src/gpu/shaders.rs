//! The one registry of WGSL sources, and the reflection that turns an entry point's globals into
//! a bind group layout, so no op writes layout entries by hand.

/// One WGSL file per op family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// unary.wgsl: elementwise functions of one tensor.
    Unary,
    /// binary.wgsl: elementwise functions of two, with broadcasting.
    Binary,
    /// reduce.wgsl: sums and maxima over axes.
    Reduce,
    /// matmul.wgsl: the portable matrix product and the skinny one.
    Matmul,
    /// conv2d.wgsl: patch matrices and the phase weights of implicit convolutions.
    Conv2d,
    /// movement.wgsl: gathers, transposes, fills, reflection padding.
    Movement,
    /// optim.wgsl: optimizer updates.
    Optim,
    /// batchnorm.wgsl: fused normalisation.
    BatchNorm,
    /// The register-blocked matmul (and implicit-GEMM convolutions) exchanging lane values by
    /// subgroup shuffles.
    MatmulSubgroup,
    /// The same kernel exchanging lane values through workgroup memory, for adapters without
    /// subgroup operations.
    MatmulShared,
    /// loss.wgsl: a loss's terms and gradient in one pass.
    Loss,
}

impl Shader {
    /// Every shader.
    pub const ALL: [Shader; 11] = [
        Shader::Unary,
        Shader::Binary,
        Shader::Reduce,
        Shader::Matmul,
        Shader::Conv2d,
        Shader::Movement,
        Shader::Optim,
        Shader::BatchNorm,
        Shader::MatmulSubgroup,
        Shader::MatmulShared,
        Shader::Loss,
    ];

    /// The shader's main file (a label in profiles and errors).
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Unary => "unary.wgsl",
            Shader::Binary => "binary.wgsl",
            Shader::Reduce => "reduce.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Movement => "movement.wgsl",
            Shader::Optim => "optim.wgsl",
            Shader::BatchNorm => "batchnorm.wgsl",
            Shader::MatmulSubgroup => "matmul_subgroup.wgsl",
            Shader::MatmulShared => "matmul_subgroup.wgsl+shared",
            Shader::Loss => "loss.wgsl",
        }
    }

    /// The shader as compiled: the generated constants (`wgsl_enum::prelude`), then the files.
    pub fn source(self) -> &'static str {
        static SOURCES: std::sync::OnceLock<Vec<(Shader, String)>> = std::sync::OnceLock::new();
        let sources = SOURCES.get_or_init(|| {
            let prelude = super::wgsl_enum::prelude();
            Shader::ALL.iter().map(|&s| (s, format!("{prelude}{}", s.own_source()))).collect()
        });
        &sources.iter().find(|(s, _)| *s == self).expect("every shader is in Shader::ALL").1
    }

    /// The shader's own text: its files joined, without the generated prelude.
    pub fn own_source(self) -> &'static str {
        match self {
            Shader::Unary => include_str!("../../shaders/unary.wgsl"),
            Shader::Binary => include_str!("../../shaders/binary.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Matmul => include_str!("../../shaders/matmul.wgsl"),
            Shader::Conv2d => {
                concat!(include_str!("../../shaders/conv2d.wgsl"), include_str!("../../shaders/index_math.wgsl"))
            }
            Shader::Movement => include_str!("../../shaders/movement.wgsl"),
            Shader::Optim => include_str!("../../shaders/optim.wgsl"),
            Shader::BatchNorm => include_str!("../../shaders/batchnorm.wgsl"),
            // The convolution operands (implicit GEMM) ride on the register-blocked matmul.
            Shader::MatmulSubgroup => concat!(
                include_str!("../../shaders/matmul_subgroup.wgsl"),
                include_str!("../../shaders/matmul_lanes_subgroup.wgsl"),
                include_str!("../../shaders/matmul_conv.wgsl"),
                include_str!("../../shaders/index_math.wgsl")
            ),
            Shader::MatmulShared => concat!(
                include_str!("../../shaders/matmul_subgroup.wgsl"),
                include_str!("../../shaders/matmul_lanes_shared.wgsl"),
                include_str!("../../shaders/matmul_conv.wgsl"),
                include_str!("../../shaders/index_math.wgsl")
            ),
            Shader::Loss => include_str!("../../shaders/loss.wgsl"),
        }
    }

    /// The files `source` joins: the one of `file_name`, then shared parts.
    pub fn file_names(self) -> Vec<&'static str> {
        match self {
            Shader::Conv2d => vec![self.file_name(), "index_math.wgsl"],
            Shader::MatmulSubgroup => {
                vec!["matmul_subgroup.wgsl", "matmul_lanes_subgroup.wgsl", "matmul_conv.wgsl", "index_math.wgsl"]
            }
            Shader::MatmulShared => {
                vec!["matmul_subgroup.wgsl", "matmul_lanes_shared.wgsl", "matmul_conv.wgsl", "index_math.wgsl"]
            }
            _ => vec![self.file_name()],
        }
    }
}

/// Parses and validates one shader with naga (no GPU needed).
pub fn validate(shader: Shader) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let module = naga::front::wgsl::parse_str(shader.source()).map_err(|e| e.emit_to_string(shader.source()))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| e.emit_to_string(shader.source()))?;
    Ok((module, info))
}

/// What an entry point binds: binding 0 is the uniform parameter block; read-only storage
/// bindings are the inputs and read-write ones the outputs, each in binding order; read-only
/// storage textures (rgba32float, read by `textureLoad`) are further inputs, bound after the
/// buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryBindings {
    /// The uniform block's binding.
    pub uniform: Option<u32>,
    /// The uniform block's struct as naga lays it out (checked against the Rust parameters).
    pub uniform_decl: Option<super::uniform::UniformDecl>,
    /// Read-only storage bindings.
    pub inputs: Vec<u32>,
    /// Read-only storage textures.
    pub textures: Vec<u32>,
    /// Read-write storage bindings.
    pub outputs: Vec<u32>,
}

/// What entry point `entry` of `shader` binds (validated with naga).
pub fn reflect(shader: Shader, entry: &str) -> Result<EntryBindings, String> {
    let (module, info) = validate(shader)?;
    let index = module
        .entry_points
        .iter()
        .position(|ep| ep.name == entry)
        .ok_or_else(|| format!("{} has no entry point '{entry}'", shader.file_name()))?;
    let uses = info.get_entry_point(index);
    let mut out =
        EntryBindings { uniform: None, uniform_decl: None, inputs: vec![], textures: vec![], outputs: vec![] };
    for (handle, var) in module.global_variables.iter() {
        if uses[handle].is_empty() {
            continue;
        }
        let Some(binding) = &var.binding else {
            continue;
        };
        if binding.group != 0 {
            return Err(format!("{}::{entry}: only bind group 0 is used", shader.file_name()));
        }
        match var.space {
            naga::AddressSpace::Uniform => {
                out.uniform = Some(binding.binding);
                out.uniform_decl = uniform_decl(&module, var.ty);
            }
            naga::AddressSpace::Storage { access } => {
                if access.contains(naga::StorageAccess::STORE) {
                    out.outputs.push(binding.binding)
                } else {
                    out.inputs.push(binding.binding)
                }
            }
            naga::AddressSpace::Handle => match module.types[var.ty].inner {
                naga::TypeInner::Image {
                    class: naga::ImageClass::Storage { format: naga::StorageFormat::Rgba32Float, access },
                    dim: naga::ImageDimension::D2,
                    arrayed: false,
                } if access == naga::StorageAccess::LOAD => out.textures.push(binding.binding),
                ref other => {
                    return Err(format!(
                        "{}::{entry}: binding {} has an unsupported type {other:?}",
                        shader.file_name(),
                        binding.binding
                    ))
                }
            },
            _ => {}
        }
    }
    out.inputs.sort_unstable();
    out.textures.sort_unstable();
    out.outputs.sort_unstable();
    Ok(out)
}

/// A uniform struct's name, size and member offsets.
fn uniform_decl(module: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<super::uniform::UniformDecl> {
    let declared = &module.types[ty];
    let naga::TypeInner::Struct { members, span } = &declared.inner else {
        return None;
    };
    Some(super::uniform::UniformDecl {
        name: declared.name.clone().unwrap_or_default(),
        size: *span,
        members: members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect(),
    })
}
