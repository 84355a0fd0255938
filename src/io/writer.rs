//! [`AsyncWriter`]: an async writer running a synchronous [`Write`] on a coroutine.

use super::DEFAULT_BUF_SIZE;
use crate::fiber::OnLeak;
use crate::{Builder, StackfulStream, StreamHandle};
use std::cell::Cell;
use std::io::{self, Write};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// What the coroutine is asked to do with the buffered bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Write them.
    Write,
    /// Write them and flush the writer.
    Flush,
    /// Write them and close the writer (the close function, which drops it).
    Close,
}

struct Request {
    op: Op,
    data: Vec<u8>,
}

/// What the coroutine hands back: the (emptied) buffer and the result.
type Reply = (Vec<u8>, io::Result<()>);

/// An async writer whose bytes go to a synchronous [`Write`] running on a coroutine
/// of its own: hand a synchronous encoder to async code.
///
/// It implements [`futures_io::AsyncWrite`] (feature `futures-io`) and tokio's
/// [`AsyncWrite`](tokio::io::AsyncWrite) (feature `tokio`). It is buffered like
/// [`BufWriter`](std::io::BufWriter): `poll_write` copies into a buffer and returns at
/// once while there is room. When the buffer is full, and on `poll_flush` and
/// `poll_close`/`poll_shutdown`, the poll resumes the coroutine, which passes the
/// buffered bytes to `writer.write_all` (and then calls `writer.flush()`, or the
/// close function). If the writer [`wait`](crate::wait)s on a pending future, for
/// example because it writes to a [`SyncIo`](super::SyncIo) or
/// [`TokioSyncIo`](super::TokioSyncIo) over a socket, the coroutine is suspended and
/// the poll returns `Pending`; the next poll resumes the write where it stopped.
///
/// Closing runs the close function on the coroutine: by default it flushes the
/// writer and drops it, so a `Drop` that writes (an encoder's trailer) may `wait`
/// too. [`with_close`](AsyncWriter::with_close) sets another one, e.g. an encoder's
/// `finish`.
///
/// ```
/// # #[cfg(feature = "futures-io")] {
/// use futures::io::{AsyncWriteExt, Cursor};
/// use stackful::io::{AsyncWriter, SyncIo};
/// use std::io::Write;
///
/// /// A synchronous encoder: writes each byte twice.
/// struct Twice<W>(W);
///
/// impl<W: Write> Write for Twice<W> {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
///         for &b in buf {
///             self.0.write_all(&[b, b])?;
///         }
///         Ok(buf.len())
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         self.0.flush()
///     }
/// }
///
/// // Async code writes through the synchronous encoder into an async sink; on
/// // close, the sink comes back (the writer is 'static: it owns the sink).
/// let (tx, rx) = std::sync::mpsc::channel();
/// futures::executor::block_on(async {
///     let sink = SyncIo::new(Cursor::new(Vec::new()));
///     let mut encoder = AsyncWriter::with_close(Twice(sink), move |mut w| {
///         w.flush()?;
///         tx.send(w.0.into_inner().into_inner()).unwrap();
///         Ok(())
///     });
///     encoder.write_all(b"abc").await?;
///     encoder.close().await
/// })?;
/// assert_eq!(rx.recv().unwrap(), b"aabbcc");
/// # }
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// * A failed operation reports its error from the poll that sees it; the bytes that
///   were buffered for it are discarded.
/// * A failed close is final, as for a file or a socket: the writer is gone, every
///   later flush or close fails with an error of the same kind that repeats its
///   message, and writes fail (`BrokenPipe`) as after any close.
/// * A panic in the writer propagates out of the poll with its original payload;
///   later polls fail with an [`io::Error`].
/// * Dropping it without closing or flushing discards what is still buffered (as
///   `BufWriter` does when its flush fails) and unwinds the coroutine, dropping the
///   writer there; a write that is suspended is abandoned.
/// * It is `!Send`, like every coroutine: use it on single-threaded executors or
///   `spawn_local`.
pub struct AsyncWriter<'a, W> {
    coroutine: StackfulStream<'a, Reply>,
    /// Where a request goes to the coroutine.
    handoff: Rc<Cell<Option<Request>>>,
    /// The bytes not yet handed to the writer (empty while an operation is in
    /// progress: the coroutine has the buffer then).
    buf: Vec<u8>,
    capacity: usize,
    /// The operation in progress on the coroutine.
    in_flight: Option<Op>,
    /// The writer was closed (and dropped).
    closed: bool,
    /// How the close failed, if it did: the kind and message of its error, which every
    /// later flush or close reports again (as a file or socket that failed to close
    /// stays failed; `io::Error` is not `Clone`).
    close_error: Option<(io::ErrorKind, String)>,
    /// The writer lives (and is dropped) on the coroutine's stack.
    _writer: PhantomData<W>,
}

