/*
 * stackful.h: C access to the coroutines of the Rust crate `stackful`.
 *
 * C (or JIT-compiled) code that runs inside a `stackful::stackful(..)` coroutine,
 * called from Rust at any depth, can ask whether it runs in a coroutine, yield to
 * the executor, and suspend the whole coroutine (its C frames included) until a C
 * callback-based operation completes, and charge the coroutine's cooperative yield
 * budget from CPU-bound loops (`stackful::budget`). Every copy of the Rust crate in the program
 * (stackful 0.2 and later, under any package name) publishes the same context, so
 * this works whichever copy runs the coroutine. stackful 0.1.x is not part of it.
 *
 * Nothing needs linking but the Rust crate itself: the functions below are
 * `static inline` over the one shared symbol, `stackful_context_slot`.
 *
 * Calling convention: the platform's C ABI. No function here unwinds: errors are
 * returned as negative STACKFUL_* codes. The functions that suspend
 * (stackful_yield_now, stackful_wait_callback) return on the same thread they were
 * called on unless the Rust side moved the coroutine (`stackful::SendFuture`); C code
 * that may be moved must not keep the address of a thread-local across them.
 *
 * ABI (version 2; version 1 lacks the budget operations). `stackful_context_slot()` returns the address of this thread's
 * `stackful_slot`, which only the copies of the crate write. Its `context` is NULL
 * outside any coroutine poll, else the `stackful_context` of the innermost poll (or
 * drop) of a coroutine on this thread, published by the copy of the crate that runs
 * it. Its `state` identifies that poll for the crate's misuse checks (an address
 * that identifies the coroutine, with bit 0, STACKFUL_WAIT_POLLING, set while a
 * `stackful::wait` of any copy polls its future inside that poll: the coroutine must
 * not suspend then). The slot's two words are fixed for good; rules for versions of
 * the context:
 *   - `version` is the highest ABI version the publishing copy implements; a field
 *     or operation marked "version N" exists only if `version >= N`. Readers must
 *     check that before using it. A later version only appends fields (to the
 *     context and to the operations table), never changes or removes one.
 *   - `size` is the size in bytes of the publisher's `stackful_context` (the fields
 *     of its version; private data may follow it and is not part of the ABI).
 *   - A breaking change would rename `stackful_context_slot`.
 * On ELF targets the slot is itself a shared symbol, the weak thread-local
 * `stackful_slot_tls` (csrc/context.c), whose address `stackful_context_slot()`
 * returns: the Rust copies read it inline on Linux x86_64 and aarch64. Its name is
 * fixed for good too. C code keeps calling the function.
 * Contexts are only valid during the call that read them: read the slot again
 * after anything that may suspend.
 */
#ifndef STACKFUL_H
#define STACKFUL_H

/* Fixed-width types without libc headers where the compiler predefines them (so
 * that the header also works freestanding, e.g. wasm32 without a sysroot). */
#if defined(__UINT32_TYPE__) && defined(__UINTPTR_TYPE__)
typedef __UINT32_TYPE__ stackful_u32;
typedef __UINTPTR_TYPE__ stackful_uptr;
#else
#include <stdint.h>
typedef uint32_t stackful_u32;
typedef uintptr_t stackful_uptr;
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define STACKFUL_CONTEXT_VERSION 2

/* Bit 0 of `stackful_slot.state` (see above). */
#define STACKFUL_WAIT_POLLING ((stackful_uptr)1)

/* Return codes. */
#define STACKFUL_OK 0
/* Not inside a coroutine of any copy of stackful: nothing was done. */
#define STACKFUL_NOT_IN_COROUTINE (-1)
/* Called from inside the `poll` of a future that `stackful::wait` is polling: that
 * poll cannot suspend the coroutine running it. Nothing was done. */
#define STACKFUL_BUSY (-2)
/* The coroutine is being dropped (cancelled): it will not be polled again and must
 * not suspend again. Return to the Rust caller promptly (an error), which lets the
 * Rust side finish unwinding. For stackful_wait_callback: the operation may still
 * be running; its `complete` stays safe to call (once). */
#define STACKFUL_CANCELLED (-3)
/* The copy of stackful running the coroutine is too old for this operation. */
#define STACKFUL_UNSUPPORTED (-4)

/* Called exactly once, from any thread, when an operation started by a
 * `stackful_start_fn` completes. */
typedef void (*stackful_complete_fn)(void *token);
/* Starts an operation; arranges for `complete(token)` to be called exactly once
 * when it completes (possibly before returning, possibly from another thread). */
typedef void (*stackful_start_fn)(void *user, stackful_complete_fn complete, void *token);

struct stackful_context;

/* Operations of the copy that publishes a context (one table per copy). */
struct stackful_context_ops {
    /* version 1: Rust copies only (the "C-unwind" ABI: it unwinds with the
     * publisher's cancellation payload when the coroutine is dropped). C code must
     * not call it. Suspends the coroutine until it is polled again. */
    void (*suspend_rust)(const struct stackful_context *ctx);
    /* version 1: wakes the coroutine's task and suspends once. */
    int (*yield_now)(const struct stackful_context *ctx);
    /* version 1: calls `start(user, complete, token)` and suspends the coroutine
     * until `complete(token)` was called. */
    int (*wait_callback)(const struct stackful_context *ctx, stackful_start_fn start,
                         void *user);
    /* version 2: charges `units` to the yield budget of the current poll (as Rust's
     * `stackful::budget::charge`); 1 if the coroutine should yield now (its budget is
     * used up and it can suspend here), else 0. Never suspends. */
    int (*charge)(const struct stackful_context *ctx, stackful_uptr units);
    /* version 2: 1 if the budget is used up and the coroutine can suspend here. */
    int (*should_yield)(const struct stackful_context *ctx);
    /* Later versions append here. */
};

