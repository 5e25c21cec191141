//! Scoring generated samples with the engine's own classifier.

/// Per class (or InfoGAN code value): how the classifier labels its samples. A conditional
/// model is scored against the requested class; InfoGAN, which never saw labels, against the
/// digit each code value comes to produce (its most common label).
pub fn conditional_report(counts: &[Vec<usize>], n: usize, infogan: bool) -> String {
    let pct = |hits: usize| 100.0 * hits as f64 / n as f64;
    let mut out = String::new();
    let mut total = 0;
    let mut digits = std::collections::BTreeSet::new();
    for (code, hist) in counts.iter().enumerate() {
        let (top, &top_hits) = hist.iter().enumerate().max_by_key(|(_, &h)| h).unwrap_or((0, &0));
        if infogan {
            total += top_hits;
            digits.insert(top);
            out += &format!("code {code}: {:.1}% of {n} samples classified as {top}\n", pct(top_hits));
        } else {
            total += hist[code];
            out += &format!("class {code}: {:.1}% of {n} samples classified as {code}\n", pct(hist[code]));
        }
    }
    let all = counts.len() * n;
    if infogan {
        out += &format!(
            "overall: {:.2}% of {all} samples show their code's digit; the {} code values produce {} different digits\n",
            100.0 * total as f64 / all as f64,
            counts.len(),
            digits.len()
        );
    } else {
        out +=
            &format!("overall: {:.2}% of {all} samples classified as their class\n", 100.0 * total as f64 / all as f64);
    }
    out
}
