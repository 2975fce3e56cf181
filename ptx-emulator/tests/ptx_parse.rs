//! The parser on whole modules: every `.ptx` file nvcc made of the emulator's test kernels (or of
//! the directory `PTX_DIR`, for any other set) must parse, with as many kernels as the text
//! declares and every instruction's `.loc`. (The project's own modules are loaded whole, parsed
//! and decoded, by the main crate's `tests/emulator_modules.rs`.)

use std::time::Instant;

use ptx_emulator::ptx::ast::{FunctionKind, Statement};
use ptx_emulator::ptx::parse;

/// Kernels the text declares: lines whose words include `.entry`.
fn entries_in_text(text: &str) -> usize {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//") && line.split_whitespace().any(|word| word == ".entry"))
        .count()
}

#[test]
fn every_compiled_module_parses() {
    let dir = match std::env::var_os("PTX_DIR") {
        Some(dir) => dir,
        None if env!("PTX_EMULATOR_TEST_KERNELS").is_empty() => {
            println!("skipped every_compiled_module_parses: built without nvcc and no PTX_DIR");
            return;
        }
        None => env!("PTX_EMULATOR_TEST_KERNELS").into(),
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("PTX_DIR is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "ptx"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .ptx file in {}", dir.to_string_lossy());
    let (mut kernels, mut instructions) = (0, 0);
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("a readable PTX file");
        let start = Instant::now();
        let module = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let elapsed = start.elapsed();
        let entries = module
            .functions
            .iter()
            .filter(|f| f.kind == FunctionKind::Entry)
            .count();
        assert_eq!(entries, entries_in_text(&text), "{}: kernel count", path.display());
        assert!(!module.target.is_empty(), "{}: no .target", path.display());
        assert_eq!(module.address_size, 64);
        let count: usize = module
            .functions
            .iter()
            .flat_map(|f| f.body.iter().flatten())
            .filter(|s| matches!(s, Statement::Instruction(_)))
            .count();
        // Every instruction nvcc emits with -lineinfo follows a `.loc`, whose file and inlined
        // function name the module defines.
        for function in &module.functions {
            for statement in function.body.iter().flatten() {
                if let Statement::Instruction(instruction) = statement {
                    let at = format!("{}:{}", path.display(), instruction.line);
                    let loc = instruction.loc.unwrap_or_else(|| panic!("{at}: no .loc"));
                    assert!(module.files.contains_key(&loc.file), "{at}: unknown file {}", loc.file);
                    if let Some(n) = loc.function_name {
                        let label = format!("$L__info_string{n}");
                        assert!(module.debug_strings.contains_key(&label), "{at}: unknown {label}");
                    }
                }
            }
        }
        println!(
            "{:<40} {:>7} lines {:>3} kernels {:>7} instructions  parsed in {:>8.2} ms",
            path.file_name().unwrap().to_string_lossy(),
            text.lines().count(),
            entries,
            count,
            elapsed.as_secs_f64() * 1e3
        );
        kernels += entries;
        instructions += count;
    }
    println!(
        "{} modules, {kernels} kernels, {instructions} instructions",
        paths.len()
    );
}
