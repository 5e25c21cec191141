//! How much one load costs on the current adapter, by where its address comes from and what it
//! reads: the measurements that decide how the kernels feed their operands on lavapipe.
//!
//!     cargo run --release --example load_probe
//!
//! Every invocation sums `ITERS` vec4 values from a 16 MiB table, at addresses that differ per
//! lane (as a matmul's B columns), that are the same for the whole workgroup (as a broadcast
//! operand), or through `textureLoad` of an Rgba32Float texture holding the same table, sampled
//! or bound as a read-only storage texture; one f32 of each lane-varying vec4, to price a load
//! by its width; a vec4 store per step instead of a load (into the output, a power-of-two
//! number of vec4s, or into a write-only storage texture); a 64 KiB uniform buffer and workgroup memory at lane-varying addresses;
//! and the loop with no access at all, the cost the others share. The address arithmetic is
//! identical in every mode; only the access differs.

use std::time::Instant;

const SHADER: &str = r#"
override MODE: u32 = 0u;

struct Params { mask: u32, iters: u32, width_log2: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> table: array<vec4<f32>>;
@group(0) @binding(2) var texels: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> small: array<vec4<f32>, 4096>;
@group(0) @binding(5) var stex: texture_storage_2d<rgba32float, read>;
@group(0) @binding(6) var wtex: texture_storage_2d<rgba32float, write>;
var<workgroup> shared_tab: array<vec4<f32>, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var acc = vec4<f32>(0.0);
    let base = select(gid.x * 13u, wid.x * 13u, MODE == 1u);
    for (var i = 0u; i < p.iters; i = i + 1u) {
        let idx = (base + i * 64u) & p.mask;
        if (MODE == 9u) {
            acc = acc + vec4<f32>(1.0);
            let q = idx & ((1u << (2u * p.width_log2)) - 1u);
            textureStore(wtex, vec2<u32>(q & ((1u << p.width_log2) - 1u), q >> p.width_log2), acc);
        } else if (MODE == 8u) {
            let xy = vec2<u32>(idx & ((1u << p.width_log2) - 1u), idx >> p.width_log2);
            acc = acc + textureLoad(stex, xy);
        } else if (MODE == 7u) {
            acc = acc + vec4<f32>(f32(idx));
        } else if (MODE == 5u) {
            acc = acc + small[idx & 4095u];
        } else if (MODE == 6u) {
            acc = acc + shared_tab[idx & 1023u];
        } else if (MODE == 2u) {
            let xy = vec2<u32>(idx & ((1u << p.width_log2) - 1u), idx >> p.width_log2);
            acc = acc + textureLoad(texels, xy, 0);
        } else if (MODE == 4u) {
            acc = acc + vec4<f32>(1.0);
            out[idx & (arrayLength(&out) - 1u)] = acc;
        } else if (MODE == 3u) {
            acc.x = acc.x + table[idx].x;
        } else {
            acc = acc + table[idx];
        }
    }
    // Never true: keeps both operands bound in every mode.
    if (p.iters == 0xffffffffu) {
        acc = acc + table[0] + textureLoad(texels, vec2<u32>(0u), 0) + small[0] + textureLoad(stex, vec2<u32>(0u));
    }
    out[gid.x] = acc;
}
"#;

const TABLE_LOG2: u32 = 20; // 2^20 vec4 = 16 MiB
const WIDTH_LOG2: u32 = 10; // 1024 x 1024 texels
const ITERS: u32 = 256;
const GROUPS: u32 = 2048;

