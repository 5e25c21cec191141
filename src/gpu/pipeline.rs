//! Compute pipelines, made once per (shader, entry point, constants) with the bind-group layout
//! reflected from the shader, and the bind groups that bind a dispatch's buffers and textures.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use super::{shaders, Gpu, GpuBuffer, Kernel, Shader, PARAM_SLOT};

pub(super) struct Pipeline {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) bindings: shaders::EntryBindings,
    /// Set once the Rust parameter block's layout matched the shader's (`uniform::check_layout`).
    pub(super) layout_checked: OnceLock<()>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct PipelineKey {
    pub(super) shader: Shader,
    pub(super) entry: &'static str,
    pub(super) constants: Vec<(&'static str, u64)>,
}

impl Gpu {
    /// How many textures the kernel's entry point binds (after its buffer inputs).
    pub fn pipeline_texture_count(&self, kernel: &Kernel) -> usize {
        self.pipeline(kernel).bindings.textures.len()
    }

    pub(super) fn pipeline(&self, kernel: &Kernel) -> Arc<Pipeline> {
        let key = PipelineKey {
            shader: kernel.shader,
            entry: kernel.entry,
            constants: kernel.constants.iter().map(|&(n, v)| (n, v as u64)).collect(),
        };
        if let Some(p) = self.0.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let bindings = shaders::reflect(kernel.shader, kernel.entry)
            .unwrap_or_else(|e| panic!("shader {} failed validation:\n{e}", kernel.shader.file_name()));
        let device = &self.0.device;
        let storage = |read_only| wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = Vec::new();
        if let Some(b) = bindings.uniform {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: b,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        for (&b, ro) in bindings.inputs.iter().map(|b| (b, true)).chain(bindings.outputs.iter().map(|b| (b, false))) {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: b,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: storage(ro),
                count: None,
            });
        }
        for &b in &bindings.textures {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: b,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::ReadOnly,
                    format: wgpu::TextureFormat::Rgba32Float,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
                count: None,
            });
        }
        let layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: None, entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.shader.file_name()),
            source: wgpu::ShaderSource::Wgsl(kernel.shader.source().into()),
        });
        let constants: Vec<(&str, f64)> = kernel.constants.iter().map(|&(n, v)| (n, v as f64)).collect();
        // Drivers that compile at creation (SwiftShader) spend their time here, lavapipe at the
        // first dispatch: the last line logged names a pipeline whose compilation never ends.
        log::debug!("creating pipeline {}::{} {:?}", kernel.shader.file_name(), kernel.entry, kernel.constants);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: self.0.pipeline_cache.as_ref().map(|c| &c.cache),
        });
        if let Some(cache) = &self.0.pipeline_cache {
            cache.mark_dirty();
        }
        let p = Arc::new(Pipeline { pipeline, layout, bindings, layout_checked: OnceLock::new() });
        self.0.pipelines.lock().unwrap().insert(key, p.clone());
        p
    }

    /// The bind group of one dispatch: the uniform arena (at a dynamic offset), the buffers in
    /// binding order, then the textures.
    pub(super) fn create_bind_group(
        &self,
        pipe: &Pipeline,
        bound: &[(u32, &GpuBuffer)],
        bound_size: impl Fn(&GpuBuffer) -> u64,
        textures: &[wgpu::TextureView],
    ) -> wgpu::BindGroup {
        self.0.bind_groups_created.fetch_add(1, Ordering::Relaxed);
        let mut entries = Vec::with_capacity(1 + bound.len() + textures.len());
        if let Some(b) = pipe.bindings.uniform {
            entries.push(wgpu::BindGroupEntry {
                binding: b,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.0.uniform_arena,
                    offset: 0,
                    size: std::num::NonZeroU64::new(PARAM_SLOT),
                }),
            });
        }
        for &(binding, buf) in bound {
            entries.push(wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: buf.raw(),
                    offset: 0,
                    size: std::num::NonZeroU64::new(bound_size(buf)),
                }),
            });
        }
        for (&binding, view) in pipe.bindings.textures.iter().zip(textures) {
            entries.push(wgpu::BindGroupEntry { binding, resource: wgpu::BindingResource::TextureView(view) });
        }
        self.0.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.layout,
            entries: &entries,
        })
    }
}
