//! `shadergan classify`: train the engine's own image classifier, and judge samples with it.

use anyhow::{bail, Result};

use shadergan::eval;
use shadergan::train::{self, noise, run};

use super::{check_classifier_fits, gpu, label_count, ClassifyAction, Cli};

pub(crate) fn classify(cli: &Cli, action: &ClassifyAction) -> Result<()> {
    use shadergan::models::classifier::Classifier;
    let g = gpu(cli)?;
    match action {
        ClassifyAction::Train { config, out, steps } => {
            let cfg = shadergan::config::ClassifierConfig::load(config)?;
            let d = &cfg.data;
            let train_set = run::load_data(d, cfg.classifier.batch_size)?;
            if train_set.labels.is_none() {
                bail!("{}: the classifier needs labelled data (data.labels, or class sub-folders)", config.display());
            }
            let test_set = match (&d.test_images, &d.test_labels) {
                (Some(ti), Some(tl)) => {
                    let mut t = shadergan::data::load_idx_images(ti, d.image_size)?;
                    t.labels = Some(shadergan::data::load_idx_labels(tl)?);
                    Some(t)
                }
                (None, None) => None,
                _ => bail!("{}: set both data.test_images and data.test_labels, or neither", config.display()),
            };
            let classes = train_set.num_classes();
            if classes < 2 {
                bail!("{}: classification needs at least two classes in the labels", config.display());
            }
            let s = &cfg.classifier;
            let steps = steps.unwrap_or(s.steps);
            let mut c = Classifier::new(&g, classes, d.channels, d.image_size, s.width, s.seed);
            let bar = indicatif::ProgressBar::new(steps as u64);
            c.train(&train_set, steps, s.batch_size, s.lr, s.seed, |step, loss| {
                bar.set_position(step as u64);
                bar.set_message(format!("loss {loss:.3}"));
            });
            bar.finish_and_clear();
            let train_acc = c.accuracy(&g, &train_set);
            let test_acc = test_set.as_ref().map(|t| c.accuracy(&g, t));
            c.save(out, s.width, test_acc)?;
            println!("training accuracy {:.2}%", 100.0 * train_acc);
            if let (Some(a), Some(t)) = (test_acc, &test_set) {
                println!("held-out accuracy {:.2}% on {} images", 100.0 * a, t.len);
            }
            println!("wrote {}", out.display());
            Ok(())
        }
        ClassifyAction::Samples { checkpoint, classifier, n, seed } => {
            let (config, generator) = train::load_generator(&g, checkpoint)?;
            let c = Classifier::load(&g, classifier)?;
            check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
            let mut noise = noise::Noise::new(config.train.noise, *seed);
            let z = noise.sample(n * config.model.latent_dim);
            let k = label_count(&config);
            let labels: Vec<u32> =
                if train::codes::takes_labels(&config) { (0..*n).map(|i| (i % k) as u32).collect() } else { vec![] };
            let images = train::generate(&g, &config, &generator, &train::Codes { z, labels, continuous: vec![] });
            let coverage = eval::Coverage::from_probabilities(&c.probabilities(&g, &images), c.classes, 0.9);
            println!("{n} samples: {:.1}% classified with confidence > 0.9", 100.0 * coverage.confident_fraction());
            for class in 0..c.classes {
                println!("  class {class}: {:>5.1}%", 100.0 * coverage.share(class));
            }
            Ok(())
        }
        ClassifyAction::Translated { checkpoint, classifier } => {
            let (config, g_xy, _) = shadergan::cyclegan::load_generators(&g, checkpoint)?;
            let c = Classifier::load(&g, classifier)?;
            let d = &config.domain_x;
            check_classifier_fits(&c, d.channels, d.image_size)?;
            let mut data_cfg = d.clone();
            data_cfg.limit = 0;
            let x = run::load_data(&data_cfg, 1)?;
            let Some(labels) = &x.labels else {
                bail!("{}: domain_x has no labels to score translations against", checkpoint.display());
            };
            let accuracy = |images: &[f32]| eval::accuracy(&c.predict(&g, images), labels);
            let before = accuracy(&x.pixels);
            let translated = shadergan::cyclegan::translate(&g, d.channels, d.image_size, &g_xy, &x.pixels);
            let after = accuracy(&translated);
            println!("{} images of domain X ({})", x.len, d.images.display());
            println!("classifier on the untranslated, resized images: {:.2}%", 100.0 * before);
            println!("classifier on their translations G(x):           {:.2}%", 100.0 * after);
            Ok(())
        }
        ClassifyAction::SemiSupervised { run: dir, baseline_steps } => {
            use shadergan::config::GanKind;
            use shadergan::models::classifier::labelled_subset;
            let config = shadergan::config::Config::load(&dir.join("config.toml"))?;
            if config.model.kind != GanKind::SemiSupervised {
                bail!("{}: not a semi-supervised run (model.kind = {:?})", dir.display(), config.model.kind);
            }
            let d = &config.data;
            let (Some(ti), Some(tl)) = (&d.test_images, &d.test_labels) else {
                bail!("{}: the config needs data.test_images and data.test_labels", dir.display());
            };
            let mut test = shadergan::data::load_idx_images(ti, d.image_size)?;
            test.labels = Some(shadergan::data::load_idx_labels(tl)?);
            let data = run::load_dataset(&config)?;
            let mut t = train::GanTrainer::new(&g, &config, data.len);
            train::restore_checkpoint(&mut t, dir)?;
            let labels = test.labels.as_ref().expect("set above");
            let pred = t.classify(&test.pixels);
            let gan_acc = eval::accuracy(&pred, labels);
            // The same network (D's architecture with K outputs) on the same labelled images only.
            let subset = labelled_subset(&data, config.train.labelled_per_class, config.train.seed.wrapping_add(3));
            let mut base = Classifier::new(
                &g,
                config.model.classes,
                d.channels,
                d.image_size,
                config.model.d_width,
                config.train.seed,
            );
            base.train(
                &subset,
                *baseline_steps,
                config.train.batch_size.min(subset.len),
                config.train.lr_d,
                config.train.seed,
                |_, _| {},
            );
            let base_acc = base.accuracy(&g, &test);
            println!("labelled images: {} ({} per class)", subset.len, config.train.labelled_per_class);
            println!(
                "semi-supervised GAN's D: {:.2}% on {} held-out digits (after {} steps)",
                100.0 * gan_acc,
                test.len,
                t.step
            );
            println!("same network, labelled images only: {:.2}% ({baseline_steps} steps)", 100.0 * base_acc);
            Ok(())
        }
        ClassifyAction::Conditional { checkpoint, classifier, n, seed } => {
            let (config, generator) = train::load_generator(&g, checkpoint)?;
            let infogan = config.model.kind == shadergan::config::GanKind::Infogan;
            if !train::codes::takes_labels(&config) {
                bail!(
                    "{}: the model takes no class or categorical code (conditional GAN, ACGAN or InfoGAN needed)",
                    checkpoint.display()
                );
            }
            let c = Classifier::load(&g, classifier)?;
            check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
            let k = label_count(&config);
            let mut noise = noise::Noise::new(config.train.noise, *seed);
            let labels: Vec<u32> = (0..k * n).map(|i| (i / n) as u32).collect();
            let z = noise.sample(labels.len() * config.model.latent_dim);
            // InfoGAN's continuous codes vary freely (uniform in [-1, 1]) while the category is held.
            let continuous: Vec<f32> = noise::Noise::new(shadergan::config::NoiseKind::Uniform, seed ^ 0x5eed)
                .sample(labels.len() * config.model.info_continuous * infogan as usize);
            let images = train::generate(&g, &config, &generator, &train::Codes { z, labels, continuous });
            let pred = c.predict(&g, &images);
            let counts = eval::conditional_counts(&pred, k, *n, c.classes);
            print!("{}", eval::conditional_report(&counts, *n, infogan));
            Ok(())
        }
    }
}