// The writer lives on the coroutine's own stack, never inside this value.
impl<W> Unpin for AsyncWriter<'_, W> {}

impl<'a, W: Write + 'static> AsyncWriter<'a, W> {
    /// Runs `writer` on a coroutine with a default stack and a buffer of
    /// [`DEFAULT_BUF_SIZE`] bytes; closing flushes and drops it.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncWriter::with_builder)).
    #[track_caller]
    pub fn new(writer: W) -> Self {
        Self::with_capacity(DEFAULT_BUF_SIZE, writer)
    }

    /// Runs `writer` on a coroutine with a default stack and a buffer of `capacity`
    /// bytes (at least 1); closing flushes and drops it.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncWriter::with_builder)).
    #[track_caller]
    pub fn with_capacity(capacity: usize, writer: W) -> Self {
        Self::expect(Self::with_builder(
            Builder::new(),
            capacity,
            move || Ok(writer),
            flush_and_drop,
        ))
    }

    /// Runs `writer` on a coroutine with a default stack and a buffer of
    /// [`DEFAULT_BUF_SIZE`] bytes; closing calls `close(writer)` on the coroutine
    /// (after writing what is buffered).
    ///
    /// ```
    /// # #[cfg(feature = "futures-io")] {
    /// use flate2::{write::GzEncoder, Compression};
    /// use futures::io::{AsyncWriteExt, Cursor};
    /// use stackful::io::{AsyncWriter, SyncIo};
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// futures::executor::block_on(async {
    ///     let gzip = GzEncoder::new(SyncIo::new(Cursor::new(Vec::new())), Compression::default());
    ///     // On close: write the gzip trailer, close the async sink, hand it back.
    ///     let mut gzip = AsyncWriter::with_close(gzip, move |gz| {
    ///         let mut sink = gz.finish()?;
    ///         sink.close()?;
    ///         tx.send(sink.into_inner().into_inner()).unwrap();
    ///         Ok(())
    ///     });
    ///     gzip.write_all(b"hello").await?;
    ///     gzip.close().await
    /// })?;
    /// let compressed = rx.recv().unwrap();
    /// let mut text = String::new();
    /// std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut text)?;
    /// assert_eq!(text, "hello");
    /// # }
    /// # Ok::<_, std::io::Error>(())
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncWriter::with_builder)).
    #[track_caller]
    pub fn with_close<C>(writer: W, close: C) -> Self
    where
        C: FnOnce(W) -> io::Result<()> + 'static,
    {
        Self::expect(Self::with_builder(
            Builder::new(),
            DEFAULT_BUF_SIZE,
            move || Ok(writer),
            close,
        ))
    }

    /// Makes the writer on the coroutine, with `make`, when it first has to write;
    /// then runs it as [`new`](AsyncWriter::new) does. For writers whose
    /// constructor already writes, which outside a coroutine would block the thread.
    /// An error from `make` is returned by every operation.
    ///
    /// # Panics
    /// If no stack can be allocated (see [`with_builder`](AsyncWriter::with_builder)).
    #[track_caller]
    pub fn lazy<M>(make: M) -> Self
    where
        M: FnOnce() -> io::Result<W> + 'static,
    {
        Self::expect(Self::with_builder(
            Builder::new(),
            DEFAULT_BUF_SIZE,
            make,
            flush_and_drop,
        ))
    }

    /// Makes the writer with `make` on a coroutine made by `builder` (e.g. with a
    /// larger stack) when it first has to write, with a buffer of `capacity` bytes
    /// (at least 1); closing calls `close(writer)` on the coroutine (after writing
    /// what is buffered). An error from `make` is returned by every operation.
    ///
    /// The writer and the closures are `'static`, as every coroutine's closure is
    /// (see [`stackful`](crate::stackful)); [`with_builder_unchecked`](AsyncWriter::with_builder_unchecked)
    /// lifts that for `unsafe` code.
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::stream`]).
    #[track_caller]
    pub fn with_builder<M, C>(
        builder: Builder,
        capacity: usize,
        make: M,
        close: C,
    ) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<W> + 'static,
        C: FnOnce(W) -> io::Result<()> + 'static,
    {
        // SAFETY: everything the coroutine can reach is 'static (the bounds above, and
        // the handoff cell is shared through an Rc of 'static data).
        unsafe { AsyncWriter::build(builder, capacity, make, close, OnLeak::Leak) }
    }

    fn expect(made: io::Result<Self>) -> Self {
        match made {
            Ok(w) => w,
            Err(e) => crate::allocation_failed("AsyncWriter::new", e),
        }
    }
}

impl<'a, W: Write + 'a> AsyncWriter<'a, W> {
    /// [`with_builder`](AsyncWriter::with_builder) for a writer and closures that
    /// borrow for `'a`.
    ///
    /// # Safety
    /// As for [`StackfulStream::new_unchecked`](crate::StackfulStream::new_unchecked):
    /// the writer must have been closed (to completion) or dropped before anything it
    /// or the closures borrow ends; it must not be leaked while an operation is
    /// suspended.
    ///
    /// # Errors
    /// If the stack cannot be allocated (see [`Builder::stream`]).
    #[track_caller]
    pub unsafe fn with_builder_unchecked<M, C>(
        builder: Builder,
        capacity: usize,
        make: M,
        close: C,
    ) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<W> + 'a,
        C: FnOnce(W) -> io::Result<()> + 'a,
    {
        // SAFETY: forwarded to our caller; dropping it unfinished aborts rather than
        // leaks.
        unsafe { AsyncWriter::build(builder, capacity, make, close, OnLeak::Abort) }
    }

    /// # Safety
    /// As for `StackfulStream::on_stack` with `on_leak`.
    #[cfg_attr(feature = "registry", track_caller)]
    unsafe fn build<M, C>(
        builder: Builder,
        capacity: usize,
        make: M,
        close: C,
        on_leak: OnLeak,
    ) -> io::Result<Self>
    where
        M: FnOnce() -> io::Result<W> + 'a,
        C: FnOnce(W) -> io::Result<()> + 'a,
    {
        let handoff: Rc<Cell<Option<Request>>> = Rc::new(Cell::new(None));
        let theirs = Rc::clone(&handoff);
        let stack = builder.stack()?;
        let body = move |y: &StreamHandle<Reply>| {
            let mut writer = match make() {
                Ok(writer) => writer,
                Err(e) => super::reader::fail_forever(
                    e,
                    || {
                        let mut data = theirs.take().map(|r| r.data).unwrap_or_default();
                        data.clear();
                        data
                    },
                    |data, err| y.yield_item((data, Err(err))),
                ),
            };
            loop {
                let Some(Request { op, mut data }) = theirs.take() else {
                    return; // not reached: every resume brings a request
                };
                let written = writer.write_all(&data);
                data.clear();
                match op {
                    Op::Write => y.yield_item((data, written)),
                    Op::Flush => y.yield_item((data, written.and_then(|()| writer.flush()))),
                    Op::Close => {
                        let closed = match written {
                            Ok(()) => close(writer),
                            Err(e) => {
                                drop(writer);
                                Err(e)
                            }
                        };
                        y.yield_item((data, closed));
                        return;
                    }
                }
            }
        };
        // SAFETY: forwarded to our caller.
        let coroutine =
            unsafe { StackfulStream::on_stack(stack, on_leak, body)? }.budget_from(&builder);
        let capacity = capacity.max(1);
        Ok(AsyncWriter {
            coroutine,
            handoff,
            buf: Vec::with_capacity(capacity),
            capacity,
            in_flight: None,
            closed: false,
            close_error: None,
            _writer: PhantomData,
        })
    }
}

