//! The documentation points only at things that exist: every relative link in the
//! repository's Markdown (README.md, docs/*.md and every other README.md outside
//! target/ and build/) names an existing file or directory, and every `make <target>`
//! the docs show (in code spans and code blocks) is a target of the Makefile.
//!
//! A failure lists each problem as `file:line: ...`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root: two levels above this crate.
fn repo_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

/// Directories never searched for README.md: build output and VCS metadata.
const SKIP_DIRS: [&str; 3] = ["target", "build", ".git"];

/// The Markdown files the checks cover, relative to `root`, sorted.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(root.join("docs")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "md") && p.is_file() {
                files.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if !SKIP_DIRS.contains(&name.as_ref()) {
                    stack.push(p);
                }
            } else if name == "README.md" {
                files.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    files.into_iter().collect()
}

/// A piece of a Markdown file: prose (where links count) or code (where `make` lines
/// count), with the 1-based line each of its characters is on.
#[derive(Debug, PartialEq)]
enum Piece {
    /// Text outside code; links are read from it.
    Prose { text: String, line: usize },
    /// A code span or one line of a fenced code block.
    Code { text: String, line: usize },
}

/// Splits Markdown into prose and code: fenced code blocks (``` or ~~~, each line a
/// piece) and code spans (backtick runs closed by a run of the same length within the
/// paragraph, possibly across lines; a newline inside one counts as a space).
fn pieces(md: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    // Consecutive prose lines of one paragraph, with the line each starts on.
    let mut para: Vec<(usize, &str)> = Vec::new();
    for (i, line) in md.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(f) = &fence {
            if trimmed.starts_with(f.as_str())
                && trimmed
                    .trim_end()
                    .chars()
                    .all(|c| c == f.as_bytes()[0] as char)
            {
                fence = None;
            } else {
                out.push(Piece::Code {
                    text: line.to_string(),
                    line: n,
                });
            }
            continue;
        }
        if indent <= 3 && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            spans(&para, &mut out);
            para.clear();
            let c = trimmed.as_bytes()[0] as char;
            let len = trimmed.chars().take_while(|&x| x == c).count();
            fence = Some(c.to_string().repeat(len));
            continue;
        }
        if trimmed.is_empty() {
            spans(&para, &mut out);
            para.clear();
        } else {
            para.push((n, line));
        }
    }
    spans(&para, &mut out);
    out
}

/// Splits one paragraph into prose and code spans.
fn spans(para: &[(usize, &str)], out: &mut Vec<Piece>) {
    if para.is_empty() {
        return;
    }
    // The paragraph as one string, with the line of each byte.
    let mut text = String::new();
    let mut lines = Vec::new();
    for (k, (n, l)) in para.iter().enumerate() {
        if k > 0 {
            text.push('\n');
            lines.push(*n);
        }
        text.push_str(l);
        lines.extend(std::iter::repeat_n(*n, l.len()));
    }
    let bytes = text.as_bytes();
    let mut prose_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
        // Find a closing run of exactly `run` backticks.
        let mut j = i + run;
        let mut close = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let r = bytes[j..].iter().take_while(|&&b| b == b'`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                if prose_start < i {
                    out.push(Piece::Prose {
                        text: text[prose_start..i].to_string(),
                        line: lines[prose_start],
                    });
                }
                out.push(Piece::Code {
                    text: text[i + run..j].replace('\n', " "),
                    line: lines[i],
                });
                i = j + run;
                prose_start = i;
            }
            None => i += run,
        }
    }
    if prose_start < bytes.len() {
        out.push(Piece::Prose {
            text: text[prose_start..].to_string(),
            line: lines[prose_start],
        });
    }
}

