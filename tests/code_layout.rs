//! The codebase's own rules that a reader would otherwise have to police: no source file over
//! 600 lines (split a module by what it does before it grows past that), no short-circuit
//! operators in kernels, and imports that run one way through the library's layers.

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

/// The library's layers, lowest first: a module may import from layers below its own, never
/// from its own or above (tensor and autograd, a tensor recording its op, excepted). data and
/// viz sit at the bottom, config above them, then the device, tensors, layers, networks, the
/// training engine, what is built on it, and the tasks the CLI runs.
const LAYERS: [(&str, u8); 19] = [
    ("data", 0),
    ("viz", 0),
    ("config", 1),
    ("gpu", 2),
    ("tensor", 3),
    ("autograd", 3),
    ("reference", 4),
    ("nn", 4),
    ("optim", 4),
    ("checkpoint", 5),
    ("models", 6),
    ("train", 7),
    ("cyclegan", 8),
    ("control", 8),
    ("eval", 8),
    ("distributed", 8),
    ("toy", 8),
    ("mixture", 8),
    ("tasks", 9),
];

/// Imports that run against the layers today, each closing an import cycle that issue 28's
/// layering removes. The list may only shrink: a new one fails the test, and so does one that
/// is gone but still listed.
const KNOWN_UPWARD: [(&str, &str); 7] = [
    ("config", "train"),   // train::augment::Policy, parsed by the config
    ("gpu", "checkpoint"), // the pipeline cache's atomic writes
    ("gpu", "tensor"),     // wgsl_enum generates WGSL from tensor's enums
    ("tensor", "train"),   // tensor/collective implements train::Collective
    ("viz", "checkpoint"), // atomic PNG writes
    ("train", "cyclegan"), // train::run builds the CycleGAN family
    ("train", "tasks"),    // train::run calls into tasks
];

/// The top-level modules each library module names through `crate::` (single and grouped
/// imports, and paths in code), comments aside.
fn module_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut edges = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.iter().next().unwrap().to_str().unwrap();
        if ["main.rs", "lib.rs", "cli"].contains(&first) {
            continue; // the binary, and the crate root's re-exports
        }
        let module = first.trim_end_matches(".rs").to_string();
        let code: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named = Vec::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Grouped: the first segment of each item at the group's own depth.
                let (mut depth, mut item_start) = (1, 0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' | ',' if depth == 1 => {
                            named.push(first_segment(&group[item_start..i]));
                            item_start = i + 1;
                            if c == '}' {
                                break;
                            }
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
            } else {
                named.push(first_segment(rest));
            }
        }
        let known: Vec<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
        for target in named {
            if target != module && known.contains(&target.as_str()) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    edges
}

fn first_segment(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

#[test]
fn imports_run_down_the_layers_and_no_new_cycle_appears() {
    let rank = |m: &str| LAYERS.iter().find(|(name, _)| *name == m).map(|(_, r)| *r);
    let edges = module_imports();
    let mut unknown_modules = Vec::new();
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        let Some(from_rank) = rank(from) else {
            unknown_modules.push(from.clone());
            continue;
        };
        for to in targets {
            let allowed = rank(to).unwrap() < from_rank || [from.as_str(), to.as_str()] == ["autograd", "tensor"];
            let allowed = allowed || [from.as_str(), to.as_str()] == ["tensor", "autograd"];
            if !allowed {
                upward.push((from.as_str(), to.as_str()));
            }
        }
    }
    assert!(unknown_modules.is_empty(), "modules missing from LAYERS (give each its layer): {unknown_modules:?}");
    let new: Vec<_> = upward.iter().filter(|e| !KNOWN_UPWARD.contains(e)).collect();
    assert!(
        new.is_empty(),
        "imports against the layers (from -> to), each a possible import cycle: {new:?}; \
         move the item down to the layer that needs it, or the user up (LAYERS lists the order)"
    );
    let gone: Vec<_> = KNOWN_UPWARD.iter().filter(|e| !upward.contains(e)).collect();
    assert!(gone.is_empty(), "these upward imports are gone: remove them from KNOWN_UPWARD: {gone:?}");
}

#[test]
fn the_import_scan_reads_single_grouped_and_nested_imports() {
    assert_eq!(first_segment(" nn::{Module, Sequential}"), "nn");
    let edges = module_imports();
    assert!(edges["train"].contains("models") && edges["train"].contains("nn"), "{:?}", edges["train"]);
    assert!(edges["autograd"].contains("tensor") && edges["tensor"].contains("autograd"));
    assert!(!edges.contains_key("data") || edges["data"].is_empty(), "data imports nothing of the crate");
}
