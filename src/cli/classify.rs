//! `shadergan classify`: train the engine's own image classifier, and judge models with it.

use anyhow::Result;

use shadergan::{eval, tasks};

use crate::{gpu, ClassifyAction, Cli};

pub(crate) fn classify(cli: &Cli, action: &ClassifyAction) -> Result<()> {
    let g = gpu(cli)?;
    match action {
        ClassifyAction::Train { config, out, steps } => {
            tasks::check_new_output(out)?;
            let bar = indicatif::ProgressBar::new(0);
            let (t, cfg) = tasks::train_classifier(&g, config, *steps, |step, steps, loss| {
                bar.set_length(steps as u64);
                bar.set_position(step as u64);
                bar.set_message(format!("loss {loss:.3}"));
            })?;
            bar.finish_and_clear();
            t.classifier.save(out, cfg.classifier.width, t.test.map(|(a, _)| a))?;
            println!("training accuracy {:.2}%", 100.0 * t.train_accuracy);
            if let Some((a, n)) = t.test {
                println!("held-out accuracy {:.2}% on {n} images", 100.0 * a);
            }
            println!("wrote {}", out.display());
        }
        ClassifyAction::Samples { checkpoint, classifier, n, seed } => {
            let coverage = tasks::sample_coverage(&g, checkpoint, classifier, *n, *seed)?;
            println!("{n} samples: {:.1}% classified with confidence > 0.9", 100.0 * coverage.confident_fraction());
            for class in 0..coverage.counts.len() {
                println!("  class {class}: {:>5.1}%", 100.0 * coverage.share(class));
            }
        }
        ClassifyAction::Translated { checkpoint, classifier } => {
            let a = tasks::translated_accuracy(&g, checkpoint, classifier)?;
            println!("{} images of domain X", a.images);
            println!("classifier on the untranslated, resized images: {:.2}%", 100.0 * a.before);
            println!("classifier on their translations G(x):           {:.2}%", 100.0 * a.after);
        }
        ClassifyAction::SemiSupervised { run: dir, baseline_steps } => {
            let c = tasks::semi_supervised_comparison(&g, dir, *baseline_steps)?;
            println!("labelled images: {} ({} per class)", c.labelled, c.per_class);
            println!(
                "semi-supervised GAN's D: {:.2}% on {} held-out digits (after {} steps)",
                100.0 * c.gan_accuracy,
                c.test_images,
                c.gan_steps
            );
            println!(
                "same network, labelled images only: {:.2}% ({baseline_steps} steps)",
                100.0 * c.baseline_accuracy
            );
        }
        ClassifyAction::Conditional { checkpoint, classifier, n, seed } => {
            let (counts, infogan) = tasks::conditional_accuracy(&g, checkpoint, classifier, *n, *seed)?;
            print!("{}", eval::conditional_report(&counts, *n, infogan));
        }
    }
    Ok(())
}
