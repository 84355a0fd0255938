//! `compile_fail` doctests: what the safe API must refuse (issue #14, "Soundness").
//!
//! Each case is a program that would reach undefined behaviour if it compiled, most of
//! them the "forget a coroutine suspended inside `std::thread::scope`" data race of the
//! crate docs' "Soundness" section. Each names the error code it must fail with:
//! `cargo +nightly test --doc` checks the codes (stable rustdoc only checks that the
//! case fails to compile); `.ci/run` runs both.

/// `StackfulGenerator::new`: the closure borrows.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulGenerator::new(move |y: &YieldHandle<()>, ()| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yeet(()); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).resume(());
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case01;

/// `StackfulGenerator::with_stack`: the closure borrows.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// /// A stack that lives in a boxed buffer (owned, 'static).
/// struct Owned(Box<[u128]>);
/// // SAFETY: the buffer is ours and stays put while the box lives.
/// unsafe impl stackful::stack::Stack for Owned {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// fn stack() -> Owned { Owned(vec![0u128; 4096].into_boxed_slice()) }
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulGenerator::with_stack(stack(), move |y: &YieldHandle<()>, ()| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yeet(()); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).resume(());
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case02;

/// `Builder::generator`: the closure borrows.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = stackful::Builder::new().generator(move |y: &YieldHandle<()>, ()| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yeet(()); // suspended inside the scope: the thread is not joined
///         });
///     }).unwrap();
///     let _ = Pin::new(&mut c).resume(());
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case03;

