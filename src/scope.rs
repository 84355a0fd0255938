//! Scoped coroutines: [`scope`] and its handles.

use crate::fiber::OnLeak;
use crate::future::StackfulFuture;
use crate::generator::{Generator, GeneratorState, StackfulGenerator, YieldHandle};
use crate::stack::{Stack, StackStorage};
use crate::stream::{StackfulStream, StreamHandle};
use crate::Builder;
use futures_core::{FusedFuture, FusedStream, Stream};
use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Runs `f` with a [`Scope`] in which coroutines may borrow anything that outlives
/// this call; drops every coroutine made in it that is still alive before returning.
///
/// Scoped coroutines: generators, futures and streams that borrow from their
/// surroundings, made sound as `std::thread::scope` makes borrowing threads sound.
///
/// The safe constructors ([`StackfulGenerator::new`], [`stackful`](crate::stackful),
/// [`stream`](crate::stream()), [`Builder`]) require `'static` closures, because a
/// coroutine can be leaked while it is suspended and its frames must then not hold
/// borrows that end (see the crate docs, "Soundness"). A scope lifts that: the
/// coroutines made in it borrow anything that outlives the [`scope`] call, and the
/// scope owns them. Every one of them that is still alive when the closure passed to
/// [`scope`] returns (or panics) is dropped (unwound) before [`scope`] returns, even if
/// its handle was forgotten. The handles ([`ScopedGenerator`], [`ScopedFuture`],
/// [`ScopedStream`]) carry the scope's lifetime, so they cannot leave it.
///
/// ```
/// use stackful::generator::{Generator, GeneratorState, YieldHandle};
/// use std::pin::Pin;
///
/// enum Tree {
///     Leaf(u32),
///     Node(Box<Tree>, Box<Tree>),
/// }
///
/// fn walk(t: &Tree, y: &YieldHandle<u32>) {
///     match t {
///         Tree::Leaf(v) => y.yeet(*v),
///         Tree::Node(l, r) => {
///             walk(l, y);
///             walk(r, y);
///         }
///     }
/// }
///
/// let tree = Tree::Node(Box::new(Tree::Leaf(1)), Box::new(Tree::Leaf(2)));
/// let leaves: Vec<u32> = stackful::scope(|s| {
///     // Borrows `tree`: fine inside a scope.
///     s.generator(|y: &YieldHandle<u32>, ()| walk(&tree, y)).collect()
/// });
/// assert_eq!(leaves, [1, 2]);
/// ```
///
/// A scoped future is driven to completion inside the scope, by any executor that
/// does not need `'static` (`futures::executor::block_on`, tokio's
/// `Runtime::block_on`, ...):
///
/// ```
/// use stackful::wait;
///
/// let names = vec!["a".to_string(), "bc".to_string()];
/// let total = stackful::scope(|s| {
///     let lengths = s.future(|| names.iter().map(|n| wait(async { n.len() })).sum::<usize>());
///     futures::executor::block_on(lengths)
/// });
/// assert_eq!(total, 3);
/// ```
///
/// Handles cannot leave their scope, not even into an enclosing one:
///
/// ```compile_fail,E0521
/// use stackful::generator::YieldHandle;
/// stackful::scope(|outer| {
///     let mut a = outer.generator(|_: &YieldHandle<()>, ()| ());
///     stackful::scope(|inner| {
///         let mut b = inner.generator(|_: &YieldHandle<()>, ()| ());
///         std::mem::swap(&mut a, &mut b); // would move `b` out of its scope
///     });
/// });
/// ```
///
/// With `panic = "abort"` a suspended coroutine cannot be unwound, and a scoped one
/// cannot be leaked either (its borrows end with the scope): dropping one that is
/// suspended, or ending its scope with it suspended, aborts the process with a
/// message. Run scoped coroutines to completion there.
///
/// The coroutines are dropped in the reverse order of their creation, once `f` has
/// returned or panicked. Dropping a suspended coroutine unwinds its stack (see the
/// crate docs); a panic from a destructor during that unwind is propagated by `scope`
/// after every coroutine has been dropped (if `f` itself panicked, its panic wins).
///
/// `scope` may be called anywhere, also inside a coroutine, and scopes nest.
///
/// # Panics
/// With `f`'s panic, or the first panic of a destructor that ran while a coroutine
/// was unwound at the end of the scope.
pub fn scope<'env, T, F>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        // No drop glue (dropck would otherwise hold the borrows of 'scope to the end of
        // this function): `end_all` empties and frees the list before we return.
        registry: ManuallyDrop::new(Registry {
            live: RefCell::new(Vec::new()),
        }),
        _scope: PhantomData,
        _env: PhantomData,
    };
    // Ends every coroutine if `f` unwinds (their own panics are dropped: one panic
    // is already in flight).
    struct EndOnUnwind<'a, 'scope>(&'a Registry<'scope>);
    impl Drop for EndOnUnwind<'_, '_> {
        fn drop(&mut self) {
            drop(self.0.end_all());
        }
    }
    let guard = EndOnUnwind(&scope.registry);
    let result = f(&scope);
    std::mem::forget(guard);
    if let Some(payload) = scope.registry.end_all() {
        panic::resume_unwind(payload);
    }
    result
}

