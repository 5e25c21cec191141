//! How long the adapter takes to build one kernel variant: the shader registry's source (or a
//! WGSL file) with pipeline constants, through `create_compute_pipeline`
//! (SwiftShader compiles there; lavapipe defers to the first dispatch, which this does not time).
//! For finding which variant a driver's compiler chokes on:
//!
//!     cargo run --release --example pipeline_probe -- shared forward B_MODE=6,A_MODE=1,CONV_PAD=1
//!     cargo run --release --example pipeline_probe -- shared --dump /tmp/shared.wgsl
//!     cargo run --release --example pipeline_probe -- --source /tmp/shared.wgsl forward B_MODE=6
//!
//! The first argument names a registered shader by its file (`matmul_subgroup.wgsl`, or `shared`
//! for the workgroup-memory lane exchange), or `--source FILE` reads the WGSL whole.

use std::time::Instant;

use shadergan::gpu::Shader;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("pipeline_probe: {e}");
        std::process::exit(2);
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: pipeline_probe (SHADER | --source FILE) (--dump FILE | ENTRY [NAME=VALUE,...])";
    let (source, rest) = match args {
        [flag, file, rest @ ..] if flag == "--source" => {
            (std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))?, rest)
        }
        [name, rest @ ..] => (registered(name)?.source().to_string(), rest),
        [] => return Err(usage.into()),
    };
    let (entry, constants) = match rest {
        [flag, file] if flag == "--dump" => {
            std::fs::write(file, &source).map_err(|e| format!("writing {file}: {e}"))?;
            println!("wrote {file}");
            return Ok(());
        }
        [entry] => (entry.as_str(), Vec::new()),
        [entry, list] => (entry.as_str(), parse_constants(list)?),
        _ => return Err(usage.into()),
    };
    let adapters = shadergan::gpu::list_adapters();
    let adapter = adapters.first().ok_or("no adapter found: install a Vulkan driver (bash scripts/setup.sh)")?;
    println!("adapter: {}", shadergan::gpu::describe(&adapter.get_info()));
    let wanted = wgpu::Features::SUBGROUP;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_features: adapter.features() & wanted,
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| e.to_string())?;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let constants: Vec<(&str, f64)> = constants.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let started = Instant::now();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
        cache: None,
    });
    drop(pipeline);
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| e.to_string())?;
    drop(queue);
    println!("created in {:?}", started.elapsed());
    Ok(())
}

fn registered(name: &str) -> Result<Shader, String> {
    let wanted = if name == "shared" { "matmul_subgroup.wgsl+shared" } else { name };
    Shader::ALL.into_iter().find(|s| s.file_name() == wanted).ok_or_else(|| {
        let names: Vec<&str> = Shader::ALL.iter().map(|s| s.file_name()).collect();
        format!("no shader '{name}'; registered: shared, {}", names.join(", "))
    })
}

fn parse_constants(list: &str) -> Result<Vec<(String, f64)>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not NAME=VALUE"))?;
            let value = value.parse::<f64>().map_err(|e| format!("{name}: {e}"))?;
            Ok((name.to_string(), value))
        })
        .collect()
}