fn flush_and_drop<W: Write>(mut writer: W) -> io::Result<()> {
    writer.flush()
}

impl<W> AsyncWriter<'_, W> {
    /// The bytes written but not yet handed to the writer.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Hands the buffered bytes to the coroutine for `op`.
    fn start(&mut self, op: Op) -> io::Result<()> {
        if self.coroutine.is_complete() {
            return Err(panicked());
        }
        let data = std::mem::take(&mut self.buf);
        self.handoff.set(Some(Request { op, data }));
        self.in_flight = Some(op);
        Ok(())
    }

    /// Drives the operation in progress to its end; returns which one it was.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>, op: Op) -> Poll<io::Result<Op>> {
        if self.coroutine.is_complete() {
            return Poll::Ready(Err(panicked()));
        }
        let reply = ready!(futures_core::Stream::poll_next(
            Pin::new(&mut self.coroutine),
            cx
        ));
        let Some((buf, result)) = reply else {
            unreachable!("the coroutine of an AsyncWriter returns only after a close")
        };
        self.buf = buf;
        self.in_flight = None;
        if op == Op::Close {
            self.closed = true;
            if let Err(e) = &result {
                self.close_error = Some((e.kind(), e.to_string()));
            }
        }
        Poll::Ready(result.map(|()| op))
    }

    fn poll_write_buf(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            if let Some(op) = self.in_flight {
                ready!(self.poll_in_flight(cx, op))?;
                continue;
            }
            if self.closed {
                let message = match &self.close_error {
                    None => "stackful::io::AsyncWriter: write after close".to_owned(),
                    Some((_, e)) => {
                        format!("stackful::io::AsyncWriter: write after a failed close ({e})")
                    }
                };
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, message)));
            }
            let room = self.capacity - self.buf.len();
            if data.is_empty() || room > 0 {
                let n = room.min(data.len());
                self.buf.extend_from_slice(&data[..n]);
                return Poll::Ready(Ok(n));
            }
            self.start(Op::Write)?;
        }
    }

    /// Runs `op` (`Flush` or `Close`) after the operation in progress, if any.
    fn poll_op(&mut self, cx: &mut Context<'_>, op: Op) -> Poll<io::Result<()>> {
        loop {
            if let Some(running) = self.in_flight {
                let done = ready!(self.poll_in_flight(cx, running))?;
                if done == op || done == Op::Close {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if self.closed {
                // A close that failed keeps failing; after one that succeeded, there
                // is nothing left to flush or close.
                return Poll::Ready(match &self.close_error {
                    None => Ok(()),
                    Some((kind, e)) => Err(io::Error::new(
                        *kind,
                        format!("stackful::io::AsyncWriter: the close failed earlier: {e}"),
                    )),
                });
            }
            self.start(op)?;
        }
    }
}

fn panicked() -> io::Error {
    io::Error::other("stackful::io::AsyncWriter: the writer panicked in an earlier poll")
}

impl<W> std::fmt::Debug for AsyncWriter<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncWriter")
            .field("buffered", &self.buf.len())
            .field("in_flight", &self.in_flight)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "futures-io")]
impl<W> futures_io::AsyncWrite for AsyncWriter<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_buf(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_op(cx, Op::Flush)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_op(cx, Op::Close)
    }
}

#[cfg(feature = "tokio")]
impl<W> tokio::io::AsyncWrite for AsyncWriter<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_buf(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_op(cx, Op::Flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_op(cx, Op::Close)
    }
}
