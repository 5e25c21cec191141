//! lavapipe runs at the vector width it was started with, whatever ran before: Mesa 22's shader
//! cache does not key shaders by `LP_NATIVE_VECTOR_WIDTH`, so without a cache folder per width
//! (`shadergan::gpu::prepare_driver_environment`) a 512-bit run after a 256-bit one executes
//! 8-wide code on a device that reports 16-wide subgroups, and the other way round.
//!
//! A run that names no width gets 512 bits on a CPU with AVX-512 (`wide_vectors_on_avx512`).
//!
//! Each run is a child process (the driver reads its environment once per process) that sums
//! 1 over a subgroup: the sum is the width the shader was compiled for.

use std::process::Command;

const CHILD: &str = "SHADERGAN_TEST_SUBGROUP_SUM_CHILD";
const TEST_NAME: &str = "each_vector_width_runs_shaders_compiled_for_it";

/// In the child: (lanes a subgroup sum covered, subgroup width the adapter reports), or None
/// when the adapter is not lavapipe or has no subgroups.
fn subgroup_sum() -> Option<(u32, u32)> {
    shadergan::gpu::prepare_driver_environment();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).ok()?;
    let info = adapter.get_info();
    if !info.name.contains("llvmpipe") || !adapter.features().contains(wgpu::Features::SUBGROUP) {
        return None;
    }
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            required_features: wgpu::Features::SUBGROUP,
            ..Default::default()
        }))
        .expect("a device with subgroups");
    let source = "@group(0) @binding(0) var<storage, read_write> out: array<u32>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) i: u32) {
            out[i] = subgroupAdd(1u);
        }";
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let size = 64 * 4;
    let out = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: out.as_entire_binding() }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&out, 0, &readback, 0, size);
    queue.submit([encoder.finish()]);
    readback.slice(..).map_async(wgpu::MapMode::Read, |_| {});
    device.poll(wgpu::PollType::wait_indefinitely()).expect("the device finishes");
    let view = readback.slice(..).get_mapped_range().expect("mapped");
    let sums: Vec<u32> = view.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(sums.iter().all(|&s| s == sums[0]), "uneven subgroup sums: {sums:?}");
    Some((sums[0], info.subgroup_max_size))
}

/// Runs this test in a child process at `width` with `cache_home` as the user's cache folder;
/// returns what its subgroup sum printed.
fn run_child(width: Option<&str>, cache_home: &std::path::Path) -> String {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("XDG_CACHE_HOME", cache_home)
        .env_remove("MESA_SHADER_CACHE_DIR")
        .env_remove("MESA_SHADER_CACHE_DISABLE");
    match width {
        Some(w) => command.env("LP_NATIVE_VECTOR_WIDTH", w),
        None => command.env_remove("LP_NATIVE_VECTOR_WIDTH"),
    };
    let output = command.output().expect("the child runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child at width {width:?} failed:\n{text}");
    let at = text.find("subgroup sum:").unwrap_or_else(|| panic!("no result in:\n{text}"));
    text[at..].lines().next().unwrap_or_default().to_string()
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

#[test]
fn each_vector_width_runs_shaders_compiled_for_it() {
    if std::env::var_os(CHILD).is_some() {
        match subgroup_sum() {
            Some((lanes, reported)) => println!("subgroup sum: {lanes} lanes, device reports {reported}"),
            None => println!("subgroup sum: not lavapipe with subgroups"),
        }
        return;
    }
    let cache_home = tempfile::tempdir().expect("a temporary folder");
    // Each width after the other, so each run finds the other width's shaders in the cache.
    let runs = [Some("256"), Some("512"), Some("256"), None, Some("512")];
    for width in runs {
        let line = run_child(width, cache_home.path());
        eprintln!("LP_NATIVE_VECTOR_WIDTH={}: {line}", width.unwrap_or("(unset)"));
        if line.contains("not lavapipe") {
            return;
        }
        let numbers: Vec<u32> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        assert_eq!(numbers.len(), 2, "{line}");
        assert_eq!(numbers[0], numbers[1], "a subgroup sum covered another width's lanes: {line}");
        // A run that names no width gets 512 bits on a CPU with AVX-512, else llvmpipe's 256.
        let bits = width.map_or(if avx512() { 512 } else { 256 }, |w| w.parse::<u32>().unwrap());
        assert_eq!(numbers[1], bits / 32, "LP_NATIVE_VECTOR_WIDTH={width:?}: {line}");
    }
}
