//! What each `shadergan` command does, as library functions: the CLI only parses arguments,
//! calls one of these and prints the result, so a program can do everything the CLI does.

mod evaluate;
mod generate;

pub use evaluate::{
    check_classifier_fits, conditional_accuracy, sample_coverage, semi_supervised_comparison, train_classifier,
    translated_accuracy, SemiSupervisedComparison, TrainedClassifier, TranslatedAccuracy,
};
pub use generate::{
    interpolate, label_count, sample, sample_labels, steer_toward, translate_images, write_images, Samples, Steered,
    Translation,
};