struct stackful_context {
    /* version 1 */
    stackful_u32 version;
    stackful_u32 size;
    const struct stackful_context_ops *ops;
    /* Rust's `*mut core::task::Context` of the current poll (opaque to C); NULL while
     * the coroutine is being dropped. */
    void *rust_task_context;
    /* Non-zero if the thread was already panicking when this poll began; a poll made
     * by a `wait` of an outer coroutine copies the outer poll's value instead (Rust
     * copies use it to tell their own unwinds apart). */
    stackful_uptr thread_was_panicking;
    /* Later versions append here. */
};

/* The size of the fields of version 1 (what any valid context has at least). */
#define STACKFUL_CONTEXT_SIZE_V1 (2 * sizeof(stackful_u32) + 3 * sizeof(void *))

/* The per-thread slot (see above). */
struct stackful_slot {
    const struct stackful_context *context;
    stackful_uptr state;
};

/* The address of this thread's slot: the one symbol shared by every copy of the
 * crate (defined by each in csrc/context.c, weak except on Windows; the linker keeps
 * one). */
struct stackful_slot *stackful_context_slot(void);

/* The context of the coroutine poll running on this thread, or NULL. */
static inline const struct stackful_context *stackful_current(void) {
    const struct stackful_context *ctx = stackful_context_slot()->context;
    if (ctx != 0 && (ctx->version < 1 || ctx->size < STACKFUL_CONTEXT_SIZE_V1))
        return 0; /* not a valid context (cannot happen with a conforming copy) */
    return ctx;
}

/* 1 if the caller runs inside a coroutine poll (or drop) of any copy of stackful on
 * this thread, i.e. if stackful_yield_now/stackful_wait_callback can suspend. */
static inline int stackful_in_coroutine(void) {
    return stackful_current() != 0;
}

/* Lets other tasks of the executor run: wakes the coroutine's task and suspends the
 * coroutine once. STACKFUL_OK after being polled again; STACKFUL_NOT_IN_COROUTINE,
 * STACKFUL_BUSY or STACKFUL_CANCELLED (see above) otherwise. */
static inline int stackful_yield_now(void) {
    const struct stackful_context *ctx = stackful_current();
    if (ctx == 0)
        return STACKFUL_NOT_IN_COROUTINE;
    return ctx->ops->yield_now(ctx);
}

/* Runs a C callback-based operation to completion, suspending the coroutine (with
 * every C and Rust frame on its stack) until it completes: calls
 * `start(user, complete, token)`, then suspends until `complete(token)` has been
 * called (by an event loop, another thread, or `start` itself). Returns STACKFUL_OK
 * once it has. Outside a coroutine, or inside a poll that `wait` is running, `start`
 * is not called: STACKFUL_NOT_IN_COROUTINE or STACKFUL_BUSY. If the coroutine is
 * dropped meanwhile: STACKFUL_CANCELLED (the operation may still be running). */
static inline int stackful_wait_callback(stackful_start_fn start, void *user) {
    const struct stackful_context *ctx = stackful_current();
    if (ctx == 0)
        return STACKFUL_NOT_IN_COROUTINE;
    return ctx->ops->wait_callback(ctx, start, user);
}

/* Cooperative yield budget (version 2; see Rust's `stackful::budget`): call it at
 * the back-edges of CPU-bound loops with units proportional to the work done. Once
 * the coroutine has used its budget in the current poll (set per coroutine with
 * `stackful::Builder::yield_budget`, or the process default), it yields once, as
 * stackful_yield_now, and the budget is full again. STACKFUL_OK (whether or not it
 * yielded); STACKFUL_NOT_IN_COROUTINE, STACKFUL_UNSUPPORTED (a copy of stackful with
 * ABI version 1 runs the coroutine) or STACKFUL_CANCELLED otherwise. Where the
 * coroutine cannot suspend (inside a poll `wait` is running, during its drop) the
 * budget refills instead. */
static inline int stackful_consume(stackful_uptr units) {
    const struct stackful_context *ctx = stackful_current();
    if (ctx == 0)
        return STACKFUL_NOT_IN_COROUTINE;
    if (ctx->version < 2)
        return STACKFUL_UNSUPPORTED;
    if (!ctx->ops->charge(ctx, units))
        return STACKFUL_OK;
    return ctx->ops->yield_now(ctx);
}

/* Charges `units` without yielding: 1 if the coroutine should yield now (then call
 * stackful_yield_now at a point of your choice), 0 if not, or outside a coroutine of
 * a copy with ABI version 2 or later. */
static inline int stackful_charge(stackful_uptr units) {
    const struct stackful_context *ctx = stackful_current();
    if (ctx == 0 || ctx->version < 2)
        return 0;
    return ctx->ops->charge(ctx, units);
}

/* 1 if the coroutine has used up its budget and can yield here, else 0 (also
 * outside a coroutine of a copy with ABI version 2 or later). */
static inline int stackful_should_yield(void) {
    const struct stackful_context *ctx = stackful_current();
    if (ctx == 0 || ctx->version < 2)
        return 0;
    return ctx->ops->should_yield(ctx);
}

#ifdef __cplusplus
}
#endif

#endif /* STACKFUL_H */
