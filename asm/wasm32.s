# stackful: coroutine switching for wasm32, on top of Binaryen's Asyncify.
#
# WebAssembly has no way to swap the native (engine) stack, so a coroutine is
# suspended by *unwinding* its frames into a save buffer and resumed by *rewinding*
# them from it. The module must be post-processed with `wasm-opt --asyncify`, which
# instruments every function that may be on the stack during a switch and replaces
# the four `asyncify.*` imports declared below with its own functions.
#
# Calling convention
# ------------------
# The functions follow the wasm32 C ABI (arguments and results are wasm values;
# no shadow-stack frame is used by any of them):
#
#   stackful_wasm_resume(arg: i32, rec: i32, fresh: i32) -> i32
#       Called by the resumer. Starts (fresh = 1) or resumes (fresh = 0) the
#       coroutine whose record is `rec`, handing it `arg`; returns the value the
#       coroutine passes to its next `stackful_wasm_suspend` (or 0 when the call
#       returns only to continue an unwind, see "Nesting").
#   stackful_wasm_suspend(arg: i32, target: i32) -> i32
#       Called on a coroutine. Suspends every coroutine from the innermost running
#       one up to and including `target`, handing `arg` to `target`'s resumer;
#       returns the `arg` of the `stackful_wasm_resume` that resumes it. If it
#       returns -1 the module was not instrumented by Asyncify (the caller did not
#       unwind); Rust reports that.
#   stackful_wasm_run(rec: i32, fresh: i32) -> i32   (internal)
#
# "Registers" saved
# -----------------
# Wasm locals are saved and restored by the Asyncify instrumentation itself. The one
# piece of machine state Asyncify does not restore is the shadow-stack pointer
# `__stack_pointer` (global 0, where LLVM keeps address-taken locals): instrumented
# functions skip their prologue and epilogue while unwinding and rewinding. So each
# coroutine record keeps the coroutine's `__stack_pointer` at its suspension
# (`saved_sp`) and its resumer's (`resumer_sp`), and the code below swaps them.
#
# Asyncify's roles (Binaryen src/passes/Asyncify.cpp)
# ---------------------------------------------------
# A function that calls `start_unwind` or `stop_rewind` is the "top-most runtime":
# it is not instrumented, but its callers are. A function that calls `stop_unwind`
# or `start_rewind` is the "bottom-most runtime": neither it nor (because of it) its
# callers are instrumented. Hence three functions: `stackful_wasm_run` (bottom-most:
# it calls the coroutine's entry, stops the unwind that comes back out of it and
# starts rewinds) and the two top-most ones, `stackful_wasm_suspend` and
# `stackful_wasm_resume`. `stackful_wasm_resume` wraps `run` and is top-most so that
# the frames that call it (a coroutine resuming a nested one) are instrumented: an
# unwind can pass through them. These are separate functions and must stay so (an
# assembler file is never inlined by rustc; do not run wasm-opt inlining before
# `--asyncify`).
#
# Coroutine record (in linear memory at the top of the coroutine's stack; `rec` is
# the `link` pointer of src/fiber.rs, which keeps its own flag words below it):
#
#   rec + 0   saved_sp     the coroutine's __stack_pointer while it is suspended
#                          (initialised to the top of its shadow stack)
#   rec + 4   resumer_sp   __stack_pointer of the frame that (re)entered it
#   rec + 8   parent       `current` when it was (re)entered (0: the main stack)
#   rec + 12  child        the nested coroutine that was running inside it when an
#                          unwind passed through (see "Nesting")
#   rec + 16  entry        table index of `entry(arg: i32, link: i32)`, its first
#                          function; calling it again while rewinding rebuilds its frames
#   rec + 20  data         address of its Asyncify data: { cur: i32, end: i32 }
#                          followed by the save buffer (data + 8 .. end); the word at
#                          `end` is a canary below the shadow stack
#
# Coroutine stack (addresses grow upwards):
#
#   stack top  -> +----------------------------------+
#                 | closure, record, flags (Rust)    |
#                 +----------------------------------+ <- initial saved_sp
#                 | shadow stack, grows down         |
#                 |              ...                 |
#   end + 16   -> +----------------------------------+ lowest shadow-stack address
#                 | canary word at `end`             |
#                 +----------------------------------+ <- end
#                 | save buffer, grows up            |
#                 +----------------------------------+ <- data + 8
#   bottom     -> | data: cur, end                   |
#                 +----------------------------------+
#
# The save buffer sits below the shadow stack so that an unwind that overflows it
# writes into this coroutine's own (suspending) stack before anything else; Asyncify
# does not check the bound while it unwinds, `run` checks it as soon as the unwind
# is complete and reports the overflow (stackful_wasm_save_buffer_overflow) before
# anything reads the damaged memory. A shadow-stack overflow is caught at the next
# switch by the canary (stackful_wasm_stack_overflow).
#
# Nesting
# -------
# Memory state (in .bss, below): `current` (record of the innermost running
# coroutine, 0 on the main stack), `target` (the coroutine a suspend returns from),
# `rewinding` (a rewind is in progress) and `transfer` (the value being passed).
# A suspend always starts unwinding the innermost coroutine into its own buffer.
# When that unwind reaches the `run` that entered it and that coroutine is not the
# target, `run` stops the unwind and `stackful_wasm_resume` starts a new one with
# the parent's buffer, recording the child in `parent.child`; the parent's frames
# unwind next, and so on up to the target. A resume rewinds the target's frames;
# when the rewind reaches the `stackful_wasm_resume` call through which the unwind
# passed, that call (seeing `rewinding`) stops it and rewinds `current.child` the
# same way; the innermost `stackful_wasm_suspend` ends the rewind and returns.

        .globaltype __stack_pointer, i32

        .functype asyncify_start_unwind (i32) -> ()
        .import_module asyncify_start_unwind, asyncify
        .import_name asyncify_start_unwind, start_unwind
        .functype asyncify_stop_unwind () -> ()
        .import_module asyncify_stop_unwind, asyncify
        .import_name asyncify_stop_unwind, stop_unwind
        .functype asyncify_start_rewind (i32) -> ()
        .import_module asyncify_start_rewind, asyncify
        .import_name asyncify_start_rewind, start_rewind
        .functype asyncify_stop_rewind () -> ()
        .import_module asyncify_stop_rewind, asyncify
        .import_name asyncify_stop_rewind, stop_rewind

        # Reporters in src/arch/wasm32.rs (they print and abort).
        .functype stackful_wasm_save_buffer_overflow (i32, i32) -> ()
        .functype stackful_wasm_stack_overflow (i32) -> ()
        .functype stackful_wasm_bad_suspend () -> ()

        .section .bss.stackful_wasm_state,"",@
        .p2align 2
