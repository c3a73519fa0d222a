//! Writing a pprof report as folded stacks (`thread;outer;...;inner count`)
//! whose frame names say which function they are, not only its short name.
//!
//! With fat LTO almost every frame is inlined, and the debug info names an
//! inlined frame by its bare name (`get`, `run`, `{closure#0}`), so two
//! different functions would look the same. Each frame is therefore written
//! as `module::name`, the module read from the frame's source file
//! (`kv-server/src/store.rs` → `kv_server::store`), a closure is named after
//! the function it is written in (`kv_server::store::apply::{closure#0}`),
//! and an inlined frame ends in `_[i]`, the annotation inferno and
//! flamegraph.pl already use for inlined frames.

use std::fmt::Write as _;
use std::path::Path;

/// Suffix of an inlined frame's name (inferno's annotation).
pub const INLINED: &str = "_[i]";

/// One symbol of a sampled stack, outermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFrame<'a> {
    /// Demangled name, as the symbolizer gives it.
    pub name: &'a str,
    /// Source file of the code this frame was executing, when known.
    pub file: Option<&'a Path>,
    /// Inlined into the frame before it (no call instruction of its own).
    pub inlined: bool,
}

/// The folded lines of a pprof report, sorted (stable files for diffs).
pub fn report_lines(report: &pprof::Report) -> Vec<String> {
    let mut lines: Vec<String> = report
        .data
        .iter()
        .map(|(frames, count)| {
            // pprof keeps the leaf first; per address, the inlined chain
            // innermost first and the real function last.
            let symbols: Vec<(&pprof::Symbol, bool)> = frames
                .frames
                .iter()
                .rev()
                .flat_map(|f| f.iter().rev().enumerate().map(|(k, s)| (s, k > 0)))
                .collect();
            let names: Vec<String> = symbols.iter().map(|(s, _)| s.name()).collect();
            let stack: Vec<StackFrame> = symbols
                .iter()
                .zip(&names)
                .map(|((s, inlined), name)| StackFrame {
                    name,
                    file: s.filename.as_deref(),
                    inlined: *inlined,
                })
                .collect();
            line(&frames.thread_name_or_id(), &stack, (*count).max(0) as u64)
        })
        .collect();
    lines.sort();
    lines
}

/// Draws a `.folded` file as an SVG flamegraph headed by `title` (a lab
/// report can take it as it is) and `subtitle`. An empty file gets a
/// valid SVG that says so.
pub fn write_svg(folded: &Path, svg: &Path, title: &str, subtitle: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(folded)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(svg)?);
    if text.trim().is_empty() {
        use std::io::Write;
        write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg"><text y="20">{} (no samples)</text></svg>"#,
            title.replace('&', "&amp;").replace('<', "&lt;")
        )?;
    } else {
        let mut opts = pprof::flamegraph::Options::default();
        opts.title = title.to_string();
        opts.subtitle = Some(subtitle.to_string());
        pprof::flamegraph::from_lines(&mut opts, text.lines(), &mut out)
            .map_err(std::io::Error::other)?;
    }
    std::io::Write::flush(&mut out)
}

/// One folded line: `thread;frame;...;frame count`.
pub fn line(thread: &str, stack: &[StackFrame], count: u64) -> String {
    let mut out = thread.replace(';', ":");
    for name in frame_names(stack) {
        let _ = write!(out, ";{name}");
    }
    let _ = write!(out, " {count}");
    out
}

/// The written name of every frame of `stack`, outermost first.
pub fn frame_names(stack: &[StackFrame]) -> Vec<String> {
    let modules: Vec<Option<String>> = stack.iter().map(|f| f.file.and_then(module_of)).collect();
    let mut out: Vec<String> = Vec::with_capacity(stack.len());
    for (i, f) in stack.iter().enumerate() {
        // `;` separates frames: a name must not contain one.
        let name = f.name.replace(';', ":");
        let mut full = match &modules[i] {
            Some(m) if !has_path(&name) => {
                if is_closure(&name) {
                    // The nearest caller from the same file that is not
                    // itself a closure is the function the closure is in.
                    let parent = (0..i)
                        .rev()
                        .find(|&j| modules[j] == modules[i] && !is_closure(stack[j].name))
                        .map(|j| short(stack[j].name));
                    match parent {
                        Some(p) => format!("{m}::{p}::{name}"),
                        None => format!("{m}::{name}"),
                    }
                } else {
                    format!("{m}::{name}")
                }
            }
            _ => name,
        };
        if f.inlined {
            full.push_str(INLINED);
        }
        out.push(full);
    }
    out
}

/// `{closure#0}`, `{async_fn#1}`, `{async_block#0}`…
fn is_closure(name: &str) -> bool {
    name.starts_with('{')
}

/// The name without generic arguments: `get<K, V>` → `get`.
fn short(name: &str) -> &str {
    match name.find('<') {
        Some(0) | None => name,
        Some(i) => &name[..i],
    }
}