/// `stackful`: the closure borrows.
///
/// ```compile_fail,E0597
/// use std::future::Future;
/// use stackful::future::StackfulFuture;
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = stackful::stackful(move || {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             stackful::yield_now(); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case04;

/// `StackfulFuture::new`: the closure borrows.
///
/// ```compile_fail,E0597
/// use std::future::Future;
/// use stackful::future::StackfulFuture;
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulFuture::new(move || {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             stackful::yield_now(); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case05;

/// `StackfulFuture::with_stack`: the closure borrows.
///
/// ```compile_fail,E0597
/// use std::future::Future;
/// use stackful::future::StackfulFuture;
/// /// A stack that lives in a boxed buffer (owned, 'static).
/// struct Owned(Box<[u128]>);
/// // SAFETY: the buffer is ours and stays put while the box lives.
/// unsafe impl stackful::stack::Stack for Owned {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// fn stack() -> Owned { Owned(vec![0u128; 4096].into_boxed_slice()) }
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulFuture::with_stack(stack(), move || {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             stackful::yield_now(); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case06;

/// `Builder::future`: the closure borrows.
///
/// ```compile_fail,E0597
/// use std::future::Future;
/// use stackful::future::StackfulFuture;
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = stackful::Builder::new().future(move || {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             stackful::yield_now(); // suspended inside the scope: the thread is not joined
///         });
///     }).unwrap();
///     let _ = Pin::new(&mut c).poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case07;

/// `stream`: the closure borrows.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = stackful::stream(move |y: &StreamHandle<()>| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yield_item(()); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll_next(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case08;

/// `StackfulStream::new`: the closure borrows.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulStream::new(move |y: &StreamHandle<()>| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yield_item(()); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll_next(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case09;

/// `StackfulStream::with_stack`: the closure borrows.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// /// A stack that lives in a boxed buffer (owned, 'static).
/// struct Owned(Box<[u128]>);
/// // SAFETY: the buffer is ours and stays put while the box lives.
/// unsafe impl stackful::stack::Stack for Owned {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// fn stack() -> Owned { Owned(vec![0u128; 4096].into_boxed_slice()) }
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = StackfulStream::with_stack(stack(), move |y: &StreamHandle<()>| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yield_item(()); // suspended inside the scope: the thread is not joined
///         });
///     });
///     let _ = Pin::new(&mut c).poll_next(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case10;

/// `Builder::stream`: the closure borrows.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// use std::pin::Pin;
/// let mut s = "Happy".to_owned();
/// let (tx1, rx1) = std::sync::mpsc::sync_channel::<()>(1);
/// let (tx2, rx2) = std::sync::mpsc::sync_channel::<String>(1);
/// {
///     let s = s.as_str();
///     let mut c = stackful::Builder::new().stream(move |y: &StreamHandle<()>| {
///         std::thread::scope(move |scope| {
///             scope.spawn(move || {
///                 rx1.recv().unwrap();
///                 tx2.send(s.to_owned()).unwrap();
///             });
///             y.yield_item(()); // suspended inside the scope: the thread is not joined
///         });
///     }).unwrap();
///     let _ = Pin::new(&mut c).poll_next(&mut std::task::Context::from_waker(std::task::Waker::noop()));
///     std::mem::forget(c); // the borrow of `s` ends, the thread still holds it
/// }
/// s.clear();
/// s.push_str("Sad");
/// tx1.send(()).unwrap();
/// println!("{}", rx2.recv().unwrap()); // would print "Sadpy": a data race
/// ```
pub struct Case11;

/// A `'static` generator whose resume values borrow.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// use std::pin::Pin;
/// let mut g = StackfulGenerator::new(|y: &YieldHandle<(), &str>, first: &str| {
///     let mut s = first;
///     loop {
///         s = y.yeet(());
///         let _ = s.len();
///     }
/// });
/// let local = String::from("borrowed");
/// let _ = Pin::new(&mut g).resume(local.as_str());
/// std::mem::forget(g);
/// ```
pub struct Case12;

/// A `'static` generator whose yielded values carry borrows back in.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// use std::sync::mpsc::{channel, Sender};
/// let mut g = StackfulGenerator::new(|y: &YieldHandle<Sender<&str>>, ()| {
///     let (tx, rx) = channel();
///     y.yeet(tx);
///     let s: &str = rx.recv().unwrap();
///     let _ = s.len();
/// });
/// let tx = g.next().unwrap();
/// let local = String::from("borrowed");
/// tx.send(local.as_str()).unwrap();
/// std::mem::forget(g);
/// ```
pub struct Case13;

/// A `'static` stream whose items carry borrows back in.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// use std::sync::mpsc::{channel, Sender};
/// let s = stackful::stream(|y: &StreamHandle<Sender<&str>>| {
///     let (tx, rx) = channel();
///     y.yield_item(tx);
///     let s: &str = rx.recv().unwrap();
///     let _ = s.len();
/// });
/// let mut s = Box::pin(s);
/// let std::task::Poll::Ready(Some(tx)) = s.as_mut().poll_next(&mut std::task::Context::from_waker(std::task::Waker::noop())) else { panic!() };
/// let local = String::from("borrowed");
/// tx.send(local.as_str()).unwrap();
/// std::mem::forget(s);
/// ```
pub struct Case14;

/// `StackfulGenerator::with_stack`: a borrowed stack.
///
/// ```compile_fail,E0597
/// use stackful::generator::{Generator, StackfulGenerator, YieldHandle};
/// /// A stack borrowed from the caller (corosensei #43).
/// struct Borrowed<'a>(&'a mut [u128]);
/// // SAFETY: the buffer is borrowed for the stack's whole life.
/// unsafe impl stackful::stack::Stack for Borrowed<'_> {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// let mut memory = vec![0u128; 4096];
/// let mut g = StackfulGenerator::with_stack(Borrowed(&mut memory), |y: &YieldHandle<()>, ()| y.yeet(()));
/// let _ = g.next();
/// std::mem::forget(g);
/// ```
pub struct Case15;

/// `StackfulFuture::with_stack`: a borrowed stack.
///
/// ```compile_fail,E0597
/// use std::future::Future;
/// use stackful::future::StackfulFuture;
/// /// A stack borrowed from the caller (corosensei #43).
/// struct Borrowed<'a>(&'a mut [u128]);
/// // SAFETY: the buffer is borrowed for the stack's whole life.
/// unsafe impl stackful::stack::Stack for Borrowed<'_> {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// let mut memory = vec![0u128; 4096];
/// let f = StackfulFuture::with_stack(Borrowed(&mut memory), || stackful::yield_now());
/// std::mem::forget(f);
/// ```
pub struct Case16;

/// `StackfulStream::with_stack`: a borrowed stack.
///
/// ```compile_fail,E0597
/// use futures_core::Stream;
/// use stackful::{StackfulStream, StreamHandle};
/// /// A stack borrowed from the caller (corosensei #43).
/// struct Borrowed<'a>(&'a mut [u128]);
/// // SAFETY: the buffer is borrowed for the stack's whole life.
/// unsafe impl stackful::stack::Stack for Borrowed<'_> {
///     fn top(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr_range().end as *mut u8).unwrap()
///     }
///     fn bottom(&self) -> std::ptr::NonNull<u8> {
///         std::ptr::NonNull::new(self.0.as_ptr() as *mut u8).unwrap()
///     }
/// }
/// let mut memory = vec![0u128; 4096];
/// let s = StackfulStream::with_stack(Borrowed(&mut memory), |y: &StreamHandle<()>| y.yield_item(()));
/// std::mem::forget(s);
/// ```
pub struct Case17;

/// `io::AsyncReader::new`: the reader borrows.
///
/// ```compile_fail,E0597
/// let data = vec![1u8, 2, 3];
/// let r = stackful::io::AsyncReader::new(&data[..]);
/// std::mem::forget(r);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case18;

/// `io::AsyncReader::with_capacity`: the reader borrows.
///
/// ```compile_fail,E0597
/// let data = vec![1u8, 2, 3];
/// let r = stackful::io::AsyncReader::with_capacity(16, &data[..]);
/// std::mem::forget(r);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case19;

/// `io::AsyncReader::lazy`: `make` borrows.
///
/// ```compile_fail,E0597
/// let data = vec![1u8, 2, 3];
/// let d = &data[..];
/// let r = stackful::io::AsyncReader::lazy(move || Ok(d));
/// std::mem::forget(r);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case20;

/// `io::AsyncReader::with_builder`: `make` borrows.
///
/// ```compile_fail,E0597
/// let data = vec![1u8, 2, 3];
/// let d = &data[..];
/// let r = stackful::io::AsyncReader::with_builder(stackful::Builder::new(), 16, move || Ok(d)).unwrap();
/// std::mem::forget(r);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case21;

/// `io::AsyncWriter::new`: the writer borrows.
///
/// ```compile_fail,E0597
/// let mut out = Vec::new();
/// let w = stackful::io::AsyncWriter::new(&mut out);
/// std::mem::forget(w);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case22;

/// `io::AsyncWriter::with_capacity`: the writer borrows.
///
/// ```compile_fail,E0597
/// let mut out = Vec::new();
/// let w = stackful::io::AsyncWriter::with_capacity(16, &mut out);
/// std::mem::forget(w);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case23;

/// `io::AsyncWriter::with_close`: the close closure borrows.
///
/// ```compile_fail,E0597
/// let mut closed = false;
/// let flag = &mut closed;
/// let w = stackful::io::AsyncWriter::with_close(Vec::new(), move |_| { *flag = true; Ok(()) });
/// std::mem::forget(w);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case24;

/// `io::AsyncWriter::lazy`: `make` borrows.
///
/// ```compile_fail,E0597
/// let mut out = Vec::new();
/// let o = &mut out;
/// let w = stackful::io::AsyncWriter::lazy(move || Ok(o));
/// std::mem::forget(w);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case25;

/// `io::AsyncWriter::with_builder`: `make` borrows.
///
/// ```compile_fail,E0597
/// let mut out = Vec::new();
/// let o = &mut out;
/// let w = stackful::io::AsyncWriter::with_builder(stackful::Builder::new(), 16, move || Ok(o), |_| Ok(())).unwrap();
/// std::mem::forget(w);
/// ```
#[cfg(feature = "futures-io")]
pub struct Case26;

/// A scoped generator cannot be swapped into an enclosing scope.
///
/// ```compile_fail,E0521
/// use stackful::generator::YieldHandle;
/// stackful::scope(|outer| {
///     let mut a = outer.generator(|_: &YieldHandle<()>, ()| ());
///     stackful::scope(|inner| {
///         let mut b = inner.generator(|_: &YieldHandle<()>, ()| ());
///         std::mem::swap(&mut a, &mut b);
///     });
/// });
/// ```
pub struct Case27;

/// A scoped future cannot be swapped into an enclosing scope.
///
/// ```compile_fail,E0521
/// stackful::scope(|outer| {
///     let mut a = outer.future(|| ());
///     stackful::scope(|inner| {
///         let mut b = inner.future(|| ());
///         std::mem::swap(&mut a, &mut b);
///     });
/// });
/// ```
pub struct Case28;

/// A scoped stream cannot be moved into an enclosing scope's variable.
///
/// ```compile_fail,E0521
/// use stackful::StreamHandle;
/// stackful::scope(|outer| {
///     let mut a = Some(outer.stream(|_: &StreamHandle<()>| ()));
///     stackful::scope(|inner| {
///         a = Some(inner.stream(|_: &StreamHandle<()>| ()));
///     });
/// });
/// ```
pub struct Case29;

/// A scoped generator cannot be moved out of its scope.
///
/// ```compile_fail,E0521
/// use stackful::generator::YieldHandle;
/// let mut out = None;
/// stackful::scope(|s| {
///     out = Some(s.generator(|y: &YieldHandle<u32>, ()| y.yeet(1)));
/// });
/// ```
pub struct Case30;

/// A scoped coroutine cannot borrow what is declared inside the scope (it would dangle when the scope drops a forgotten handle).
///
/// ```compile_fail,E0597
/// use stackful::generator::YieldHandle;
/// stackful::scope(|s| {
///     let local = String::from("inside");
///     let r = &local;
///     let g = s.generator(move |y: &YieldHandle<usize>, ()| y.yeet(r.len()));
///     std::mem::forget(g);
/// });
/// ```
pub struct Case31;

/// A scoped generator's handle is not `'static`, so it cannot be given to a thread or a `'static` executor.
///
/// ```compile_fail,E0521
/// use stackful::generator::YieldHandle;
/// stackful::scope(|s| {
///     let g = s.generator(|y: &YieldHandle<u32>, ()| y.yeet(1));
///     fn keep(_: impl Iterator<Item = u32> + 'static) {}
///     keep(g);
/// });
/// ```
pub struct Case32;

/// `SendFuture::new` is `unsafe`: safe code cannot vouch for what a coroutine holds
/// across its suspensions.
///
/// ```compile_fail,E0133
/// let fut = stackful::SendFuture::new(|| stackful::wait(async { 1 }));
/// # drop(fut);
/// ```
pub struct Case33;

/// `assume_send` is `unsafe` too.
///
/// ```compile_fail,E0133
/// let fut = stackful::stackful(|| 1).assume_send();
/// # drop(fut);
/// ```
pub struct Case34;

/// `SendFuture::new` checks the closure: an `Rc` shared with the creating thread cannot
/// move to another thread inside it, even under `unsafe`.
///
/// ```compile_fail,E0277
/// use std::rc::Rc;
/// let shared = Rc::new(std::cell::Cell::new(0));
/// let theirs = Rc::clone(&shared);
/// // SAFETY: (the promise is wrong, and the bound catches it.)
/// let fut = unsafe { stackful::SendFuture::new(move || theirs.set(1)) };
/// std::thread::spawn(move || futures::executor::block_on(fut));
/// shared.set(2); // would race with the other thread
/// ```
pub struct Case35;

/// A `SendFuture`'s output must be `Send` (it leaves on the polling thread), also
/// through `assume_send`.
///
/// ```compile_fail,E0277
/// use std::rc::Rc;
/// // SAFETY: (the output is what is wrong, and the bound catches it.)
/// let fut = unsafe { stackful::stackful(|| Rc::new(1)).assume_send() };
/// std::thread::spawn(move || futures::executor::block_on(fut));
/// ```
pub struct Case36;

/// `assume_send` exists only for `'static` futures: one that borrows (made by the
/// unchecked constructor) cannot be sent away from what it borrows.
///
/// ```compile_fail,E0597
/// let data = vec![1, 2, 3];
/// let borrowed = &data;
/// // SAFETY: awaited before `data` ends (the unchecked constructor's contract).
/// let fut = unsafe { stackful::future::StackfulFuture::new_unchecked(move || borrowed.len()) };
/// // SAFETY: (the lifetime is what is wrong, and the bound catches it.)
/// let fut = unsafe { fut.assume_send() };
/// std::thread::spawn(move || futures::executor::block_on(fut));
/// ```
pub struct Case37;

/// A scoped future has no `assume_send`: it borrows from its scope.
///
/// ```compile_fail,E0599
/// stackful::scope(|s| {
///     let fut = s.future(|| 1);
///     // SAFETY: (there is nothing to call.)
///     let fut = unsafe { fut.assume_send() };
///     # drop(fut);
/// });
/// ```
pub struct Case38;

/// `SendStream`'s items must be `Send`.
///
/// ```compile_fail,E0277
/// use std::rc::Rc;
/// use stackful::StreamHandle;
/// // SAFETY: (the item type is what is wrong, and the bound catches it.)
/// let s = unsafe { stackful::SendStream::new(|y: &StreamHandle<Rc<u8>>| y.yield_item(Rc::new(1))) };
/// std::thread::spawn(move || drop(s));
/// ```
pub struct Case39;

/// A registry snapshot gives no way back to a coroutine: it holds only what was
/// recorded (and backtraces), never a handle that could resume or drop one.
///
/// ```compile_fail,E0599
/// let snapshot = stackful::registry::snapshot();
/// for c in snapshot.iter() {
///     c.resume();
/// }
/// ```
#[cfg(feature = "registry")]
pub struct Case40;

/// `SendFuture` is `Send` but not `Sync`: `&SendFuture` on two threads would let one
/// read the coroutine's state (`is_complete`) while the other polls it.
///
/// ```compile_fail,E0277
/// fn assert_sync<T: Sync>(_: &T) {}
/// // SAFETY: holds nothing thread-bound.
/// let fut = unsafe { stackful::SendFuture::new(|| 1) };
/// assert_sync(&fut);
/// ```
pub struct Case41;

/// `SendStream` is not `Sync` either.
///
/// ```compile_fail,E0277
/// use stackful::StreamHandle;
/// fn assert_sync<T: Sync>(_: &T) {}
/// // SAFETY: holds nothing thread-bound.
/// let s = unsafe { stackful::SendStream::new(|y: &StreamHandle<u8>| y.yield_item(1)) };
/// assert_sync(&s);
/// ```
pub struct Case42;

/// A `YieldHandle` is not `Sync`: a thread spawned in a scope inside the generator
/// cannot yield it (that would suspend the generator from another thread's stack).
/// (Review round 3.)
///
/// ```compile_fail,E0277
/// use stackful::generator::{StackfulGenerator, YieldHandle};
/// let _g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| {
///     std::thread::scope(|s| {
///         s.spawn(|| y.yeet(1));
///     })
/// });
/// ```
pub struct Case43;

/// Nor is a `StreamHandle`. (Review round 3.)
///
/// ```compile_fail,E0277
/// use stackful::StreamHandle;
/// let _s = stackful::stream(|y: &StreamHandle<u32>| {
///     std::thread::scope(|s| {
///         s.spawn(|| y.yield_item(1));
///     })
/// });
/// ```
pub struct Case44;

/// A generator is not `Send`, so `SendFuture::new` refuses a closure that owns one,
/// whatever its caller vouches for. (Review round 3.)
///
/// ```compile_fail,E0277
/// use stackful::generator::{StackfulGenerator, YieldHandle};
/// let g = StackfulGenerator::new(|y: &YieldHandle<u32>, ()| y.yeet(1));
/// // SAFETY: (the generator is what is wrong, and the bound catches it.)
/// let _fut = unsafe {
///     stackful::SendFuture::new(move || {
///         let mut g = g;
///         let _ = &mut g;
///     })
/// };
/// ```
pub struct Case45;