/// A scope for coroutines that borrow; see [`scope`].
///
/// `'scope` is the lifetime of the scope itself: coroutines made in it may borrow
/// anything that lives at least that long. `'env` is the lifetime of what the scope
/// borrows from outside (`'env: 'scope`).
pub struct Scope<'scope, 'env: 'scope> {
    registry: ManuallyDrop<Registry<'scope>>,
    // Invariant in both lifetimes, as `std::thread::Scope`: a handle of an inner scope
    // must not pass for one of an outer scope.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

/// The coroutines of a scope that are alive (not yet dropped by their handle).
///
/// Ownership of an [`Entry`] (a `Box` turned into a raw pointer by [`Scope::adopt`]):
/// while it is listed in `live`, the registry owns it and its handle refers to it;
/// when the handle is dropped first it takes the entry out of `live` and frees it;
/// when the scope ends first, [`end_all`](Registry::end_all) takes it out, ends the
/// coroutine and frees the entry once every coroutine of the scope has ended (handles
/// still inside coroutines being unwound may refer to it until then; afterwards no
/// handle can be used: they cannot outlive the scope, and a forgotten or leaked one is
/// never touched again).
struct Registry<'scope> {
    live: RefCell<Vec<NonNull<dyn Member + 'scope>>>,
}

/// The index of an entry that is not (or no longer) in its registry.
const UNREGISTERED: usize = usize::MAX;

/// A coroutine owned jointly by its handle and its scope's registry.
struct Entry<C> {
    /// Position in `Registry::live`, or [`UNREGISTERED`].
    index: Cell<usize>,
    /// `None` once dropped (by the handle or the scope, whichever came first).
    coroutine: RefCell<Option<C>>,
}

/// What a registry needs of an entry, whatever the coroutine's type.
trait Member {
    fn index(&self) -> &Cell<usize>;
    /// Whether the coroutine is being resumed right now (it is on the call chain).
    fn is_running(&self) -> bool;
    /// Drops the coroutine (unwinding it if suspended), if not done yet.
    fn end(&self);
}

impl<C> Member for Entry<C> {
    fn index(&self) -> &Cell<usize> {
        &self.index
    }

    fn is_running(&self) -> bool {
        self.coroutine.try_borrow_mut().is_err()
    }

    fn end(&self) {
        let Ok(mut slot) = self.coroutine.try_borrow_mut() else {
            // The coroutine is being resumed: it is on the current call chain, so it
            // can neither be unwound nor freed, and leaking it would let its borrows
            // dangle once the scope returns.
            crate::fiber::abort(
                "a scoped coroutine was dropped by its scope while it was running \
                 (suspended through an outer coroutine that was then dropped?)",
            );
        };
        let coroutine = slot.take();
        drop(slot);
        // Unwinds it if suspended; destructors on its stack may use the registry.
        drop(coroutine);
    }
}

