//! The edges a browser build relies on, checked natively: reads that do not block (the async
//! twins of `to_vec` and `item`, and reads started now and collected later) give what the
//! blocking ones give; training runs within WebGPU's default limits; the page's download is the
//! run folder's model.safetensors, and a checkpoint past the adapter's limits is refused.

mod common;

use std::path::Path;

use shadergan::train::{run, GanTrainer};
use shadergan::{Gpu, GpuOptions, Tensor};

#[test]
fn async_reads_give_what_blocking_reads_give() {
    let gpu = pollster::block_on(Gpu::new_async(&GpuOptions::from_env())).expect("an adapter");
    let mut rng = common::rng("async reads");
    for n in [1usize, 3, 17, 1000] {
        let x = Tensor::from_vec(&gpu, &[n], &common::f32s(&common::uniform(&mut rng, n, -2.0, 2.0)));
        let y = x.scale(3.0).exp();
        let blocking = y.to_vec();
        assert_eq!(pollster::block_on(y.to_vec_async()), blocking, "n = {n}");
        let total = y.sum(&[0], false);
        assert_eq!(pollster::block_on(total.item_async()), total.item(), "n = {n}");
    }
}

#[test]
fn a_read_started_now_is_collected_later_without_waiting_on_it() {
    let gpu = common::gpu();
    let x = Tensor::from_vec(&gpu, &[5], &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let pending = gpu.read_later(x.scale(2.0).buffer());
    // Work recorded after the read does not hold it back, and checking never blocks.
    let later = x.scale(10.0);
    while !pending.is_ready() {
        std::thread::yield_now();
    }
    let values: Vec<f32> = bytemuck::pod_collect_to_vec(&pending.wait());
    assert_eq!(values, vec![2.0, 4.0, 6.0, 8.0, 10.0]);
    assert_eq!(later.to_vec(), vec![10.0, 20.0, 30.0, 40.0, 50.0]);
}

#[test]
fn dcgan_steps_run_within_webgpus_default_limits_and_match_the_adapters() {
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let steps = |gpu: &Gpu| {
        let mut t = GanTrainer::new(gpu, &config, data.len);
        (0..3).map(|_| t.train_step(&data)).map(|s| [s.d_loss, s.g_loss, s.d_real, s.d_fake]).collect::<Vec<_>>()
    };
    let limited = common::webgpu_limited_gpu();
    let webgpu = wgpu::Limits::defaults();
    assert!(limited.limits().max_storage_buffer_binding_size <= webgpu.max_storage_buffer_binding_size);
    assert!(limited.limits().max_compute_invocations_per_workgroup <= 256);
    let got = steps(&limited);
    let mut t = GanTrainer::new(&limited, &config, data.len);
    t.train_step(&data);
    assert_eq!(pollster::block_on(t.generate_fixed_async()), t.generate_fixed(), "the fixed samples, awaited or not");
    let want = steps(&common::gpu());
    for (step, (g, w)) in got.iter().zip(&want).enumerate() {
        let far = g.iter().zip(w).any(|(a, b)| !a.is_finite() || (a - b).abs() > 1e-4 + 1e-4 * b.abs());
        assert!(!far, "step {step}: under WebGPU limits {g:?}, with the adapter's {w:?}");
    }
}

#[test]
fn threads_reading_from_one_device_each_get_their_own_values() {
    // Any thread's poll of a shared device may run another thread's map callback, a moment after
    // that thread's own poll has returned: every read must still wait for its own callback.
    let gpu = common::gpu();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let gpu = gpu.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let v = (t * 1000 + i) as f32;
                    let x = Tensor::from_vec(&gpu, &[3], &[v, v + 1.0, v + 2.0]);
                    assert_eq!(
                        x.scale(2.0).to_vec(),
                        vec![2.0 * v, 2.0 * v + 2.0, 2.0 * v + 4.0],
                        "thread {t}, read {i}"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a reading thread");
    }
}

#[test]
fn the_pages_model_file_is_the_runs_model_safetensors() {
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let gpu = common::gpu();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    t.train_step(&data);
    let dir = tempfile::tempdir().unwrap();
    shadergan::train::save_checkpoint(&t, dir.path()).unwrap();
    let page = pollster::block_on(shadergan::train::model_file_async(&t)).unwrap();
    let from_page = shadergan::checkpoint::parse(&page, Path::new("page")).unwrap();
    let from_run = shadergan::checkpoint::load(&dir.path().join("model.safetensors")).unwrap();
    assert_eq!(from_page, from_run, "the download and the run folder's file hold the same tensors and metadata");
    let (_, g) = shadergan::train::generator_from_bytes(&gpu, &page, Path::new("page")).unwrap();
    let (_, g_run) = shadergan::train::load_generator(&gpu, &dir.path().join("model.safetensors")).unwrap();
    let z = vec![0.3; config.model.latent_dim * 2];
    let codes = shadergan::train::Codes { z, labels: vec![], continuous: vec![] };
    let (a, b) = (
        shadergan::train::generate(&gpu, &config, &g, &codes),
        shadergan::train::generate(&gpu, &config, &g_run, &codes),
    );
    assert_eq!(a, b, "one file, one generator");
}

#[test]
fn a_checkpoint_past_the_adapters_binding_limit_is_refused_naming_what_and_the_limit() {
    use shadergan::checkpoint::HostTensor;
    use std::collections::HashMap;
    let gpu = common::webgpu_limited_gpu();
    let limit = gpu.limits().max_storage_buffer_binding_size as usize;
    let small = HashMap::from([("generator.0.weight".to_string(), HostTensor { shape: vec![4], data: vec![0.0; 4] })]);
    let path = Path::new("big.safetensors");
    assert!(shadergan::train::check_fits_device(&gpu, &small, 1000, path).is_ok());
    let err = shadergan::train::check_fits_device(&gpu, &small, (limit / 4 + 1) as u128, path).unwrap_err().to_string();
    assert!(err.contains("big.safetensors") && err.contains("largest layer"), "{err}");
    assert!(err.contains(&format!("{} MiB storage binding limit", limit >> 20)), "{err}");
    let huge = limit / 4 + 1;
    let big = HashMap::from([("generator.3.weight".into(), HostTensor { shape: vec![huge], data: vec![0.0; huge] })]);
    let err = shadergan::train::check_fits_device(&gpu, &big, 1000, path).unwrap_err().to_string();
    assert!(err.contains("tensor 'generator.3.weight'") && err.contains("smaller model"), "{err}");
}
