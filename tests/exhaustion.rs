//! Running out of address space is an error, not a crash: `Builder` returns `Err`, the
//! plain constructors panic with a clear message, the stacks already made are not
//! leaked, and creation works again once they are dropped.
//!
//! The limit (`RLIMIT_AS`) applies to the whole process, so the scenario runs in a
//! child process: this test binary re-run with `STACKFUL_EXHAUSTION_CHILD` set.

#![cfg(target_os = "linux")]

use stackful::generator::{StackfulGenerator, YieldHandle};
use stackful::{stackful, wait, Builder};

mod common;
const STACK: usize = 1 << 20;

fn vm_size_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sets `RLIMIT_AS`; returns whether the limit is in force. qemu-user accepts the call
/// but does not apply it (it would limit qemu itself): `getrlimit` then still reports
/// the old limit.
fn set_address_space_limit(bytes: usize) -> bool {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut now) }, 0);
    now.rlim_cur == limit.rlim_cur
}

/// Creates suspended coroutines until `Builder` fails; returns them and the error.
fn fill() -> (Vec<Box<dyn std::any::Any>>, std::io::Error) {
    let mut alive: Vec<Box<dyn std::any::Any>> = Vec::new();
    loop {
        let made = if alive.len() % 2 == 0 {
            Builder::new()
                .stack_size(STACK)
                .future(|| wait(futures::future::pending::<()>()))
                .map(|f| Box::new(f) as Box<dyn std::any::Any>)
        } else {
            Builder::new()
                .stack_size(STACK)
                .generator(|y: &YieldHandle<u8>, ()| y.yeet(1))
                .map(|g| Box::new(g) as Box<dyn std::any::Any>)
        };
        match made {
            Ok(c) => alive.push(c),
            Err(e) => return (alive, e),
        }
        assert!(alive.len() < 100_000, "the limit was never reached");
    }
}

#[test]
fn child_exhaustion() {
    if !common::is_child("child_exhaustion") {
        return;
    }
    // No pool, so every stack that is dropped is unmapped at once.
    stackful::stack::set_thread_pool_limit(0);
    // Room for ~64 more stacks than what the process already has mapped.
    // Where the limit is not enforced (qemu-user accepts RLIMIT_AS but ignores it),
    // the same scenario runs into the kernel's `vm.max_map_count` instead: creation
    // still has to end in `Err`, never a crash.
    if !set_address_space_limit(vm_size_kib() * 1024 + 64 * (STACK + 4096) + (16 << 20)) {
        eprintln!("RLIMIT_AS is not enforced here: exhausting vm.max_map_count instead");
    }

    let mapped_before = stackful::stack::stats().mapped;
    let (alive, err) = fill();
    let first_round = alive.len();
    assert!(first_round > 10, "only {first_round} stacks fit");
    eprintln!("first round: {first_round} coroutines, then Err({err})");
    let msg = err.to_string();
    assert!(
        msg.contains("stackful: mmap") || msg.contains("stackful: mprotect"),
        "{msg}"
    );

    // The infallible constructors panic with a clear message.
    let panic = std::panic::catch_unwind(|| {
        drop(stackful(|| 1));
    })
    .expect_err("stackful() must panic when no stack can be mapped");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("could not allocate a coroutine stack"),
        "panic message: {msg}"
    );
    let panic = std::panic::catch_unwind(|| {
        let _ = StackfulGenerator::<(), (), ()>::new(|_, ()| ());
    })
    .expect_err("StackfulGenerator::new must panic when no stack can be mapped");
    assert!(panic
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("could not allocate a coroutine stack")));

    // Dropping them releases every stack: the same number fits again.
    let vm_full = vm_size_kib();
    drop(alive);
    let vm_empty = vm_size_kib();
    assert_eq!(
        stackful::stack::stats().mapped,
        mapped_before,
        "every stack made before the error is unmapped again"
    );
    assert!(
        vm_full - vm_empty >= first_round * STACK / 1024,
        "dropping {first_round} coroutines released only {} KiB",
        vm_full - vm_empty
    );
    let (alive, _) = fill();
    eprintln!("second round: {}", alive.len());
    // Other users of mappings (malloc arenas for the panics above) may hold a few.
    assert!(
        alive.len() + 16 >= first_round,
        "after dropping, only {} of {first_round} fit again",
        alive.len()
    );
    drop(alive);
    eprintln!("CHILD-OK");
}

#[test]
fn exhaustion_is_an_error_and_recoverable() {
    if std::env::var_os("STACKFUL_TEST_CHILD").is_some() {
        return;
    }
    let (status, stderr) = common::run_child("child_exhaustion");
    assert!(
        status.success() && stderr.contains("CHILD-OK"),
        "child failed: {status:?}\nstderr:\n{stderr}"
    );
}