impl<'scope> Registry<'scope> {
    fn insert(&self, member: NonNull<dyn Member + 'scope>) {
        let mut live = self.live.borrow_mut();
        // SAFETY: a fresh entry, owned by the registry from now on.
        unsafe { member.as_ref() }.index().set(live.len());
        live.push(member);
    }

    /// Takes `member` out of the registry: the caller owns it from now on. Returns
    /// false if it was not there (the scope's `end_all` owns it).
    fn remove(&self, member: &dyn Member) -> bool {
        let index = member.index().replace(UNREGISTERED);
        if index == UNREGISTERED {
            return false;
        }
        let mut live = self.live.borrow_mut();
        live.swap_remove(index);
        if let Some(moved) = live.get(index) {
            // SAFETY: listed entries are live (owned by the registry).
            unsafe { moved.as_ref() }.index().set(index);
        }
        true
    }

    /// Drops every coroutine still registered, newest first; returns the first panic
    /// payload that escaped a drop (each drop is attempted whatever the others do).
    ///
    /// A coroutine that is running cannot be dropped yet: it runs on top of an older
    /// suspended coroutine of this scope that resumed it (and was itself suspended
    /// from there, e.g. by `wait`). It is set aside: unwinding the older one unwinds
    /// through it and ends its run. Only one still running after every other drop
    /// aborts (see [`Member::end`]).
    fn end_all(&self) -> Option<Box<dyn Any + Send>> {
        // No unwind may leave this function: the coroutines not ended yet would be
        // leaked with their borrows about to end. Nothing below unwinds (each end and
        // each extra payload's drop is caught), but if anything ever did: abort.
        struct AbortOnUnwind;
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                crate::fiber::abort("a panic escaped the end of a stackful::scope");
            }
        }
        let guard = AbortOnUnwind;
        let mut first = None;
        let mut running = Vec::new();
        // Every entry taken out, freed once all have ended.
        let mut ended = Vec::new();
        let mut end = |member: NonNull<dyn Member + 'scope>| {
            // SAFETY: taken out of `live`, so owned here (in `ended`) until freed below;
            // ending it may drop handles, which then leave it alone (UNREGISTERED).
            let result = panic::catch_unwind(AssertUnwindSafe(|| unsafe { member.as_ref() }.end()));
            if let Err(payload) = result {
                match first {
                    None => first = Some(payload),
                    // Only the first panic is propagated; dropping another payload can
                    // itself panic: contain that too (a few times, then leak it).
                    Some(_) => {
                        let mut payload = payload;
                        for _ in 0..8 {
                            match panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
                                Ok(()) => return,
                                Err(again) => payload = again,
                            }
                        }
                        std::mem::forget(payload);
                    }
                }
            }
        };
        loop {
            // The borrow ends before the drop: destructors on the unwinding stack may
            // drop other handles of this scope, which unregister themselves, or make
            // new coroutines in it, which are ended here as well.
            let next = self.live.borrow_mut().pop();
            let Some(member) = next else {
                // Set aside while running (see above): by now the coroutines they ran
                // on have been unwound. Ending them may make new coroutines: go on
                // until both lists are empty.
                match running.pop() {
                    Some(member) => {
                        end(member);
                        continue;
                    }
                    None => break,
                }
            };
            ended.push(member);
            // SAFETY: owned here now (see above).
            let m = unsafe { member.as_ref() };
            m.index().set(UNREGISTERED);
            if m.is_running() {
                running.push(member);
            } else {
                end(member);
            }
        }
        for member in ended {
            // SAFETY: made by `Box::into_raw` in `adopt`, owned here, and no handle
            // can use it any more (see `Registry`).
            drop(unsafe { Box::from_raw(member.as_ptr()) });
        }
        // Empty now: free the list itself (no coroutine can be added any more, the
        // scope's closure has returned and every coroutine has ended).
        drop(self.live.take());
        std::mem::forget(guard);
        first
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Registers `coroutine` and returns the handle's reference to its entry.
    fn adopt<C: 'scope>(&'scope self, coroutine: C) -> EntryRef<'scope, C> {
        let entry = NonNull::from(Box::leak(Box::new(Entry {
            index: Cell::new(UNREGISTERED),
            coroutine: RefCell::new(Some(coroutine)),
        })));
        self.registry.insert(entry);
        EntryRef {
            entry,
            registry: &self.registry,
            _owns: PhantomData,
        }
    }

    /// A builder for coroutines of this scope with a chosen stack size or a custom
    /// stack, constructed fallibly.
    pub fn builder(&'scope self, builder: Builder) -> ScopedBuilder<'scope, 'env> {
        ScopedBuilder {
            scope: self,
            builder,
        }
    }

    /// Creates a generator running `f`, which may borrow anything that outlives the
    /// scope. See [`StackfulGenerator::new`] for how it runs; it is dropped at the end
    /// of the scope at the latest.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`builder`](Scope::builder) for the
    /// fallible form).
    #[track_caller]
    pub fn generator<Y, R, Resume, F>(&'scope self, f: F) -> ScopedGenerator<'scope, Y, R, Resume>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
        Resume: 'scope,
    {
        match self.builder(Builder::new()).generator(f) {
            Ok(g) => g,
            Err(e) => crate::allocation_failed("Scope::generator", e),
        }
    }

    /// Creates a future running `f`, which may borrow anything that outlives the
    /// scope. See [`stackful`](crate::stackful) for how it runs; drive it to
    /// completion inside the scope (it is dropped at the end of the scope at the
    /// latest).
    ///
    /// # Panics
    /// If no stack can be allocated (see [`builder`](Scope::builder) for the
    /// fallible form).
    #[track_caller]
    pub fn future<T, F>(&'scope self, f: F) -> ScopedFuture<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        match self.builder(Builder::new()).future(f) {
            Ok(fut) => fut,
            Err(e) => crate::allocation_failed("Scope::future", e),
        }
    }

    /// Creates a stream running `f`, which may borrow anything that outlives the
    /// scope. See [`stream`](crate::stream()) for how it runs.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`builder`](Scope::builder) for the
    /// fallible form).
    #[track_caller]
    pub fn stream<T, F>(&'scope self, f: F) -> ScopedStream<'scope, T>
    where
        F: FnOnce(&StreamHandle<T>) + 'scope,
        T: 'scope,
    {
        match self.builder(Builder::new()).stream(f) {
            Ok(s) => s,
            Err(e) => crate::allocation_failed("Scope::stream", e),
        }
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not borrowed while user code runs (the formatter's writer could suspend a
        // coroutine of this scope with the list borrowed, and the scope's end would
        // then fail to take it).
        let live = self.registry.live.borrow().len();
        f.debug_struct("Scope").field("live", &live).finish()
    }
}

/// Creates coroutines in a [`Scope`] with the settings of a [`Builder`], or on a
/// custom stack; made by [`Scope::builder`].
///
/// ```
/// use stackful::generator::YieldHandle;
/// use stackful::Builder;
///
/// let text = String::from("scoped");
/// let upper = stackful::scope(|s| -> std::io::Result<String> {
///     let g = s
///         .builder(Builder::new().stack_size(64 * 1024))
///         .generator(|y: &YieldHandle<char>, ()| text.chars().for_each(|c| y.yeet(c)))?;
///     Ok(g.map(|c| c.to_ascii_uppercase()).collect())
/// })?;
/// assert_eq!(upper, "SCOPED");
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ScopedBuilder<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    builder: Builder,
}