stackful_wasm_current:
        .skip 4
        .size stackful_wasm_current, 4
stackful_wasm_target:
        .skip 4
        .size stackful_wasm_target, 4
stackful_wasm_rewinding:
        .skip 4
        .size stackful_wasm_rewinding, 4
stackful_wasm_transfer:
        .skip 4
        .size stackful_wasm_transfer, 4
        # Read by Rust (stack::stats): the most bytes any save buffer has held.
        .globl stackful_wasm_save_peak
        .type stackful_wasm_save_peak,@object
stackful_wasm_save_peak:
        .skip 4
        .size stackful_wasm_save_peak, 4

# ---------------------------------------------------------------------------------
# stackful_wasm_run(rec, fresh) -> i32: 1 if the unwind that ended the call must go
# on through the caller's frames (the suspend's target is further out), else 0.
# Locals: 0 rec, 1 fresh, 2 data, 3 scratch.
        .section .text.stackful_wasm_run,"",@
        .type stackful_wasm_run,@function
stackful_wasm_run:
        .functype stackful_wasm_run (i32, i32) -> (i32)
        .local i32, i32
        # rec.resumer_sp = __stack_pointer
        local.get 0
        global.get __stack_pointer
        i32.store 4
        # rec.parent = current; current = rec
        local.get 0
        i32.const 0
        i32.load stackful_wasm_current
        i32.store 8
        i32.const 0
        local.get 0
        i32.store stackful_wasm_current
        # data = rec.data, kept in a local: the record may be damaged by an overflow
        local.get 0
        i32.load 20
        local.set 2
        # Switch to the coroutine's shadow stack.
        local.get 0
        i32.load 0
        global.set __stack_pointer
        local.get 1
        i32.eqz
        if
            # Resume: rebuild its frames from its buffer.
            i32.const 0
            i32.const 1
            i32.store stackful_wasm_rewinding
            local.get 2
            call asyncify_start_rewind
        end_if
        # entry(transfer, rec). It never returns normally: it comes back here only
        # when its frames have been unwound (a suspend, or its last switch).
        i32.const 0
        i32.load stackful_wasm_transfer
        local.get 0
        local.get 0
        i32.load 16
        call_indirect (i32, i32) -> ()
        # Did the unwind overflow the save buffer (data.cur > data.end)?
        local.get 2
        i32.load 0
        local.get 2
        i32.load 4
        i32.gt_u
        if
            # bytes needed = cur - (data + 8)
            local.get 2
            i32.load 0
            local.get 2
            i32.const 8
            i32.add
            i32.sub
            local.set 3
            # Reset cur so that stop_unwind's own bound check does not trap first.
            local.get 2
            local.get 2
            i32.const 8
            i32.add
            i32.store 0
            call asyncify_stop_unwind
            local.get 3
            # buffer size = end - (data + 8)
            local.get 2
            i32.load 4
            local.get 2
            i32.const 8
            i32.add
            i32.sub
            call stackful_wasm_save_buffer_overflow
            unreachable
        end_if
        call asyncify_stop_unwind
        # peak = max(peak, cur - (data + 8)): the high-water mark of all save buffers
        local.get 2
        i32.load 0
        local.get 2
        i32.const 8
        i32.add
        i32.sub
        local.tee 3
        i32.const 0
        i32.load stackful_wasm_save_peak
        i32.gt_u
        if
            i32.const 0
            local.get 3
            i32.store stackful_wasm_save_peak
        end_if
        # Is the canary below the shadow stack intact?
        local.get 2
        i32.load 4
        i32.load 0
        i32.const 0x5afe57ac    # CANARY in src/arch/wasm32.rs
        i32.ne
        if
            local.get 0
            call stackful_wasm_stack_overflow
            unreachable
        end_if
        # Back on the resumer's shadow stack, with its coroutine current.
        local.get 0
        i32.load 4
        global.set __stack_pointer
        i32.const 0
        local.get 0
        i32.load 8
        i32.store stackful_wasm_current
        i32.const 0
        i32.load stackful_wasm_target
        local.get 0
        i32.ne
        end_function

