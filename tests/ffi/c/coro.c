/*
 * C code that suspends stackful coroutines through include/stackful.h: called from
 * Rust (tests/ffi/tests/c_header.rs) inside `stackful(..)` of either copy of the
 * crate. Plain C functions with the platform's C ABI; no assembly, no libc.
 *
 * A tiny "event loop" (`struct c_loop`, memory owned by the Rust test) stands for a
 * C library with its own loop: an operation started through stackful_wait_callback
 * parks its completion callback there, and the test completes it later.
 */
#include "stackful.h"

int c_in_coroutine(void) { return stackful_in_coroutine(); }

int c_yield_now(void) { return stackful_yield_now(); }

/* Yields `n` times from `depth` nested C frames, each keeping a local that must
 * survive every suspension. Returns the sum of the locals plus the yields made, or
 * the first error code. */
int c_yield_nested(int n, int depth) {
    volatile int local = depth * 1000;
    if (depth > 0) {
        int r = c_yield_nested(n, depth - 1);
        return r < 0 ? r : r + local;
    }
    int yields = 0;
    for (int i = 0; i < n; i++) {
        int rc = stackful_yield_now();
        if (rc != STACKFUL_OK)
            return rc;
        yields++;
    }
    return yields + local;
}

struct c_loop {
    stackful_complete_fn complete; /* the parked operation, if any */
    void *token;
    int value;   /* what the operation "read" */
    int started; /* how many operations were started */
};

static void start_read(void *user, stackful_complete_fn complete, void *token) {
    struct c_loop *l = user;
    l->complete = complete;
    l->token = token;
    l->started++;
}

/* Completes the parked operation with `value`; 0 if none was parked. */
int c_loop_complete(struct c_loop *l, int value) {
    stackful_complete_fn f = l->complete;
    if (f == 0)
        return 0;
    l->complete = 0;
    l->value = value;
    f(l->token);
    return 1;
}

/* Reads one value through the loop from `depth` nested C frames: returns the value
 * plus 100 * (1 + 2 + ... + depth) from the frames' locals, or an error code. */
int c_read_nested(struct c_loop *l, int depth) {
    volatile int local = depth * 100;
    if (depth > 0) {
        int r = c_read_nested(l, depth - 1);
        return r < 0 ? r : r + local;
    }
    int rc = stackful_wait_callback(start_read, l);
    if (rc != STACKFUL_OK)
        return rc;
    return l->value + local;
}

static void start_done(void *user, stackful_complete_fn complete, void *token) {
    *(int *)user += 1;
    complete(token); /* completes before returning: no suspension needed */
}

/* An operation that completes inside `start`. */
int c_wait_immediate(int *counter) { return stackful_wait_callback(start_done, counter); }

/* The ABI version and operations-table check a C user would make. */
int c_context_version(void) {
    const struct stackful_context *ctx = stackful_current();
    return ctx ? (int)ctx->version : 0;
}

/* An "interpreter" loop of `steps` steps, charging one unit of the coroutine's yield
 * budget per step (version 2). Returns the steps run plus 1000 times the steps at
 * which stackful_should_yield was 1 just before the charge that yielded, or the first
 * error code. */
int c_spin(int steps) {
    volatile int done = 0; /* survives every budget yield */
    int should = 0;
    for (int i = 0; i < steps; i++) {
        done++;
        if (stackful_charge(1)) {
            should += stackful_should_yield();
            int rc = stackful_yield_now();
            if (rc != STACKFUL_OK)
                return rc;
            continue;
        }
        int rc = stackful_consume(0);
        if (rc != STACKFUL_OK)
            return rc;
    }
    return done + 1000 * should;
}

/* stackful_consume(units) once: its return code. */
int c_consume(int units) { return stackful_consume((stackful_uptr)units); }
