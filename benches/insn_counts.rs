//! Instruction counts of every benchmark case, measured with callgrind: unlike
//! timings they do not depend on the load of the machine.
//!
//! `cargo bench --bench insn_counts [-- FILTER]` runs each case (the same code as the
//! criterion benches, from `common/`) under `valgrind --tool=callgrind` twice, with
//! `N` and `2N` operations, and prints `(Ir(2N) - Ir(N)) / N`: the instructions of
//! one operation, with set-up, tear-down and process start-up cancelled out. The
//! table is also written to `<target>/criterion/insn_counts.csv`, and the callgrind
//! profiles are kept in `<target>/callgrind/` for `callgrind_annotate`.
//!
//! Callgrind counts user-space instructions only: the kernel's work in `mmap`,
//! `munmap` and page faults (what makes a fresh stack expensive) does not show.
//!
//! Other modes: `insn_counts list`; `insn_counts run <case id> <n> [repeats]` (runs
//! `n` operations of one case, `repeats` times, and prints the time of each batch;
//! what the callgrind runs execute, with one repeat).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = common::all_cases();
    match args.first().map(String::as_str) {
        Some("list") => {
            for c in &cases {
                println!("{}", c.id());
            }
            ExitCode::SUCCESS
        }
        Some("run") => {
            let (Some(id), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok()))
            else {
                eprintln!("usage: insn_counts run <case id> <operations> [repeats]");
                return ExitCode::FAILURE;
            };
            let Some(case) = cases.iter().find(|c| &c.id() == id) else {
                eprintln!("insn_counts: no case {id:?} (see `insn_counts list`)");
                return ExitCode::FAILURE;
            };
            let repeats: u32 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(1);
            let mut run = case.make();
            for _ in 0..repeats {
                let elapsed = run(n);
                eprintln!(
                    "{id}: {n} operations in {elapsed:?} ({:.2} ns/op)",
                    elapsed.as_nanos() as f64 / n as f64
                );
            }
            drop(run);
            ExitCode::SUCCESS
        }
        _ => count_all(&cases, &args),
    }
}

fn count_all(cases: &[common::Case], args: &[String]) -> ExitCode {
    // `cargo bench` passes `--bench`, and `cargo bench -- ARGS` passes criterion's
    // options to every bench target: skip them (and the values of those that take
    // one); the remaining words filter the cases by substring, as criterion does.
    const WITH_VALUE: &[&str] = &[
        "--baseline",
        "--baseline-lenient",
        "--color",
        "--confidence-level",
        "--format",
        "--load-baseline",
        "--measurement-time",
        "--noise-threshold",
        "--nresamples",
        "--output-format",
        "--plotting-backend",
        "--profile-time",
        "--sample-size",
        "--save-baseline",
        "--significance-level",
        "--warm-up-time",
    ];
    let mut filter: Vec<&str> = Vec::new();
    let mut skip_value = false;
    for a in args {
        if skip_value {
            skip_value = false;
        } else if a.starts_with('-') {
            skip_value = WITH_VALUE.contains(&a.as_str());
        } else {
            filter.push(a);
        }
    }
    let selected: Vec<&common::Case> = cases
        .iter()
        .filter(|c| c.insn_ops > 0)
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.id().contains(f)))
        .collect();
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }
    let valgrind_ok = Command::new("valgrind")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !valgrind_ok {
        println!("insn_counts: valgrind not found; skipping instruction counts");
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let target = target_dir(&exe);
    let out_dir = target.join("callgrind");
    std::fs::create_dir_all(&out_dir).expect("create callgrind output dir");

    let mut rows = Vec::new();
    println!(
        "{:<52} {:>14} {:>14}",
        "case (callgrind, user-space instructions)", "Ir / op", "Ir / element"
    );
    for case in selected {
        let id = case.id();
        let n = case.insn_ops;
        let counts: Option<Vec<u64>> = [n, 2 * n]
            .iter()
            .map(|&ops| callgrind(&exe, &out_dir, &id, ops))
            .collect();
        let Some(counts) = counts else {
            println!("{id:<52} {:>14}", "failed");
            continue;
        };
        let per_op = counts[1].saturating_sub(counts[0]) as f64 / n as f64;
        let per_elem = per_op / case.elements as f64;
        println!("{id:<52} {per_op:>14.1} {per_elem:>14.1}");
        rows.push((id, format!("{per_op:.1},{per_elem:.1}")));
    }
    // Merge into the table of earlier runs, so that a filtered run updates its rows
    // and keeps the others.
    let csv = target.join("criterion").join("insn_counts.csv");
    let _ = std::fs::create_dir_all(csv.parent().expect("parent"));
    let mut table: Vec<(String, String)> = std::fs::read_to_string(&csv)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(',')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    for (id, values) in rows {
        match table.iter_mut().find(|(k, _)| *k == id) {
            Some(row) => row.1 = values,
            None => table.push((id, values)),
        }
    }
    let mut text = String::from("case,insn_per_op,insn_per_element\n");
    for (id, values) in table {
        text.push_str(&format!("{id},{values}\n"));
    }
    if let Err(e) = std::fs::write(&csv, text) {
        eprintln!("insn_counts: cannot write {}: {e}", csv.display());
    }
    ExitCode::SUCCESS
}

/// Total instructions (`Ir`) of `insn_counts run <id> <ops>` under callgrind.
fn callgrind(exe: &Path, out_dir: &Path, id: &str, ops: u64) -> Option<u64> {
    let file = out_dir.join(format!("{}.{ops}.out", id.replace(['/', ' '], "_")));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .args(["run", id, &ops.to_string()])
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "insn_counts: {id} failed under callgrind:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `<target>` from `<target>/<profile>/deps/<exe>`.
fn target_dir(exe: &Path) -> PathBuf {
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}
