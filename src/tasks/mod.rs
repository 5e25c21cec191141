//! What each `shadergan` command does, as library functions: the CLI only parses arguments,
//! calls one of these and prints the result, so a program can do everything the CLI does.

mod evaluate;
mod generate;
mod quality;

pub use evaluate::{
    check_classifier_fits, conditional_accuracy, sample_coverage, semi_supervised_comparison, train_classifier,
    translated_accuracy, SemiSupervisedComparison, TrainedClassifier, TranslatedAccuracy,
};
pub use generate::{
    interpolate, interpolation_codes, label_count, sample, sample_codes, sample_labels, steer_toward, translate_images,
    write_images, Samples, Steered, Translation, MAX_SAMPLES,
};
pub use quality::{probe_for, sample_quality, QualityProbe, SampleQuality};

/// Refuses an output path that already exists, so no command overwrites a file it did not
/// write (a checkpoint given as `--out` by mistake, say).
pub fn check_new_output(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!("{} already exists; choose another --out or delete it first", path.display());
    }
    Ok(())
}