impl<'scope, 'env> ScopedBuilder<'scope, 'env> {
    fn stack(&self) -> io::Result<StackStorage<'static>> {
        StackStorage::default_with_size(
            self.builder.get_stack_size(),
            self.builder.get_save_buffer_size(),
        )
    }

    /// Creates a generator (see [`Scope::generator`]).
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::future`]).
    #[track_caller]
    pub fn generator<Y, R, Resume, F>(
        self,
        f: F,
    ) -> io::Result<ScopedGenerator<'scope, Y, R, Resume>>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
        Resume: 'scope,
    {
        let stack = self.stack()?;
        self.generator_on(stack, f)
    }

    /// Creates a future (see [`Scope::future`]).
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::future`]).
    #[track_caller]
    pub fn future<T, F>(self, f: F) -> io::Result<ScopedFuture<'scope, T>>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let stack = self.stack()?;
        self.future_on(stack, f)
    }

    /// Creates a stream (see [`Scope::stream`]).
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::future`]).
    #[track_caller]
    pub fn stream<T, F>(self, f: F) -> io::Result<ScopedStream<'scope, T>>
    where
        F: FnOnce(&StreamHandle<T>) + 'scope,
        T: 'scope,
    {
        let stack = self.stack()?;
        self.stream_on(stack, f)
    }

    /// Creates a generator on a custom stack, which may itself be borrowed for the
    /// scope (the builder's stack size is not used).
    ///
    /// # Errors
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn generator_with_stack<S, Y, R, Resume, F>(
        self,
        stack: S,
        f: F,
    ) -> io::Result<ScopedGenerator<'scope, Y, R, Resume>>
    where
        S: Stack + 'scope,
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
        Resume: 'scope,
    {
        let stack = StackStorage::custom(Box::new(stack))?;
        self.generator_on(stack, f)
    }

    /// Creates a future on a custom stack, which may itself be borrowed for the scope.
    ///
    /// # Errors
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn future_with_stack<S, T, F>(self, stack: S, f: F) -> io::Result<ScopedFuture<'scope, T>>
    where
        S: Stack + 'scope,
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        let stack = StackStorage::custom(Box::new(stack))?;
        self.future_on(stack, f)
    }

    /// Creates a stream on a custom stack, which may itself be borrowed for the scope.
    ///
    /// # Errors
    /// If the stack is smaller than 4096 bytes or its top is not 16-byte aligned.
    #[track_caller]
    pub fn stream_with_stack<S, T, F>(self, stack: S, f: F) -> io::Result<ScopedStream<'scope, T>>
    where
        S: Stack + 'scope,
        F: FnOnce(&StreamHandle<T>) + 'scope,
        T: 'scope,
    {
        let stack = StackStorage::custom(Box::new(stack))?;
        self.stream_on(stack, f)
    }

    #[cfg_attr(feature = "registry", track_caller)]
    fn generator_on<Y, R, Resume, F>(
        self,
        stack: StackStorage<'scope>,
        f: F,
    ) -> io::Result<ScopedGenerator<'scope, Y, R, Resume>>
    where
        F: FnOnce(&YieldHandle<Y, Resume>, Resume) -> R + 'scope,
        Y: 'scope,
        R: 'scope,
        Resume: 'scope,
    {
        // SAFETY: the scope owns the generator and drops it before `scope` returns,
        // i.e. before 'scope ends (the handle cannot leave the scope: 'scope is
        // invariant and local to the scope's closure). Dropping it unfinished where it
        // cannot be unwound aborts rather than leaks (OnLeak::Abort).
        let generator = unsafe { StackfulGenerator::on_stack(stack, OnLeak::Abort, f)? };
        Ok(ScopedGenerator {
            entry: self.scope.adopt(generator),
        })
    }

    #[cfg_attr(feature = "registry", track_caller)]
    fn future_on<T, F>(
        self,
        stack: StackStorage<'scope>,
        f: F,
    ) -> io::Result<ScopedFuture<'scope, T>>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        // SAFETY: as in `generator_on`.
        let future = unsafe { StackfulFuture::on_stack(stack, OnLeak::Abort, f)? }
            .budget_from(&self.builder);
        Ok(ScopedFuture {
            entry: self.scope.adopt(future),
        })
    }

    #[cfg_attr(feature = "registry", track_caller)]
    fn stream_on<T, F>(
        self,
        stack: StackStorage<'scope>,
        f: F,
    ) -> io::Result<ScopedStream<'scope, T>>
    where
        F: FnOnce(&StreamHandle<T>) + 'scope,
        T: 'scope,
    {
        // SAFETY: as in `generator_on`.
        let stream = unsafe { StackfulStream::on_stack(stack, OnLeak::Abort, f)? }
            .budget_from(&self.builder);
        Ok(ScopedStream {
            entry: self.scope.adopt(stream),
        })
    }
}

/// A handle's reference to its [`Entry`] (see [`Registry`] for who owns it).
struct EntryRef<'scope, C> {
    entry: NonNull<Entry<C>>,
    registry: &'scope Registry<'scope>,
    // Dropping the handle may drop the coroutine.
    _owns: PhantomData<C>,
}

impl<C> EntryRef<'_, C> {
    fn get(&self) -> &Entry<C> {
        // SAFETY: the entry lives at least as long as its handle (see `Registry`).
        unsafe { self.entry.as_ref() }
    }

    /// Runs `f` on the coroutine, or panics if its scope already dropped it (only
    /// possible from a destructor that runs while the scope ends).
    #[track_caller]
    fn with<T>(&self, what: &str, f: impl FnOnce(&mut C) -> T) -> T {
        let mut slot = self.get().coroutine.borrow_mut();
        match slot.as_mut() {
            Some(coroutine) => f(coroutine),
            None => ended(what),
        }
    }

    /// A backtrace of the suspended coroutine; `None` if it is being resumed (then
    /// it is running), already dropped by the scope, or not suspended.
    fn backtrace(&self, trace: impl FnOnce(&mut C) -> Option<Backtrace>) -> Option<Backtrace> {
        match self.get().coroutine.try_borrow_mut() {
            Ok(mut slot) => slot.as_mut().and_then(trace),
            Err(_) => None,
        }
    }

    /// Whether the coroutine is finished (`true` once dropped by the scope).
    fn complete(&self, complete: impl FnOnce(&C) -> bool) -> bool {
        match self.get().coroutine.try_borrow() {
            Ok(slot) => slot.as_ref().map_or(true, complete),
            // Being resumed: not complete.
            Err(_) => false,
        }
    }
}

impl<C> Drop for EntryRef<'_, C> {
    fn drop(&mut self) {
        let entry = self.get();
        // Out of the registry first (dropping the coroutine may create or drop other
        // coroutines of the scope), then drop it now.
        if !self.registry.remove(entry) {
            // The scope is ending and owns the entry.
            entry.end();
            return;
        }
        struct Free<C>(NonNull<Entry<C>>);
        impl<C> Drop for Free<C> {
            fn drop(&mut self) {
                // SAFETY: made by `Box::into_raw` in `adopt`, taken out of the
                // registry by this handle, which is going away: nothing else refers
                // to it. Freed even if ending the coroutine panics.
                drop(unsafe { Box::from_raw(self.0.as_ptr()) });
            }
        }
        let _free = Free(self.entry);
        entry.end();
    }
}

#[cold]
#[track_caller]
fn ended(what: &str) -> ! {
    panic!("{what} used after its scope dropped it (from a destructor run at the end of the scope)")
}

/// A generator made in a [`Scope`]: [`Scope::generator`].
///
/// It works like a [`StackfulGenerator`] (resume it through [`Generator::resume`],
/// iterate it when its resume and return types are `()`); dropping it drops the
/// generator (unwinding it if it is suspended). It cannot leave its scope; if it is
/// forgotten, the scope drops the generator when it ends.
pub struct ScopedGenerator<'scope, Y, R, Resume = ()> {
    entry: EntryRef<'scope, StackfulGenerator<'scope, Y, R, Resume>>,
}

impl<Y, R, Resume> ScopedGenerator<'_, Y, R, Resume> {
    /// Whether the generator has finished (returned or panicked).
    pub fn is_complete(&self) -> bool {
        self.entry.complete(|g| g.is_complete())
    }

    /// Whether the generator has been resumed at least once.
    pub fn is_started(&self) -> bool {
        match self.entry.get().coroutine.try_borrow() {
            Ok(slot) => slot.as_ref().map_or(true, |g| g.is_started()),
            Err(_) => true,
        }
    }

    /// A backtrace of the generator where it is suspended; `None` if it is not
    /// suspended. See [`StackfulGenerator::backtrace`].
    pub fn backtrace(&mut self) -> Option<Backtrace> {
        self.entry.backtrace(|g| g.backtrace())
    }
}

impl<Y, R, Resume> Generator<Resume> for ScopedGenerator<'_, Y, R, Resume> {
    type Yield = Y;
    type Return = R;

    /// Resumes the generator; see [`StackfulGenerator`]'s `resume`.
    ///
    /// # Panics
    /// As [`StackfulGenerator`]'s `resume`.
    fn resume(self: Pin<&mut Self>, arg: Resume) -> GeneratorState<Y, R> {
        self.entry
            .with("ScopedGenerator", |g| Pin::new(g).resume(arg))
    }
}

/// A scoped generator whose resume and return types are `()` yields an iterator of
/// its yielded values, as [`StackfulGenerator`] does.
impl<Y> Iterator for ScopedGenerator<'_, Y, (), ()> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        self.entry.with("ScopedGenerator", |g| g.next())
    }
}

impl<Y> std::iter::FusedIterator for ScopedGenerator<'_, Y, (), ()> {}

impl<Y, R, Resume> std::fmt::Debug for ScopedGenerator<'_, Y, R, Resume> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedGenerator")
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// A future made in a [`Scope`]: [`Scope::future`].
///
/// It works like a [`StackfulFuture`]; dropping it drops the coroutine (unwinding it
/// if it is suspended). It cannot leave its scope, so it can only be driven by
/// executors that do not require `'static` futures, inside the scope
/// (`futures::executor::block_on`, a tokio `Runtime::block_on`, a `select!` in a
/// future that is itself driven there, ...).
#[must_use = "futures do nothing unless polled"]
pub struct ScopedFuture<'scope, T> {
    entry: EntryRef<'scope, StackfulFuture<'scope, T>>,
}