# ---------------------------------------------------------------------------------
# stackful_wasm_resume(arg, rec, fresh) -> i32
# Locals: 0 arg, 1 rec, 2 fresh, 3 scratch.
        .section .text.stackful_wasm_resume,"",@
        .globl stackful_wasm_resume
        .type stackful_wasm_resume,@function
stackful_wasm_resume:
        .functype stackful_wasm_resume (i32, i32, i32) -> (i32)
        .local i32
        i32.const 0
        i32.load stackful_wasm_rewinding
        if
            # Called again while the frames of `current` are being rewound: they are
            # rebuilt up to here, so that rewind is over; now rebuild the nested
            # coroutine that was running inside this call (our arguments are stale).
            call asyncify_stop_rewind
            i32.const 0
            i32.load stackful_wasm_current
            i32.load 12
            local.set 1
            i32.const 0
            local.set 2
        else
            i32.const 0
            local.get 0
            i32.store stackful_wasm_transfer
        end_if
        local.get 1
        local.get 2
        call stackful_wasm_run
        if
            # The suspend targets a coroutine further out: unwind the frames of the
            # one that called us (now `current`) into its own buffer, and remember
            # which coroutine to rebuild inside this call when it is resumed.
            i32.const 0
            i32.load stackful_wasm_current
            local.tee 3
            i32.eqz
            if
                call stackful_wasm_bad_suspend
                unreachable
            end_if
            local.get 3
            local.get 1
            i32.store 12
            local.get 3
            global.get __stack_pointer
            i32.store 0
            local.get 3
            i32.load 20
            local.tee 3
            local.get 3
            i32.const 8
            i32.add
            i32.store 0
            local.get 3
            call asyncify_start_unwind
            i32.const 0
            return
        end_if
        i32.const 0
        i32.load stackful_wasm_transfer
        end_function

# ---------------------------------------------------------------------------------
# stackful_wasm_suspend(arg, target) -> i32
# Locals: 0 arg, 1 target, 2 scratch.
        .section .text.stackful_wasm_suspend,"",@
        .globl stackful_wasm_suspend
        .type stackful_wasm_suspend,@function
stackful_wasm_suspend:
        .functype stackful_wasm_suspend (i32, i32) -> (i32)
        .local i32
        i32.const 0
        i32.load stackful_wasm_rewinding
        if
            # Called again at the end of a rewind: the coroutine is resumed.
            i32.const 0
            i32.const 0
            i32.store stackful_wasm_rewinding
            call asyncify_stop_rewind
            i32.const 0
            i32.load stackful_wasm_transfer
            return
        end_if
        i32.const 0
        local.get 0
        i32.store stackful_wasm_transfer
        i32.const 0
        local.get 1
        i32.store stackful_wasm_target
        # Unwind the innermost running coroutine into its buffer, from the start.
        i32.const 0
        i32.load stackful_wasm_current
        local.tee 2
        i32.eqz
        if
            call stackful_wasm_bad_suspend
            unreachable
        end_if
        local.get 2
        global.get __stack_pointer
        i32.store 0
        local.get 2
        i32.load 20
        local.tee 2
        local.get 2
        i32.const 8
        i32.add
        i32.store 0
        local.get 2
        call asyncify_start_unwind
        # An instrumented caller never sees this value: it unwinds right away.
        i32.const -1
        end_function
