/*
 * The one symbol that every copy of stackful in a program shares (src/context.rs,
 * include/stackful.h): the address of this thread's slot, which holds the context of
 * the coroutine poll running on it and the poll state.
 *
 * Calling convention: the platform's C ABI; no stack frame worth describing (a leaf
 * that returns the address of a thread-local).
 *
 * Linkage: weak. Every copy of the crate compiles this file and defines the symbol;
 * the linker keeps one definition (the first it meets) and every copy calls it, so
 * they all read and write the same slot. Any definition will do, which is why it must
 * never change: version the context, never this function. On Windows (PE/COFF, GNU
 * ld) a weak definition in a static library does not satisfy an undefined reference
 * (the member is never loaded for it), so there the definition is an ordinary one:
 * it sits alone in its object file, and a linker loads an archive member only for a
 * symbol still undefined, so the second copy's member is never loaded either (unless
 * forced with --whole-archive, which then reports the duplicate instead of merging
 * silently).
 *
 * Thread-locals and coroutines: a coroutine may be resumed on another thread, so
 * callers must not keep the returned address across a suspension. It is a real call
 * (noinline, and across a language boundary), so each call computes the address on
 * the thread that makes it; and the empty asm statement that clobbers memory keeps an
 * optimiser that can see this body (cross-language LTO) from deducing that it only
 * computes an address, which would let it merge two calls across a context switch.
 */
#include "stackful.h"

#if defined(__wasm__) && !defined(__wasm_atomics__)
/* Single-threaded WebAssembly (wasm32-wasip1): a plain global. */
#define STACKFUL_THREAD_LOCAL
#else
#define STACKFUL_THREAD_LOCAL __thread
#endif

/*
 * TLS model: initial-exec where the object format has it (ELF), so the address is
 * the thread pointer plus a constant fixed at load time: two instructions, where the
 * default model for position-independent code (general-dynamic, relaxed by the
 * linker in an executable) takes four and a stack adjustment. The cost: a shared
 * library holding this symbol takes its 16 bytes from the static TLS block, which a
 * library loaded with dlopen() may find full (dlopen then fails with "cannot
 * allocate memory in static TLS block"; glibc reserves spare room for this).
 */
#if defined(__ELF__) && !defined(__wasm__)
#define STACKFUL_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define STACKFUL_TLS_MODEL
#endif

#if defined(_WIN32)
#define STACKFUL_SHARED_LINKAGE __attribute__((noinline))
#else
#define STACKFUL_SHARED_LINKAGE __attribute__((weak, noinline))
#endif

#if defined(__ELF__) && !defined(__wasm__)
/*
 * ELF: the slot itself is a second shared symbol, a weak thread-local that every copy
 * defines (the linker keeps one, like the function's), so that Rust code on Linux
 * x86_64 and aarch64 reads it inline (src/context.rs, `tls`: an asm! block that
 * computes its address from the thread pointer each time it runs) instead of calling
 * the function on the hot paths. The function returns its address, so both ways reach
 * the same slot; both names are fixed for good.
 */
__attribute__((weak)) STACKFUL_THREAD_LOCAL STACKFUL_TLS_MODEL struct stackful_slot
    stackful_slot_tls;

STACKFUL_SHARED_LINKAGE struct stackful_slot *stackful_context_slot(void) {
    __asm__ __volatile__("" ::: "memory");
    return &stackful_slot_tls;
}
#else
STACKFUL_SHARED_LINKAGE struct stackful_slot *stackful_context_slot(void) {
    static STACKFUL_THREAD_LOCAL STACKFUL_TLS_MODEL struct stackful_slot slot;
    __asm__ __volatile__("" ::: "memory");
    return &slot;
}
#endif