impl<T> ScopedFuture<'_, T> {
    /// Whether the closure has finished (the future returned `Ready` or panicked).
    pub fn is_complete(&self) -> bool {
        self.entry.complete(|f| f.is_complete())
    }

    /// A backtrace of the coroutine where it is suspended; `None` if it is not
    /// suspended. See [`StackfulFuture::backtrace`].
    pub fn backtrace(&mut self) -> Option<Backtrace> {
        self.entry.backtrace(|f| f.backtrace())
    }
}

impl<T> Future for ScopedFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.entry.with("ScopedFuture", |f| Pin::new(f).poll(cx))
    }
}

impl<T> FusedFuture for ScopedFuture<'_, T> {
    fn is_terminated(&self) -> bool {
        self.is_complete()
    }
}

impl<T> std::fmt::Debug for ScopedFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedFuture")
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// A stream made in a [`Scope`]: [`Scope::stream`].
///
/// It works like a [`StackfulStream`]; dropping it drops the coroutine (unwinding it
/// if it is suspended). It cannot leave its scope.
#[must_use = "streams do nothing unless polled"]
pub struct ScopedStream<'scope, T> {
    entry: EntryRef<'scope, StackfulStream<'scope, T>>,
}

impl<T> ScopedStream<'_, T> {
    /// Whether the stream has ended (returned `Ready(None)`) or panicked.
    pub fn is_complete(&self) -> bool {
        self.entry.complete(|s| s.is_complete())
    }

    /// A backtrace of the coroutine where it is suspended; `None` if it is not
    /// suspended. See [`StackfulStream::backtrace`].
    pub fn backtrace(&mut self) -> Option<Backtrace> {
        self.entry.backtrace(|s| s.backtrace())
    }
}

impl<T> Stream for ScopedStream<'_, T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.entry
            .with("ScopedStream", |s| Pin::new(s).poll_next(cx))
    }
}

impl<T> FusedStream for ScopedStream<'_, T> {
    fn is_terminated(&self) -> bool {
        self.is_complete()
    }
}

impl<T> std::fmt::Debug for ScopedStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedStream")
            .field("complete", &self.is_complete())
            .finish()
    }
}
