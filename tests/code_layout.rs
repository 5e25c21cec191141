//! The codebase's own rules that a reader would otherwise have to police: no source file over
//! 600 lines (split a module by what it does before it grows past that), and no short-circuit
//! operators in kernels.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "wgsl") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "shaders", "tests", "examples", "benches"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), root.display());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 600).then(|| format!("{} ({lines} lines)", f.strip_prefix(root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 600 lines: {long:?}");
}

/// The lines of the kernels whose code (before any `//` comment) `offends`, as "file:line: text".
fn offending_shader_lines(offends: impl Fn(&str) -> bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("shaders"), &mut files);
    let mut found = Vec::new();
    for file in &files {
        for (n, line) in std::fs::read_to_string(file).unwrap().lines().enumerate() {
            if offends(line.split("//").next().unwrap_or("")) {
                found.push(format!("{}:{}: {}", file.strip_prefix(root).unwrap().display(), n + 1, line.trim()));
            }
        }
    }
    found
}

/// Kernels write bool logic with `&` and `|`, never `&&` or `||`: naga lowers each short-circuit
/// operator in a function body to an `if` that stores into a local variable, and SwiftShader's
/// compiler, given such branches inside a loop whose lanes meet at workgroup barriers (the
/// implicit convolutions on adapters without subgroups), grew past 8 GB without finishing one
/// pipeline (examples/pipeline_probe.rs reproduces it). The operands here are comparisons, so
/// evaluating both sides costs nothing.
#[test]
fn kernels_use_no_short_circuit_operators() {
    let found = offending_shader_lines(|code| code.contains("&&") || code.contains("||"));
    assert!(found.is_empty(), "short-circuit operators in kernels (write `(a) & (b)` instead):\n{}", found.join("\n"));
}

/// WGSL's grammar makes the operands of `&`, `|` and `^` unary expressions, so a comparison or
/// any other operator beside them needs parentheses: `(x >= 0) & (x < w)`. naga accepts the
/// unparenthesised form; Tint, the browsers' compiler, refuses the whole shader. Checked per
/// nesting level of each line, with binary operators written between spaces as rustfmt-style
/// WGSL here always is.
#[test]
fn bitwise_operators_are_never_mixed_without_parentheses() {
    let found = offending_shader_lines(mixes_bitwise_operators);
    assert!(
        found.is_empty(),
        "bitwise operators mixed without parentheses (Tint refuses these):\n{}",
        found.join("\n")
    );
}

/// Whether a line of code holds, at one nesting level, a bitwise operator beside any other.
fn mixes_bitwise_operators(code: &str) -> bool {
    const OPERATORS: [&str; 16] =
        ["<<", ">>", "<=", ">=", "==", "!=", "&", "|", "^", "<", ">", "+", "-", "*", "/", "%"];
    // One list of operators per open group; a group closes at its bracket or at a separator.
    let mut groups: Vec<Vec<&str>> = vec![vec![]];
    let mut mixed = false;
    let mut close = |ops: Vec<&str>| {
        mixed |= ops.iter().any(|o| ["&", "|", "^"].contains(o)) && ops.iter().any(|o| *o != ops[0]);
    };
    let mut rest = code;
    while let Some(c) = rest.chars().next() {
        if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(&format!(" {op} "))) {
            groups.last_mut().unwrap().push(op);
            rest = &rest[op.len() + 1..];
            continue;
        }
        match c {
            '(' | '[' => groups.push(vec![]),
            ')' | ']' if groups.len() > 1 => close(groups.pop().unwrap()),
            ',' | ';' | '=' => close(std::mem::take(groups.last_mut().unwrap())),
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    groups.into_iter().for_each(&mut close);
    mixed
}

#[test]
fn the_mixing_check_tells_parenthesised_operands_apart() {
    assert!(mixes_bitwise_operators("let ok = a & x >= 0;"));
    assert!(mixes_bitwise_operators("return q & m + 1u;"));
    assert!(!mixes_bitwise_operators("let ok = a & (x >= 0) & (x < w);"));
    assert!(!mixes_bitwise_operators("let v = textureLoad(t, vec2<u32>(q & ((1u << s) - 1u), q >> s));"));
}