fn main() {
    let adapters = shadergan::gpu::list_adapters();
    let Some(adapter) =
        adapters.iter().find(|a| a.get_info().device_type == wgpu::DeviceType::Cpu).or(adapters.first())
    else {
        eprintln!("no adapter found: install a Vulkan driver (bash scripts/setup.sh)");
        std::process::exit(1);
    };
    println!("adapter: {}", shadergan::gpu::describe(&adapter.get_info()));
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
        .unwrap_or_else(|e| panic!("device: {e}"));

    let n = 1usize << TABLE_LOG2;
    let values: Vec<f32> = (0..4 * n).map(|i| (i % 97) as f32 * 0.01).collect();
    let table = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("table"),
        size: (values.len() * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&table, 0, bytemuck::cast_slice(&values));
    let size =
        wgpu::Extent3d { width: 1 << WIDTH_LOG2, height: 1 << (TABLE_LOG2 - WIDTH_LOG2), depth_or_array_layers: 1 };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("texels"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture: &texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        bytemuck::cast_slice(&values),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(16 << WIDTH_LOG2), rows_per_image: None },
        size,
    );
    let params: [u32; 4] = [(n - 1) as u32, ITERS, WIDTH_LOG2, 0];
    let uniform = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("params"),
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&uniform, 0, bytemuck::cast_slice(&params));
    let invocations = (GROUPS * 64) as u64;
    let small = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("small"),
        size: 65536,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&small, 0, bytemuck::cast_slice(&values[..16384]));
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out"),
        size: invocations * 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });

    let entry =
        |binding, ty| wgpu::BindGroupLayoutEntry { binding, visibility: wgpu::ShaderStages::COMPUTE, ty, count: None };
    let storage = |read_only| wgpu::BindingType::Buffer {
        ty: wgpu::BufferBindingType::Storage { read_only },
        has_dynamic_offset: false,
        min_binding_size: None,
    };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[
            entry(
                0,
                wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            ),
            entry(1, storage(true)),
            entry(
                2,
                wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
            ),
            entry(3, storage(false)),
            entry(
                5,
                wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::ReadOnly,
                    format: wgpu::TextureFormat::Rgba32Float,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
            ),
            entry(
                6,
                wgpu::BindingType::StorageTexture {
                    access: wgpu::StorageTextureAccess::WriteOnly,
                    format: wgpu::TextureFormat::Rgba32Float,
                    view_dimension: wgpu::TextureViewDimension::D2,
                },
            ),
            entry(
                4,
                wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
            ),
        ],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    // A second texture of the same size for the store mode (a texture is bound once per pass).
    let out_texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("stored texels"),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::STORAGE_BINDING,
        view_formats: &[],
    });
    let out_view = out_texture.create_view(&wgpu::TextureViewDescriptor::default());
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: table.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&view) },
            wgpu::BindGroupEntry { binding: 3, resource: out.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 4, resource: small.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 5, resource: wgpu::BindingResource::TextureView(&view) },
            wgpu::BindGroupEntry { binding: 6, resource: wgpu::BindingResource::TextureView(&out_view) },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });

    let loads = invocations as f64 * ITERS as f64;
    println!("{} invocations x {ITERS} accesses each, median of 5 dispatches:", invocations);
    for (mode, what) in [
        (0u32, "storage, lane-varying address"),
        (1, "storage, workgroup-uniform address"),
        (2, "texture (textureLoad), lane-varying"),
        (3, "storage, lane-varying, one f32 per load"),
        (4, "storage store of a vec4, lane-varying"),
        (5, "uniform buffer, lane-varying"),
        (6, "workgroup memory, lane-varying"),
        (7, "no load (loop and address only)"),
        (8, "storage texture (read-only), lane-varying"),
        (9, "storage texture store of a vec4, lane-varying"),
    ] {
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[("MODE", mode as f64)],
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let mut times = Vec::new();
        for _ in 0..6 {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            {
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(GROUPS, 1, 1);
            }
            let t = Instant::now();
            queue.submit([encoder.finish()]);
            let _ = device.poll(wgpu::PollType::wait_indefinitely());
            times.push(t.elapsed().as_secs_f64());
        }
        times.remove(0); // the first dispatch compiles the shader
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        println!("  {what:<40} {:>8.1} ms  {:>6.2} ns per access", median * 1e3, median * 1e9 / loads);
    }
}