/// True when the name already carries a path (`a::b`, `<T as Tr>::m`)
/// outside its generic arguments.
fn has_path(name: &str) -> bool {
    let mut depth = 0i32;
    let bytes = name.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' | b'{' | b'[' | b'(' => depth += 1,
            b'>' | b'}' | b']' | b')' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => return true,
            _ => {}
        }
    }
    name.starts_with('<')
}

/// The Rust module a source file holds, from its path:
/// `/rustc/<hash>/library/core/src/ptr/mod.rs` → `core::ptr`,
/// `…/registry/src/…/hashbrown-0.15.2/src/raw/mod.rs` → `hashbrown::raw`,
/// `kv-server/src/store.rs` → `kv_server::store`. None without a `src/`.
pub fn module_of(file: &Path) -> Option<String> {
    // C code (mimalloc) has unique symbol names and no modules.
    if file.extension().is_none_or(|e| e != "rs") {
        return None;
    }
    let parts: Vec<&str> = file.iter().filter_map(|p| p.to_str()).collect();
    let src = parts.iter().rposition(|p| *p == "src")?;
    let mut path: Vec<String> = Vec::new();
    if let Some(krate) = src.checked_sub(1).map(|i| parts[i]) {
        path.push(crate_name(krate));
    }
    let rest = &parts[src + 1..];
    for (k, p) in rest.iter().enumerate() {
        if k + 1 == rest.len() {
            let stem = p.rsplit_once('.').map_or(*p, |(s, _)| s);
            if !matches!(stem, "mod" | "lib" | "main") {
                path.push(stem.to_string());
            }
        } else if *p != "bin" {
            path.push(p.to_string());
        }
    }
    (!path.is_empty()).then(|| path.join("::").replace('-', "_"))
}

/// `hashbrown-0.15.2` → `hashbrown`, `kv-server` → `kv_server`.
fn crate_name(dir: &str) -> String {
    let name = match dir.rfind('-') {
        Some(i) if dir[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => &dir[..i],
        _ => dir,
    };
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f<'a>(name: &'a str, file: &'a str, inlined: bool) -> StackFrame<'a> {
        StackFrame {
            name,
            file: (!file.is_empty()).then(|| Path::new(file)),
            inlined,
        }
    }

    #[test]
    fn svg_carries_its_title() {
        let dir = std::env::temp_dir().join(format!("kvlab-folded-svg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (folded, svg) = (dir.join("p.folded"), dir.join("p.svg"));
        std::fs::write(&folded, "t;kv_server::store::apply 5\nt;mi_malloc 2\n").unwrap();
        write_svg(&folded, &svg, "run 1 · server-node0 · 1s 3c", "7 samples").unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(
            text.contains("run 1 · server-node0 · 1s 3c"),
            "{}",
            &text[..500]
        );
        assert!(text.contains("7 samples") && text.contains("kv_server::store::apply"));
        std::fs::write(&folded, "").unwrap();
        write_svg(&folded, &svg, "run 2", "").unwrap();
        assert!(std::fs::read_to_string(&svg)
            .unwrap()
            .contains("run 2 (no samples)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn modules_from_source_paths() {
        let m = |p: &str| module_of(Path::new(p));
        assert_eq!(
            m("/rustc/abc/library/core/src/ptr/mod.rs").as_deref(),
            Some("core::ptr")
        );
        assert_eq!(
            m("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hashbrown-0.15.2/src/raw/mod.rs")
                .as_deref(),
            Some("hashbrown::raw")
        );
        assert_eq!(
            m("kv-server/src/store.rs").as_deref(),
            Some("kv_server::store")
        );
        assert_eq!(
            m("/work/x/kv-server/src/main.rs").as_deref(),
            Some("kv_server")
        );
        assert_eq!(
            m("/rustc/abc/library/stdarch/crates/core_arch/src/x86/sse2.rs").as_deref(),
            Some("core_arch::x86::sse2")
        );
        assert_eq!(m("/usr/include/stdio.h"), None);
        assert_eq!(
            m("/r/libmimalloc-sys-0.1.49/c_src/mimalloc/v3/src/alloc.c"),
            None
        );
    }

    #[test]
    fn names_are_qualified_closures_get_parents_inlined_marked() {
        let stack = [
            f(
                "<std::sys::thread::unix::Thread>::new::thread_start",
                "",
                false,
            ),
            f("apply", "kv-server/src/store.rs", true),
            f(
                "try_fold<kv_core::rpc::Op, F>",
                "/rustc/h/library/core/src/iter/adapters/map.rs",
                true,
            ),
            f(
                "{closure#0}",
                "/rustc/h/library/core/src/iter/adapters/map.rs",
                true,
            ),
            f("{closure#0}", "kv-server/src/store.rs", true),
            f(
                "get<kv_server::key::StoreKey>",
                "/r/dashmap-6.1.0/src/lib.rs",
                true,
            ),
            f("mi_malloc", "", false),
        ];
        assert_eq!(
            frame_names(&stack),
            [
                "<std::sys::thread::unix::Thread>::new::thread_start",
                "kv_server::store::apply_[i]",
                "core::iter::adapters::map::try_fold<kv_core::rpc::Op, F>_[i]",
                "core::iter::adapters::map::try_fold::{closure#0}_[i]",
                "kv_server::store::apply::{closure#0}_[i]",
                "dashmap::get<kv_server::key::StoreKey>_[i]",
                "mi_malloc",
            ]
        );
        let l = line("tokio;rt", &stack[..2], 7);
        assert_eq!(
            l,
            "tokio:rt;<std::sys::thread::unix::Thread>::new::thread_start;kv_server::store::apply_[i] 7"
        );
    }
}