/// The link destinations in prose, with their line: inline links and images
/// `[text](dest "title")` and reference definitions `[label]: dest`.
fn links(text: &str, first_line: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let line_at = |at: usize| first_line + bytes[..at].iter().filter(|&&b| b == b'\n').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b']' {
            if bytes.get(i + 1) == Some(&b'(') {
                let start = i + 2;
                // The destination ends at the matching ')' (balanced parentheses).
                let mut depth = 1;
                let mut j = start;
                while j < bytes.len() {
                    match bytes[j] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j < bytes.len() {
                    out.push((line_at(i), destination(&text[start..j])));
                    i = j + 1;
                    continue;
                }
            } else if bytes.get(i + 1) == Some(&b':') {
                // A reference definition: `[label]: dest` at the start of a line.
                let line_start = text[..i].rfind('\n').map_or(0, |p| p + 1);
                let label = text[line_start..i].trim_start();
                if label.starts_with('[') && !label[1..].contains(['[', ']']) {
                    let rest = &text[i + 2..];
                    let end = rest.find('\n').unwrap_or(rest.len());
                    out.push((line_at(i), destination(&rest[..end])));
                    i += 2 + end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// The destination of a link body: `<dest>` or the first word (a title may follow).
fn destination(body: &str) -> String {
    let body = body.trim();
    if let Some(rest) = body.strip_prefix('<') {
        return rest.split('>').next().unwrap_or("").to_string();
    }
    body.split_whitespace().next().unwrap_or("").to_string()
}

/// The file a relative link points at, or `None` for links not to check (web, mail,
/// pure anchors).
fn link_target(root: &Path, file: &Path, dest: &str) -> Option<PathBuf> {
    let lower = dest.to_ascii_lowercase();
    if dest.is_empty()
        || dest.starts_with('#')
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
    {
        return None;
    }
    // Any other scheme (`ftp:`, `file:`) is not a path in the repository either.
    if let Some((scheme, _)) = dest.split_once(':')
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let path = dest.split(['#', '?']).next().unwrap_or("");
    if path.is_empty() {
        return None;
    }
    Some(match path.strip_prefix('/') {
        Some(from_root) => root.join(from_root),
        None => root.join(file).parent().unwrap().join(path),
    })
}

/// The targets of every `make` command line in a piece of code: `make` as a command
/// word, then its arguments up to a shell separator or comment. Variable assignments
/// (`PLATFORM=x`), options and placeholders (`<target>`, `$(VAR)`) are skipped.
fn make_targets(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = code.split_whitespace().collect();
    let mut k = 0;
    while k < words.len() {
        // `make` starts a command: first word, or after a separator or an opening.
        let w = words[k].trim_start_matches(['(', '`']);
        let starts_command = k == 0
            || matches!(
                words[k - 1],
                "&&" | "||" | ";" | "|" | "$" | "sudo" | "then" | "do"
            )
            || words[k - 1].ends_with(';')
            || words[k].starts_with('(');
        if w != "make" || !starts_command {
            k += 1;
            continue;
        }
        k += 1;
        while k < words.len() {
            let arg = words[k];
            if arg.starts_with('#') || matches!(arg, "&&" | "||" | ";" | "|" | ">" | "2>&1") {
                break;
            }
            let stop = arg.ends_with(';') || arg.ends_with(')');
            let arg = arg.trim_end_matches([';', ')', ',', '.']);
            k += 1;
            if arg.starts_with('-') {
                // Options with a separate argument.
                if matches!(arg, "-C" | "-f" | "-I" | "-o" | "-W" | "-j") && k < words.len() {
                    k += 1;
                }
            } else if arg.contains('=') || arg.is_empty() {
                // PLATFORM=imx8mp-evk and the like.
            } else if arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                out.push(arg.to_string());
            }
            // Anything else (`<target>`, `$(VAR)`, `…`) is a placeholder.
            if stop {
                break;
            }
        }
    }
    out
}

/// The Makefile's targets: every name before a rule's `:` (outside `$(...)`, in
/// lines that are not recipes, comments or variable assignments) and every name
/// listed in `.PHONY`.
fn makefile_targets(makefile: &str) -> BTreeSet<String> {
    let mut targets = BTreeSet::new();
    // Join continuation lines.
    let joined = makefile.replace("\\\n", " ");
    for line in joined.lines() {
        if line.starts_with('\t') || line.trim_start().starts_with('#') {
            continue;
        }
        // The first ':' outside parentheses.
        let mut depth = 0i32;
        let mut colon = None;
        for (i, c) in line.char_indices() {
            match c {
                '(' | '{' => depth += 1,
                ')' | '}' => depth -= 1,
                ':' if depth == 0 => {
                    colon = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(colon) = colon else { continue };
        let (names, rest) = (&line[..colon], &line[colon + 1..]);
        // `X := y`, `X ::= y`, `X = a:b`: assignments, not rules.
        if rest.starts_with('=') || rest.starts_with(":=") || names.contains('=') {
            continue;
        }
        if names.trim() == ".PHONY" {
            let prereqs = rest.split(['#', ';']).next().unwrap_or("");
            targets.extend(prereqs.split_whitespace().map(str::to_string));
            continue;
        }
        targets.extend(
            names
                .split_whitespace()
                .filter(|n| !n.starts_with('.'))
                .map(str::to_string),
        );
    }
    targets
}

/// Checks every doc file; returns the problems as `file:line: ...` lines, and how many
/// links and `make` targets were checked.
fn check(root: &Path) -> (Vec<String>, usize, usize) {
    let makefile = fs::read_to_string(root.join("Makefile")).expect("reading the Makefile");
    let targets = makefile_targets(&makefile);
    let mut problems = Vec::new();
    let (mut nlinks, mut nmake) = (0, 0);
    for file in doc_files(root) {
        let md = fs::read_to_string(root.join(&file))
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for piece in pieces(&md) {
            match piece {
                Piece::Prose { text, line } => {
                    for (n, dest) in links(&text, line) {
                        let Some(target) = link_target(root, &file, &dest) else {
                            continue;
                        };
                        nlinks += 1;
                        if !target.exists() {
                            problems.push(format!(
                                "{}:{n}: link `{dest}`: {} does not exist",
                                file.display(),
                                target.strip_prefix(root).unwrap_or(&target).display()
                            ));
                        }
                    }
                }
                Piece::Code { text, line } => {
                    for t in make_targets(&text) {
                        nmake += 1;
                        if !targets.contains(&t) {
                            problems.push(format!(
                                "{}:{line}: `make {t}` in `{}`: the Makefile has no target `{t}`",
                                file.display(),
                                text.trim()
                            ));
                        }
                    }
                }
            }
        }
    }
    (problems, nlinks, nmake)
}

#[test]
fn doc_links_and_make_targets_exist() {
    let root = repo_root();
    let (problems, nlinks, nmake) = check(&root);
    assert!(
        problems.is_empty(),
        "{} problem(s) in the docs (fix the docs, not this test):\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("checked {nlinks} relative links and {nmake} `make` targets");
    // The scan itself works: the docs do have links and `make` commands.
    assert!(nlinks >= 10, "only {nlinks} relative links found");
    assert!(nmake >= 10, "only {nmake} `make` targets found");
}

#[test]
fn docs_index_links_every_doc() {
    let root = repo_root();
    let index = fs::read_to_string(root.join("docs/README.md")).expect("docs/README.md");
    let mut linked = BTreeSet::new();
    for piece in pieces(&index) {
        if let Piece::Prose { text, line } = piece {
            linked.extend(links(&text, line).into_iter().map(|(_, d)| {
                let path = d.split('#').next().unwrap_or("").to_string();
                path.strip_prefix("./").map(str::to_string).unwrap_or(path)
            }));
        }
    }
    let missing: Vec<String> = doc_files(&root)
        .iter()
        .filter(|p| p.parent() == Some(Path::new("docs")))
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|name| name != "README.md" && !linked.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/README.md does not link {missing:?} (list every doc in docs/)"
    );
}

#[test]
fn the_covered_files_include_the_main_docs() {
    let files = doc_files(&repo_root());
    for f in [
        "README.md",
        "docs/README.md",
        "docs/boot.md",
        "tools/README.md",
        "devices/README.md",
        "hypervisor/README.md",
    ] {
        assert!(
            files.iter().any(|p| p == Path::new(f)),
            "{f} not covered: {files:?}"
        );
    }
    assert!(
        !files
            .iter()
            .any(|p| p.starts_with("target") || p.starts_with("build")),
        "{files:?}"
    );
}

#[test]
fn makefile_parsing() {
    let mk = "\
X := a:b
Y = c:d
$(error PLATFORM=$(PLATFORM) is not one of: $(PLATFORMS))
.PHONY: all image \\
\trun bench
all: image
image:
\t$(CARGO) build: not a rule
$(OUT)/x.img: y
foo bar: baz
";
    let t = makefile_targets(mk);
    let want: BTreeSet<String> = ["all", "image", "run", "bench", "$(OUT)/x.img", "foo", "bar"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(t, want);
    // The real Makefile has the targets the README's two commands use.
    let real = fs::read_to_string(repo_root().join("Makefile")).unwrap();
    let real = makefile_targets(&real);
    for t in ["image", "test", "run", "deps", "bench"] {
        assert!(real.contains(t), "{t} missing from {real:?}");
    }
}

#[test]
fn make_commands_in_code() {
    assert_eq!(make_targets("make bench"), ["bench"]);
    assert_eq!(make_targets("make PLATFORM=imx8mp-evk run"), ["run"]);
    assert_eq!(
        make_targets("make run    # boots Debian Linux under Ferry"),
        ["run"]
    );
    assert_eq!(
        make_targets("make ferry-tool test-guests && make -j 2 test; ls"),
        ["ferry-tool", "test-guests", "test"]
    );
    assert_eq!(make_targets("make <target>"), Vec::<String>::new());
    assert_eq!(make_targets("make"), Vec::<String>::new());
    assert_eq!(make_targets("cmake --build ."), Vec::<String>::new());
    assert_eq!(make_targets("remake x"), Vec::<String>::new());
    assert_eq!(make_targets("cargo make x"), Vec::<String>::new());
}

#[test]
fn markdown_pieces_and_links() {
    let md = "\
# Title
See [the boot path](docs/boot.md#the-path) and `make
bench`, [web](https://example.com), [anchor](#x).

```sh
make test   # all [not a link](nowhere.md)
```
[ref]: tools/README.md \"title\"
";
    let p = pieces(md);
    let code: Vec<_> = p
        .iter()
        .filter_map(|p| match p {
            Piece::Code { text, line } => Some((text.as_str(), *line)),
            _ => None,
        })
        .collect();
    assert_eq!(
        code,
        [
            ("make bench", 2),
            ("make test   # all [not a link](nowhere.md)", 6)
        ]
    );
    let mut found = Vec::new();
    for piece in &p {
        if let Piece::Prose { text, line } = piece {
            found.extend(links(text, *line));
        }
    }
    let found: Vec<_> = found.iter().map(|(n, d)| (*n, d.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "docs/boot.md#the-path"),
            (3, "https://example.com"),
            (3, "#x"),
            (8, "tools/README.md")
        ]
    );
    let root = Path::new("/r");
    let file = Path::new("docs/README.md");
    assert_eq!(
        link_target(root, file, "boot.md#the-path"),
        Some(PathBuf::from("/r/docs/boot.md"))
    );
    assert_eq!(
        link_target(root, file, "../tools/"),
        Some(PathBuf::from("/r/docs/../tools/"))
    );
    assert_eq!(link_target(root, file, "#x"), None);
    assert_eq!(link_target(root, file, "https://x.org/a.md"), None);
    assert_eq!(link_target(root, file, "mailto:a@b"), None);
}

#[test]
fn a_broken_link_and_an_unknown_target_are_reported_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ferry-docs-links-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("docs")).unwrap();
    fs::write(dir.join("Makefile"), ".PHONY: run\nrun:\n\ttrue\n").unwrap();
    fs::write(
        dir.join("README.md"),
        "# x\n\nSee [docs](docs/README.md), [gone](DESIGN.md).\n\n`make run`, `make bench`\n",
    )
    .unwrap();
    fs::write(dir.join("docs/README.md"), "[up](../README.md)\n").unwrap();
    let (problems, nlinks, nmake) = check(&dir);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!((nlinks, nmake), (3, 2));
    assert_eq!(
        problems,
        [
            "README.md:3: link `DESIGN.md`: DESIGN.md does not exist",
            "README.md:5: `make bench` in `make bench`: the Makefile has no target `bench`",
        ]
    );
}
